package harness

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestKillTakesTheWholeGroupAtOnce(t *testing.T) {
	dir := t.TempDir()
	// A shell that ignores SIGTERM and has a child in its group: Stop would wait; Kill must not.
	p, err := StartProcess("sh", filepath.Join(dir, "log"), "/bin/sh", "-c", "trap '' TERM; sleep 600 & echo started; wait")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ok, _ := p.LogContains("started"); !ok; ok, _ = p.LogContains("started") {
		if time.Now().After(deadline) {
			t.Fatal("the shell never started its child")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	// SIGKILL is delivered at once, but the kernel tears a process down asynchronously: poll. A Kill
	// that only asked politely would leave the shell (which ignores TERM) and its 600 s sleep alive
	// past any patience.
	alive := liveGroupMembers(t, p.Pid())
	for deadline := time.Now().Add(30 * time.Second); len(alive) > 0 && time.Now().Before(deadline); alive = liveGroupMembers(t, p.Pid()) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(alive) > 0 {
		t.Fatalf("members of the group survived the kill: %v", alive)
	}
	if err := p.Stop(0); err != nil {
		t.Fatalf("Stop after Kill = %v, want Kill's result", err)
	}
}

func TestKillOfAnExitedProcessSaysSo(t *testing.T) {
	p, err := StartProcess("true", filepath.Join(t.TempDir(), "log"), "/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if err := p.Kill(); err == nil || !strings.Contains(err.Error(), "already exited") {
		t.Fatalf("Kill = %v, want an already-exited error", err)
	}
}

// liveGroupMembers lists the pids in process group pgid that are not zombies (a killed child of a
// killed shell is reparented and may wait a moment to be reaped).
func liveGroupMembers(t *testing.T, pgid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(st)
		end := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[end+1:])
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}
