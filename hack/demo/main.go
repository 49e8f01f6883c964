// Command demo shows the operator working end to end on this machine: a local Kubernetes API server,
// the NOMAD stand-in, the real manager binary and the samples in config/samples. It is what
// `make demo` and `make demo-once` run (through hack/demo.sh, which builds the control plane first).
//
//	demo [--once]
//
// Without --once it keeps everything running until Ctrl-C so that you can try kubectl against it.
// Every process it starts is stopped when it ends, also when it fails.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/nomad-operator/nomad-token-operator/api/v1alpha1"
	"github.com/nomad-operator/nomad-token-operator/test/harness"
)

const (
	namespace    = "default"
	readyTimeout = 60 * time.Second
)

type options struct {
	once       bool
	assets     string
	managerBin string
	stubBin    string
	dir        string
}

func main() {
	var o options
	flag.BoolVar(&o.once, "once", false, "exit after the proof instead of waiting for Ctrl-C (0 on success)")
	flag.StringVar(&o.assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "directory with etcd, kube-apiserver and (optionally) kubectl")
	flag.StringVar(&o.managerBin, "manager-bin", "bin/manager", "the manager binary")
	flag.StringVar(&o.stubBin, "stub-bin", "bin/nomad-stub", "the NOMAD stand-in binary")
	flag.StringVar(&o.dir, "dir", ".demo", "where the kubeconfig and the logs go")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, o)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		fmt.Println("\nInterrupted; everything the demo started has been stopped.")
		os.Exit(130)
	default:
		fmt.Fprintf(os.Stderr, "\nDEMO FAILED: %v\n", err)
		os.Exit(1)
	}
}

// demo holds what run started, so that cleanup can stop it in reverse order.
type demo struct {
	o        options
	root     string
	dir      string
	kubectl  string // "" when the assets have none
	cp       *harness.ControlPlane
	stub     *harness.Stub
	manager  *harness.Manager
	step     int
	cleanups []func() error

	connName, tokenName, secretName string // from the samples and the NomadToken's status

}

