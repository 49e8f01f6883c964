package harness

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Kill sends SIGKILL to the process group, as `kill -9` would, and waits until the process is
// gone: no signal handler runs, nothing is flushed or released (a leader-election lease stays
// held until it expires). It returns nil when the process died of that SIGKILL, and an error if it
// had already exited on its own, which a chaos test must not mistake for a landed kill. Stop after
// Kill returns Kill's result.
func (p *Process) Kill() error {
	p.stopOnce.Do(func() { p.stopErr = p.kill() })
	return p.stopErr
}

func (p *Process) kill() error {
	pgid := p.Pid()
	defer unguard(pgid)
	select {
	case <-p.done:
		return fmt.Errorf("%s had already exited before the kill: %v (log: %s)", p.Name, p.waitErr, p.LogPath)
	default:
	}
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill -9 %s: %w", p.Name, err)
	}
	<-p.done
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return nil
		}
	}
	return fmt.Errorf("%s exited on its own just before the kill: %v (log: %s)", p.Name, p.waitErr, p.LogPath)
}

// LeaseAcquiredLine is what client-go's leader election logs once this process holds the lease
// (matched regardless of case: older client-go versions wrote it in lower case).
const LeaseAcquiredLine = "successfully acquired lease"

// LogContains reports whether the process's log holds s.
func (p *Process) LogContains(s string) (bool, error) {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return false, err
	}
	return strings.Contains(string(b), s), nil
}

// AwaitLeadership waits until the manager logs that it acquired the leader-election lease (its
// controllers start then), for at most timeout; it fails early if the manager exits.
func (m *Manager) AwaitLeadership(ctx context.Context, timeout time.Duration) error {
	return poll(ctx, timeout, m.Process, func() (bool, error) {
		return m.logContainsFold(LeaseAcquiredLine)
	})
}

// IsLeader reports whether the manager has logged that it acquired the lease.
func (m *Manager) IsLeader() bool {
	ok, _ := m.logContainsFold(LeaseAcquiredLine)
	return ok
}

func (p *Process) logContainsFold(s string) (bool, error) {
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return false, err
	}
	return strings.Contains(strings.ToLower(string(b)), strings.ToLower(s)), nil
}

// InFlight reads how many requests each NOMAD operation (login, create, list, get, revoke, rotate,
// openapi) is handling at this moment (GET /_stub/inflight), whoever sent them.
func (s *Stub) InFlight(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	if err := s.admin(ctx, "GET", "inflight", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Latency makes every request of op slower until ClearFaults: it waits delay before the operation
// and holds its answer for hold after it (POST /_stub/faults?times=-1&delay=..&hold=..). It queues
// behind, and then blocks, any other fault of op.
func (s *Stub) Latency(ctx context.Context, op string, delay, hold time.Duration) error {
	q := url.Values{"op": {op}, "times": {"-1"}, "delay": {delay.String()}, "hold": {hold.String()}}
	return s.admin(ctx, "POST", "faults?"+q.Encode(), nil, nil)
}

// ClearFaults removes every injected fault and latency (DELETE /_stub/faults).
func (s *Stub) ClearFaults(ctx context.Context) error {
	return s.admin(ctx, "DELETE", "faults", nil, nil)
}
