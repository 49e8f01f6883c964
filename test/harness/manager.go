package harness

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ManagerOptions says how to run the manager binary.
type ManagerOptions struct {
	// Bin is the path of the manager binary (bin/manager).
	Bin string
	// Kubeconfig is the file it connects with.
	Kubeconfig string
	// LogPath receives its stdout and stderr.
	LogPath string
	// Args are further flags, e.g. --zap-log-level=debug.
	Args []string
	// StartTimeout bounds the wait for /readyz (default 30 s).
	StartTimeout time.Duration
	// Env is added to its environment ("KEY=value"), e.g. the memory limit a Deployment gives it.
	Env []string
}

// Manager is a running manager binary.
type Manager struct {
	*Process
	// ProbeAddr is its health-probe address, 127.0.0.1:<port>.
	ProbeAddr string
}

// StartManager starts the manager without metrics, with probes on a free loopback port, and waits
// until /readyz answers 200, which means its flags parsed and it reached the API server.
func StartManager(ctx context.Context, o ManagerOptions) (*Manager, error) {
	if o.StartTimeout == 0 {
		o.StartTimeout = 30 * time.Second
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	probeAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// The manager elects a leader by default, which outside a pod needs a lease namespace: a test
	// that wants election says so (--leader-elect and --leader-election-namespace); others run one
	// manager without.
	if !slices.ContainsFunc(o.Args, func(a string) bool { return a == "--leader-elect" || strings.HasPrefix(a, "--leader-elect=") }) {
		o.Args = append([]string{"--leader-elect=false"}, o.Args...)
	}
	args := append([]string{
		"--kubeconfig=" + o.Kubeconfig,
		"--metrics-bind-address=0",
		"--health-probe-bind-address=" + probeAddr,
	}, o.Args...)
	p, err := StartProcessWithEnv("manager", o.LogPath, o.Bin, o.Env, args...)
	if err != nil {
		return nil, err
	}
	m := &Manager{Process: p, ProbeAddr: probeAddr}
	err = poll(ctx, o.StartTimeout, p, func() (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+probeAddr+"/readyz", nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		_ = p.Stop(0)
		return nil, err
	}
	return m, nil
}

// freePort asks the kernel for a free loopback port. Another program could take it before the
// manager binds it; the manager then exits and StartManager says so with its log.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
