package harness

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// reaperScript kills, when its stdin closes, every process group still registered on it. Lines
// "+PGID" register a group and "-PGID" forget it. Its stdin is a pipe whose only writer is this
// program (Go opens every descriptor close-on-exec, so no child inherits it), hence EOF means this
// program is gone, however it ended. It is POSIX sh (dash on Debian), so no "kill --".
const reaperScript = `trap '' INT TERM HUP
groups=" "
while IFS= read -r line; do
  case "$line" in
    +*) groups="$groups${line#+} " ;;
    -*) groups=$(printf '%s' "$groups" | sed "s/ ${line#-} / /") ;;
  esac
done
set -- $groups
[ $# -eq 0 ] && exit 0
for g; do kill -TERM "-$g" 2>/dev/null; done
sleep 2
for g; do kill -KILL "-$g" 2>/dev/null; done
exit 0
`

var reaper struct {
	once sync.Once
	mu   sync.Mutex
	w    io.WriteCloser
	err  error
}

// startReaper starts the reaper once per program.
func startReaper() error {
	reaper.once.Do(func() {
		cmd := exec.Command("/bin/sh", "-c", reaperScript)
		// Its own group: a Ctrl-C in the terminal must not take the reaper down before we clean up.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		// No stdout/stderr: `go test` waits for every holder of its output pipe to close it.
		w, err := cmd.StdinPipe()
		if err != nil {
			reaper.err = err
			return
		}
		if err := cmd.Start(); err != nil {
			reaper.err = fmt.Errorf("start the reaper: %w", err)
			return
		}
		reaper.w = w
		go func() { _ = cmd.Wait() }()
	})
	return reaper.err
}

// guard registers a process group with the reaper.
func guard(pgid int) error {
	if err := startReaper(); err != nil {
		return err
	}
	return tellReaper(fmt.Sprintf("+%d\n", pgid))
}

// unguard forgets a process group that has been stopped.
func unguard(pgid int) {
	_ = tellReaper(fmt.Sprintf("-%d\n", pgid))
}

func tellReaper(line string) error {
	reaper.mu.Lock()
	defer reaper.mu.Unlock()
	if reaper.w == nil {
		return nil
	}
	_, err := io.WriteString(reaper.w, line)
	return err
}

// childGroupLeaders returns the pids of this program's children named in names that lead their
// own process group: how the envtest control plane (which starts etcd and kube-apiserver with
// Setpgid but keeps their pids private) is found to be guarded.
func childGroupLeaders(names ...string) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		comm, ppid, pgrp, ok := parseStat(string(st))
		if !ok || ppid != self || pgrp != pid {
			continue
		}
		for _, n := range names {
			if comm == n {
				pids = append(pids, pid)
			}
		}
	}
	return pids, nil
}

// parseStat reads comm, ppid and pgrp from /proc/PID/stat; comm is in parentheses and may itself
// contain spaces and parentheses, so the fields are counted from the last ')'.
func parseStat(s string) (comm string, ppid, pgrp int, ok bool) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, 0, false
	}
	var state string
	if _, err := fmt.Sscanf(s[end+1:], " %s %d %d", &state, &ppid, &pgrp); err != nil {
		return "", 0, 0, false
	}
	return s[open+1 : end], ppid, pgrp, true
}