func run(ctx context.Context, o options) (err error) {
	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	d := &demo{o: o, root: root, dir: filepath.Join(root, o.dir)}
	defer func() {
		if cerr := d.cleanup(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := d.prepare(); err != nil {
		return err
	}
	fmt.Println("NOMAD token operator demo: the real manager binary issues a NOMAD Personal Access Token")
	fmt.Println("into a Kubernetes Secret, against a local API server and a NOMAD stand-in.")
	for _, step := range []func(context.Context) error{
		d.startControlPlane, d.startStub, d.startManager, d.applySamples, d.waitReady,
		d.showToken, d.showSecret, d.proveToken, d.checkLog,
	} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	if o.once {
		d.say("Demo passed. Stopping everything.")
		return nil
	}
	d.printTryIt()
	<-ctx.Done()
	fmt.Println("\nStopping everything...")
	return nil
}

func (d *demo) prepare() error {
	for _, bin := range []*string{&d.o.managerBin, &d.o.stubBin} {
		if !filepath.IsAbs(*bin) {
			*bin = filepath.Join(d.root, *bin)
		}
		if _, err := os.Stat(*bin); err != nil {
			return fmt.Errorf("%s is missing: run `make build` first (or `make demo`)", *bin)
		}
	}
	if d.o.assets == "" {
		return errors.New("no control-plane binaries: pass --assets $(hack/envtest-assets.sh --with-kubectl), or run hack/demo.sh")
	}
	if k := filepath.Join(d.o.assets, "kubectl"); isExecutable(k) {
		d.kubectl = k
	}
	// A fresh start: logs and the kubeconfig of an earlier run would only confuse.
	if err := os.RemoveAll(d.dir); err != nil {
		return err
	}
	return os.MkdirAll(d.dir, 0o755)
}

func (d *demo) cleanup() error {
	var errs []error
	for i := len(d.cleanups) - 1; i >= 0; i-- {
		errs = append(errs, d.cleanups[i]())
	}
	d.cleanups = nil
	return errors.Join(errs...)
}

// say starts a numbered step.
func (d *demo) say(format string, a ...any) {
	d.step++
	fmt.Printf("\n%d. %s\n", d.step, fmt.Sprintf(format, a...))
}

// detail prints an indented line under the current step.
func detail(format string, a ...any) {
	fmt.Printf("   %s\n", fmt.Sprintf(format, a...))
}

func (d *demo) rel(path string) string {
	if r, err := filepath.Rel(d.root, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

func (d *demo) startControlPlane(context.Context) error {
	d.say("Starting a local Kubernetes API server (kube-apiserver + etcd) with the operator's CRDs...")
	start := time.Now()
	cp, err := harness.StartControlPlane(harness.ControlPlaneOptions{
		RepoRoot:       d.root,
		AssetsDir:      d.o.assets,
		KubeconfigPath: filepath.Join(d.dir, "kubeconfig"),
	})
	if err != nil {
		return err
	}
	d.cp = cp
	d.cleanups = append(d.cleanups, cp.Stop)
	detail("up in %s; kubeconfig: %s", time.Since(start).Round(100*time.Millisecond), d.rel(cp.Kubeconfig))
	return nil
}

func (d *demo) startStub(ctx context.Context) error {
	d.say("Starting the NOMAD stand-in (bin/nomad-stub) with one bot account...")
	s, err := harness.StartStub(ctx, harness.StubOptions{Bin: d.o.stubBin, Dir: d.dir})
	if err != nil {
		return err
	}
	d.stub = s
	d.cleanups = append(d.cleanups, func() error { return s.Stop(0) })
	detail("NOMAD API: %s   (user %q; log: %s)", s.APIURL, s.User, d.rel(s.LogPath))
	return nil
}

func (d *demo) startManager(ctx context.Context) error {
	d.say("Starting the operator (bin/manager)...")
	m, err := harness.StartManager(ctx, harness.ManagerOptions{
		Bin:        d.o.managerBin,
		Kubeconfig: d.cp.Kubeconfig,
		LogPath:    filepath.Join(d.dir, "manager.log"),
	})
	if err != nil {
		return err
	}
	d.manager = m
	d.cleanups = append(d.cleanups, func() error { return m.Stop(20 * time.Second) })
	detail("running, pid %d; log: %s", m.Pid(), d.rel(m.LogPath))
	return nil
}

func (d *demo) applySamples(ctx context.Context) error {
	d.say("Applying config/samples to namespace %q (the NomadConnection's url points at the stand-in)...", namespace)
	objs, err := harness.LoadKustomization(filepath.Join(d.root, "config", "samples"))
	if err != nil {
		return err
	}
	if err := harness.PrepareSamples(objs, namespace, d.stub.APIURL); err != nil {
		return err
	}
	if err := harness.Apply(ctx, d.cp.Client, objs); err != nil {
		return err
	}
	for _, u := range objs {
		detail("%s/%s applied", u.GetKind(), u.GetName())
		switch u.GetKind() {
		case "NomadConnection":
			d.connName = u.GetName()
		case "NomadToken":
			d.tokenName = u.GetName()
		}
	}
	if d.connName == "" || d.tokenName == "" {
		return errors.New("config/samples needs a NomadConnection and a NomadToken")
	}
	return nil
}

func (d *demo) waitReady(ctx context.Context) error {
	d.say("Waiting for the NomadConnection and the NomadToken to become Ready (up to %s)...", readyTimeout)
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	start := time.Now()
	last := map[string]string{}
	nextNote := 10 * time.Second
	for {
		connReady := d.observe(ctx, &v1alpha1.NomadConnection{}, "NomadConnection/"+d.connName, last, start)
		tokReady := d.observe(ctx, &v1alpha1.NomadToken{}, "NomadToken/"+d.tokenName, last, start)
		if connReady && tokReady {
			return nil
		}
		if exited, werr := d.manager.Exited(); exited {
			return fmt.Errorf("the manager exited (%v); last lines of %s:\n%s", werr, d.rel(d.manager.LogPath), d.manager.Tail(20))
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("not Ready after %s (see %s); last lines:\n%s", readyTimeout, d.rel(d.manager.LogPath), d.manager.Tail(20))
			}
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		if time.Since(start) > nextNote {
			detail("[%2.0fs] still waiting...", time.Since(start).Seconds())
			nextNote += 10 * time.Second
		}
	}
}

// observe reads the NomadConnection or NomadToken what ("Kind/name") into obj, prints its Ready
// condition when that changed since last time, and reports whether it is Ready.
func (d *demo) observe(ctx context.Context, obj client.Object, what string, last map[string]string, start time.Time) bool {
	_, name, _ := strings.Cut(what, "/")
	state := "not found yet"
	ready := false
	if err := d.cp.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj); err == nil {
		var conds []metav1.Condition
		switch o := obj.(type) {
		case *v1alpha1.NomadConnection:
			conds = o.Status.Conditions
		case *v1alpha1.NomadToken:
			conds = o.Status.Conditions
		}
		c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady)
		switch {
		case c == nil:
			state = "no status yet"
		case c.Status == metav1.ConditionTrue:
			state, ready = "Ready ("+c.Reason+")", true
		default:
			state = fmt.Sprintf("Ready=%s (%s): %s", c.Status, c.Reason, c.Message)
		}
	}
	if last[what] != state {
		last[what] = state
		detail("[%2.0fs] %-28s %s", time.Since(start).Seconds(), what, harness.Redact(state))
	}
	return ready
}

// showToken shows the resources the way a user sees them: with kubectl when the assets have it,
// else as a table of the same columns.
func (d *demo) showToken(ctx context.Context) error {
	if d.kubectl != "" {
		d.say("What kubectl shows:")
		for _, kind := range []string{"nomadconnections", "nomadtokens"} {
			out, err := exec.CommandContext(ctx, d.kubectl, "--kubeconfig", d.cp.Kubeconfig, "-n", namespace,
				"get", kind, "-o", "wide").CombinedOutput()
			if err != nil {
				return fmt.Errorf("kubectl get %s: %v: %s", kind, err, out)
			}
			detail("$ kubectl get %s -o wide", kind)
			for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
				detail("%s", line)
			}
		}
		return nil
	}
	var conn v1alpha1.NomadConnection
	if err := d.cp.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: d.connName}, &conn); err != nil {
		return err
	}
	var tok v1alpha1.NomadToken
	if err := d.cp.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: d.tokenName}, &tok); err != nil {
		return err
	}
	d.say("The resources and their status:")
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 3, ' ', 0)
	cc := readyOf(conn.Status.Conditions)
	fmt.Fprintln(tw, "   NOMADCONNECTION\tREADY\tREASON\tPATH\tURL")
	fmt.Fprintf(tw, "   %s\t%s\t%s\t%s\t%s\n", conn.Name, cc.Status, cc.Reason, conn.Status.PATPath, conn.Spec.URL)
	fmt.Fprintln(tw) // a line without cells ends the first table's columns
	tc := readyOf(tok.Status.Conditions)
	fmt.Fprintln(tw, "   NOMADTOKEN\tREADY\tREASON\tSECRET\tEXPIRES\tRENEWAL")
	fmt.Fprintf(tw, "   %s\t%s\t%s\t%s\t%s\t%s\n", tok.Name, tc.Status, tc.Reason, tok.Status.SecretName,
		timeOrDash(tok.Status.ExpiresAt), timeOrDash(tok.Status.RenewalTime))
	return tw.Flush()
}

