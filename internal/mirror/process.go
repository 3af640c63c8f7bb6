package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/template"
	"time"
)

// TemplateVars are the fields a process mirror's command may use, e.g.
// "kcat -C -b {{.SourceBootstrap}} -t {{.SourceTopic}} ...".
type TemplateVars struct {
	SourceBootstrap string
	TargetBootstrap string
	SourceTopic     string
	TargetTopic     string
	Group           string
	ReportDir       string
}

// ProcessConfig configures an external mirror command.
type ProcessConfig struct {
	Command string // run with sh -c after text/template substitution of Vars
	Vars    TemplateVars
	LogDir  string // <LogName>-<n>.log per start; default Vars.ReportDir
	LogName string // default "mirror"
	// Env is added to kmt's environment for the command (secrets that must
	// not appear on a command line or in a file in the report folder).
	Env    []string
	Logger *slog.Logger
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL;
	// default 10 s.
	StopGrace time.Duration
}

const (
	defaultStopGrace = 10 * time.Second
	// earlyExitWindow: a command that fails within this long after Start
	// is reported by Start itself (bad flags, unreachable cluster, typo).
	earlyExitWindow = time.Second
	logTailBytes    = 2048
)

// Process runs a user-supplied mirror command as its own process group and
// controls it with signals. Safe for concurrent use.
type Process struct {
	cfg     ProcessConfig
	command string // rendered
	log     *slog.Logger

	op     sync.Mutex
	cur    *procRun
	starts int
	closed bool
	logs   []string
	exits  exits
}

type procRun struct {
	cmd     *exec.Cmd
	pgid    int
	logPath string
	logFile *os.File
	done    chan struct{} // closed after Wait returned and the group was swept
	err     error         // Wait's result, valid after done
	// requestedAt (UnixNano) is set before kmt stops or kills the command;
	// an exit before it, or without it, is unexpected (exits.go).
	requestedAt atomic.Int64
}

// NewProcess renders the command template. An unknown field or a syntax
// error is reported here, before anything runs.
func NewProcess(cfg ProcessConfig) (*Process, error) {
	if strings.TrimSpace(cfg.Command) == "" {
		return nil, errors.New("process mirror: command is empty; set the mirror command (run with sh -c)")
	}
	tmpl, err := template.New("mirror").Option("missingkey=error").Parse(cfg.Command)
	if err != nil {
		return nil, fmt.Errorf("process mirror: command %q is not a valid template: %w", cfg.Command, err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, cfg.Vars); err != nil {
		return nil, fmt.Errorf("process mirror: command %q uses an unknown field (known: .SourceBootstrap .TargetBootstrap .SourceTopic .TargetTopic .Group .ReportDir): %w", cfg.Command, err)
	}
	if cfg.LogDir == "" {
		cfg.LogDir = cfg.Vars.ReportDir
	}
	if cfg.LogDir == "" {
		return nil, errors.New("process mirror: LogDir is empty (and so is Vars.ReportDir); give a directory for the mirror's output")
	}
	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		return nil, fmt.Errorf("process mirror: creating log dir: %w", err)
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = defaultStopGrace
	}
	if cfg.LogName == "" {
		cfg.LogName = "mirror"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Process{cfg: cfg, command: b.String(), log: log.With("component", "mirror", "kind", "process")}, nil
}

// Command is the rendered command line.
func (p *Process) Command() string { return p.command }

// Logs lists the log files written so far, one per start, oldest first.
func (p *Process) Logs() []string {
	p.op.Lock()
	defer p.op.Unlock()
	return append([]string(nil), p.logs...)
}

// Start runs the command (again). Starting a running command is a no-op.
// If it exits with a non-zero status within the first second, Start
// returns an error with the tail of its log.
func (p *Process) Start(ctx context.Context) error {
	p.op.Lock()
	defer p.op.Unlock()
	if p.closed {
		return errors.New("process mirror: Start after Close; build a new one")
	}
	if p.cur != nil {
		select {
		case <-p.cur.done:
			p.cur = nil // exited on its own: start a new one
		default:
			return nil
		}
	}
	p.starts++
	logPath := filepath.Join(p.cfg.LogDir, fmt.Sprintf("%s-%d.log", p.cfg.LogName, p.starts))
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("process mirror: opening log %s: %w", logPath, err)
	}
	cmd := exec.Command("sh", "-c", p.command)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = p.cfg.LogDir
	if len(p.cfg.Env) > 0 {
		cmd.Env = append(os.Environ(), p.cfg.Env...)
	}
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return fmt.Errorf("process mirror: starting %q: %w", p.command, err)
	}
	run := &procRun{cmd: cmd, pgid: cmd.Process.Pid, logPath: logPath, logFile: f, done: make(chan struct{})}
	go func() {
		run.err = cmd.Wait()
		exitedAt := time.Now()
		// Sweep the group: children the shell left behind (background
		// jobs, a pipeline member that outlived sh) must not survive it.
		_ = syscall.Kill(-run.pgid, syscall.SIGKILL)
		_ = f.Close()
		p.noteExit(run, exitedAt)
		close(run.done)
	}()
	p.cur = run
	p.logs = append(p.logs, logPath)
	p.log.Info("mirror process started", "pid", run.pgid, "log", logPath, "command", p.command)

	t := time.NewTimer(earlyExitWindow)
	defer t.Stop()
	select {
	case <-run.done:
		if run.err != nil {
			p.cur = nil
			return fmt.Errorf("process mirror: %q exited right after start (%v); last lines of %s:\n%s", p.command, run.err, logPath, tail(logPath))
		}
		p.log.Info("mirror process exited at once with status 0", "log", logPath)
	case <-t.C:
	case <-ctx.Done():
	}
	return nil
}

