package node

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// daemon is one long-running process of the node (containerd, kubelet,
// ...), its output in <log dir>/<name>.log.
type daemon struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error // set before done closes
}

// startDaemon starts bin with args in its own process group (so stopping it
// reaches any helper it forks), output to logDir/name.log.
func startDaemon(name, logDir, bin string, args ...string) (*daemon, error) {
	return startDaemonIn(name, logDir, "", nil, bin, args...)
}

// startDaemonIn is startDaemon in the working folder workDir (a sweep
// finds a process whose working folder is under the node's folder even when
// no argument names it) with env added to this process's environment.
func startDaemonIn(name, logDir, workDir string, env []string, bin string, args ...string) (*daemon, error) {
	logPath := filepath.Join(logDir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("creating %s's log %s: %w", name, logPath, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = workDir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", name, bin, err)
	}
	d := &daemon{name: name, cmd: cmd, log: f, done: make(chan struct{})}
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

// exited reports whether the daemon has ended, with why.
func (d *daemon) exited() (bool, error) {
	select {
	case <-d.done:
		return true, d.err
	default:
		return false, nil
	}
}

// stop sends SIGTERM to the daemon's process group, then SIGKILL after
// grace, and waits for it to end.
func (d *daemon) stop(grace time.Duration) error {
	defer d.log.Close()
	if done, _ := d.exited(); done {
		return nil
	}
	pgid := d.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-d.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-d.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not end after SIGKILL", d.name, pgid)
	}
}

// logTail is the end of the daemon's log, for error messages.
func (d *daemon) logTail(n int) string {
	data, err := os.ReadFile(d.log.Name())
	if err != nil {
		return ""
	}
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}

// processesMentioning lists the pids (other than this process and its
// ancestors, e.g. the shell that ran `kmt-node down <dir>`) whose
// command line or working folder mentions dir: the processes a node rooted
// at dir started (every daemon gets a path under dir in its arguments, and
// containerd's shims get its socket path), found even when the harness that
// started them was killed.
func processesMentioning(dir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	spare := ancestors()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || spare[pid] {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		cwd, _ := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if mentions(strings.Split(string(cmdline), "\x00"), dir) || cwd == dir || strings.HasPrefix(cwd, dir+"/") {
			pids = append(pids, pid)
		}
	}
	return pids
}

// mentions reports whether an argument is dir, a --flag=dir, or a path
// under dir (not merely a path that starts with the same letters, like
// dir-2).
func mentions(args []string, dir string) bool {
	for _, a := range args {
		if a == dir || strings.HasSuffix(a, "="+dir) || strings.Contains(a, dir+"/") {
			return true
		}
	}
	return false
}

// ancestors is this process and its parents up to init.
func ancestors() map[int]bool {
	set := map[int]bool{}
	for pid := os.Getpid(); pid > 1 && !set[pid]; {
		set[pid] = true
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			break
		}
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			break
		}
		// After ") " come the state and the parent pid.
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			break
		}
		if pid, err = strconv.Atoi(f[1]); err != nil {
			break
		}
	}
	return set
}

// killAll SIGKILLs pids and waits (up to 10s) until they are gone.
func killAll(pids []int) error {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for syscall.Kill(pid, 0) == nil && !isZombie(pid) {
			if time.Now().After(deadline) {
				return fmt.Errorf("process %d survived SIGKILL", pid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z'
	}
	return false
}