// readyOf is the Ready condition, or an Unknown one while there is none.
func readyOf(conds []metav1.Condition) metav1.Condition {
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady); c != nil {
		return *c
	}
	return metav1.Condition{Status: metav1.ConditionUnknown, Reason: "-"}
}

func timeOrDash(t *metav1.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// token reads the NomadToken and its Secret.
func (d *demo) token(ctx context.Context) (*v1alpha1.NomadToken, *corev1.Secret, error) {
	var tok v1alpha1.NomadToken
	if err := d.cp.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: d.tokenName}, &tok); err != nil {
		return nil, nil, err
	}
	var s corev1.Secret
	if err := d.cp.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: tok.Status.SecretName}, &s); err != nil {
		return nil, nil, err
	}
	return &tok, &s, nil
}

func (d *demo) showSecret(ctx context.Context) error {
	_, s, err := d.token(ctx)
	if err != nil {
		return err
	}
	d.secretName = s.Name
	d.say("The Secret %s/%s (the token itself is never printed):", s.Namespace, s.Name)
	detail("labels:")
	for _, k := range slices.Sorted(maps.Keys(s.Labels)) {
		detail("  %s: %s", k, s.Labels[k])
	}
	detail("annotations:")
	for _, k := range slices.Sorted(maps.Keys(s.Annotations)) {
		detail("  %s: %s", k, s.Annotations[k])
	}
	detail("data:")
	for _, k := range slices.Sorted(maps.Keys(s.Data)) {
		detail("  %s: %s", k, harness.Describe(s.Data[k]))
	}
	if o := metav1.GetControllerOf(s); o != nil {
		detail("owner: %s %s (deleting it revokes the PAT)", o.Kind, o.Name)
	}
	return nil
}

