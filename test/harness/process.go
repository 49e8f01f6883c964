package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultStopTimeout is how long Stop waits after SIGTERM before it sends SIGKILL.
const DefaultStopTimeout = 10 * time.Second

// Process is a program running in its own process group with stdout and stderr in a log file.
type Process struct {
	// Name is what messages call the program ("manager", "nomad-stub").
	Name string
	// LogPath is the file holding its stdout and stderr.
	LogPath string

	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
	stopErr  error
	signaled bool // Stop sent SIGTERM, so death by that signal is expected
}

// StartProcess starts bin with args, appending its output to logPath.
func StartProcess(name, logPath, bin string, args ...string) (*Process, error) {
	return StartProcessWithEnv(name, logPath, bin, nil, args...)
}

// StartProcessWithEnv is StartProcess with env ("KEY=value") added to this process's environment.
func StartProcessWithEnv(name, logPath, bin string, env []string, args ...string) (*Process, error) {
	if err := startReaper(); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own copy
	cmd := exec.Command(bin, args...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own group, so that Stop reaches whatever it starts and a Ctrl-C meant for us does not
	// reach it before we stop it in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	if err := guard(cmd.Process.Pid); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return nil, fmt.Errorf("guard %s: %w", name, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the process group and SIGKILL after timeout (DefaultStopTimeout if zero).
// It returns an error if the process had to be killed or ended with a failure of its own.
// Calling it again returns the first result.
func (p *Process) Stop(timeout time.Duration) error {
	p.stopOnce.Do(func() { p.stopErr = p.stop(timeout) })
	return p.stopErr
}

func (p *Process) stop(timeout time.Duration) error {
	if timeout <= 0 {
		timeout = DefaultStopTimeout
	}
	pgid := p.Pid()
	defer unguard(pgid)
	select {
	case <-p.done:
		return p.exitError()
	default:
	}
	p.signaled = true
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitError()
	case <-time.After(timeout):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	<-p.done
	return fmt.Errorf("%s did not stop within %s of SIGTERM and was killed (log: %s)", p.Name, timeout, p.LogPath)
}

// exitError is nil for a clean exit, or a death by the SIGTERM that Stop sent.
func (p *Process) exitError() error {
	if p.waitErr == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM && p.signaled {
			return nil
		}
	}
	return fmt.Errorf("%s exited: %w (log: %s)", p.Name, p.waitErr, p.LogPath)
}

// Tail returns the last n lines of the log with raw PATs redacted.
func (p *Process) Tail(n int) string {
	return TailFile(p.LogPath, n)
}

// TailFile returns the last n lines of a file with raw PATs redacted, or a note if it cannot be read.
func TailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return Redact(strings.Join(lines, "\n"))
}
