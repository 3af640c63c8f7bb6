package mirror

import (
	"sync"
	"time"
)

// Exit is an exit of the mirror's command that kmt did not ask for: it
// crashed, or ended by itself. The run's report says when, with what
// status and the last lines of its output.
type Exit struct {
	At     time.Time
	Status string // "exit status 1", "signal: killed"
	Log    string // the output file of that start
	Tail   string // its last lines
}

// exits collects a Process's unexpected exits.
type exits struct {
	mu   sync.Mutex
	list []Exit
}

// noteExit records run's exit unless kmt had asked for it before.
func (p *Process) noteExit(run *procRun, at time.Time) {
	if req := run.requestedAt.Load(); req != 0 && req <= at.UnixNano() {
		return
	}
	e := Exit{At: at, Status: errString(run.err), Log: run.logPath, Tail: tail(run.logPath)}
	p.exits.mu.Lock()
	p.exits.list = append(p.exits.list, e)
	p.exits.mu.Unlock()
	p.log.Warn("mirror process exited on its own", "status", e.Status, "log", e.Log)
}

// UnexpectedExits lists the exits kmt did not ask for, in order.
func (p *Process) UnexpectedExits() []Exit {
	p.exits.mu.Lock()
	defer p.exits.mu.Unlock()
	return append([]Exit(nil), p.exits.list...)
}