func (d *demo) proveToken(ctx context.Context) error {
	tok, s, err := d.token(ctx)
	if err != nil {
		return err
	}
	var conn v1alpha1.NomadConnection
	if err := d.cp.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: tok.Spec.ConnectionRef.Name}, &conn); err != nil {
		return err
	}
	key := tok.Spec.Secret.Key
	if key == "" {
		key = v1alpha1.DefaultSecretKey
	}
	raw := s.Data[key]
	prefix, err := harness.PATPrefix(conn.Status.PATPath)
	if err != nil {
		return err
	}
	d.say("Proving the token works: NOMAD's own API, called with the token from the Secret...")
	detail("GET %s%s/000000000000000000000000   (Authorization: Bearer <token>)", d.stub.APIURL, prefix)
	res, err := harness.ProbePAT(ctx, d.stub.APIURL, conn.Status.PATPath, raw)
	if err != nil {
		return err
	}
	if !res.Valid() {
		return fmt.Errorf("NOMAD answered %s; a valid PAT gets 403 \"Missing scopes\"", res)
	}
	detail("-> %s: NOMAD accepted the token as a valid PAT (PATs may never read PATs, hence 403, not 401)", res)
	st, err := d.stub.State(ctx)
	if err != nil {
		return err
	}
	active := st.ActivePATs(d.stub.User)
	if len(active) != 1 || active[0].ID != tok.Status.TokenID {
		return fmt.Errorf("the stand-in holds %d active PATs for %q, want exactly the one with id %s", len(active), d.stub.User, tok.Status.TokenID)
	}
	detail("-> the stand-in holds exactly one active PAT, id %s, scopes %v", active[0].ID, active[0].Scopes)
	return nil
}

func (d *demo) checkLog(context.Context) error {
	d.say("Checking the operator's log for leaked secrets...")
	leaks, err := harness.ScanFile(d.manager.LogPath, d.stub.Password)
	if err != nil {
		return err
	}
	if len(leaks) > 0 {
		return fmt.Errorf("%s holds a raw PAT or the bot password: %v", d.rel(d.manager.LogPath), leaks)
	}
	detail("%s holds no raw token and no password", d.rel(d.manager.LogPath))
	return nil
}

func (d *demo) printTryIt() {
	d.say("Everything is running. In another terminal, from %s:", d.root)
	detail("export KUBECONFIG=$PWD/%s", d.rel(d.cp.Kubeconfig))
	if d.kubectl != "" {
		k := d.rel(d.kubectl)
		detail("%s get nomadconnections,nomadtokens -o wide", k)
		detail("%s describe nomadtoken %s", k, d.tokenName)
		detail("%s get secret %s -o yaml   # holds the raw token", k, d.secretName)
		detail("%s delete nomadtoken %s    # revokes the PAT", k, d.tokenName)
	}
	detail("curl -s %s/_stub/state                # the stand-in's PATs", d.stub.Addr)
	detail("tail -f %s", d.rel(d.manager.LogPath))
	fmt.Println("\nPress Ctrl-C to stop.")
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}