// Stop sends SIGTERM to the whole group (continuing it first if paused),
// then SIGKILL after the grace period or when ctx ends.
func (p *Process) Stop(ctx context.Context) error {
	p.op.Lock()
	defer p.op.Unlock()
	return p.stopLocked(ctx)
}

func (p *Process) stopLocked(ctx context.Context) error {
	run := p.cur
	if run == nil {
		return nil
	}
	p.cur = nil
	run.requestedAt.Store(time.Now().UnixNano())
	select {
	case <-run.done:
		return nil
	default:
	}
	_ = syscall.Kill(-run.pgid, syscall.SIGTERM)
	// A stopped process only acts on SIGTERM once continued.
	_ = syscall.Kill(-run.pgid, syscall.SIGCONT)
	t := time.NewTimer(p.cfg.StopGrace)
	defer t.Stop()
	select {
	case <-run.done:
		p.log.Info("mirror process stopped", "pid", run.pgid, "exit", errString(run.err))
		return nil
	case <-t.C:
	case <-ctx.Done():
	}
	_ = syscall.Kill(-run.pgid, syscall.SIGKILL)
	<-run.done
	p.log.Warn("mirror process ignored SIGTERM; killed it", "pid", run.pgid, "grace", p.cfg.StopGrace)
	return nil
}

// Kill sends SIGKILL to the whole group and waits until the shell is gone.
func (p *Process) Kill() error {
	p.op.Lock()
	defer p.op.Unlock()
	run := p.cur
	if run == nil {
		return nil
	}
	p.cur = nil
	run.requestedAt.Store(time.Now().UnixNano())
	_ = syscall.Kill(-run.pgid, syscall.SIGKILL)
	<-run.done
	p.log.Info("mirror process killed", "pid", run.pgid)
	return nil
}

// Pause freezes the whole group with SIGSTOP; its connections stay open.
func (p *Process) Pause() error {
	p.op.Lock()
	defer p.op.Unlock()
	run, err := p.liveLocked("Pause")
	if err != nil {
		return err
	}
	if err := syscall.Kill(-run.pgid, syscall.SIGSTOP); err != nil {
		return fmt.Errorf("process mirror: SIGSTOP to group %d: %w", run.pgid, err)
	}
	return nil
}

// Resume continues a paused group with SIGCONT.
func (p *Process) Resume() error {
	p.op.Lock()
	defer p.op.Unlock()
	run, err := p.liveLocked("Resume")
	if err != nil {
		return err
	}
	if err := syscall.Kill(-run.pgid, syscall.SIGCONT); err != nil {
		return fmt.Errorf("process mirror: SIGCONT to group %d: %w", run.pgid, err)
	}
	return nil
}

// exited reports whether the current run has ended on its own, with its
// exit error.
func (p *Process) exited() (bool, error) {
	p.op.Lock()
	defer p.op.Unlock()
	if p.cur == nil {
		return true, errors.New("not running")
	}
	select {
	case <-p.cur.done:
		return true, p.cur.err
	default:
		return false, nil
	}
}

func (p *Process) liveLocked(op string) (*procRun, error) {
	if p.cur == nil {
		return nil, fmt.Errorf("process mirror: %s while not running; Start it first", op)
	}
	select {
	case <-p.cur.done:
		return nil, fmt.Errorf("process mirror: %s, but the command already exited (%s); see %s", op, errString(p.cur.err), p.cur.logPath)
	default:
	}
	return p.cur, nil
}

// Close stops the command (gracefully, SIGKILL after the grace period) and
// waits for it; later calls do nothing.
func (p *Process) Close() error {
	p.op.Lock()
	defer p.op.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	return p.stopLocked(context.Background())
}

func errString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// tail returns the last logTailBytes of a log file, or why it cannot.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	if len(b) == 0 {
		return "(log is empty)"
	}
	return string(b)
}
