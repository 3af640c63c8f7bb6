package kafkadist

import (
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Proc is one running JVM in its own process group.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}

	mu  sync.Mutex
	err error // Wait's result once done is closed
}

// Start starts cmd (built by Dist.Command, so it has its own process group).
func Start(name string, cmd *exec.Cmd) (*Proc, error) {
	if cmd.SysProcAttr == nil || !cmd.SysProcAttr.Setpgid {
		return nil, fmt.Errorf("kafkadist: %s: command must run in its own process group (use Dist.Command)", name)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w; is a JDK 17+ `java` on PATH?", name, cmd.Path, err)
	}
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Pid is the JVM's pid (also its process group id).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and how.
func (p *Proc) Exited() (bool, error) {
	select {
	case <-p.done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.err
	default:
		return false, nil
	}
}

// Signal sends sig to the whole process group. A group that is already gone
// is not an error.
func (p *Proc) Signal(sig syscall.Signal) error {
	if done, _ := p.Exited(); done {
		return nil
	}
	if err := syscall.Kill(-p.Pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v to %s (pgid %d): %w", sig, p.Name, p.Pid(), err)
	}
	return nil
}

// Kill sends SIGKILL to the group and waits for the JVM to be reaped.
func (p *Proc) Kill() error {
	// A stopped (SIGSTOP) process still dies on SIGKILL.
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit 30s after SIGKILL", p.Name, p.Pid())
	}
}

// Stop sends SIGTERM (after SIGCONT, in case it is paused) and waits up to
// grace for the JVM's shutdown hooks; then SIGKILL. A node that lost its
// quorum never finishes a controlled shutdown, hence the grace.
func (p *Proc) Stop(grace time.Duration) error {
	_ = p.Signal(syscall.SIGCONT)
	if err := p.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	return p.Kill()
}

// StopAll stops every proc in parallel (SIGTERM, grace, SIGKILL).
func StopAll(procs []*Proc, grace time.Duration) error {
	var wg sync.WaitGroup
	errs := make([]error, len(procs))
	for i, p := range procs {
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = p.Stop(grace)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
