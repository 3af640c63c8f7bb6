package gameday

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/assertions"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube/clusterrun"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Options of one game day.
type Options struct {
	Dir      string       // the game day's folder (created)
	Progress io.Writer    // live progress lines; nil = none
	Logger   *slog.Logger // the steps' runs log here (their kmt.log has it all)
	// Tick is how often checks, halt conditions and the control file are
	// read (default 250 ms).
	Tick time.Duration
}

// Day is a game day in progress.
type Day struct {
	book  *Book
	o     Options
	res   *Result
	plans []stepPlan
	// closers close the steps' log files when the day ends.
	closers []func()
	grafana *grafanaClient // nil: no annotations
}

// stepPlan is a step ready to run: its scenario file and run options.
type stepPlan struct {
	step     Step
	scenario *scenarios.Scenario
	path     string
	dir      string // relative to the game day's folder
	// kube installs the step's chart (backend kubernetes); log is the
	// step's log, teed into its kmt.log.
	kube *clusterrun.Runner
	log  *slog.Logger
}

// Run runs the game day and writes its report into o.Dir. The error is
// only for a game day that could not start (bad run book: runner.Usage);
// every later problem is in the result.
func Run(ctx context.Context, b *Book, o Options) (*Result, error) {
	if o.Tick <= 0 {
		o.Tick = 250 * time.Millisecond
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, runner.Env(fmt.Errorf("create the game day folder %s: %w", o.Dir, err))
	}
	d := &Day{book: b, o: o, res: &Result{
		Name: b.Metadata.Name, Description: b.Metadata.Description, Owner: b.Metadata.Owner, AbortOwner: b.Metadata.AbortOwner,
		Backend: b.Clusters.Backend, StartedAt: time.Now(), Preflight: []CheckOut{}, KMT: report.CurrentBuild(),
	}}
	defer func() {
		for _, c := range d.closers {
			c()
		}
	}()
	var err error
	if d.grafana, err = newGrafana(b.Grafana); err != nil {
		return nil, runner.Usage(err)
	}
	if err := d.plan(); err != nil {
		return nil, runner.Usage(err)
	}
	// The control file exists while the day runs: kmt gameday abort finds it.
	if err := os.WriteFile(filepath.Join(o.Dir, ControlFile), nil, 0o644); err != nil {
		return nil, runner.Env(err)
	}
	defer os.Remove(filepath.Join(o.Dir, ControlFile))
	d.say("game day %s: %d steps, owner %s, abort owner %s", b.Metadata.Name, len(b.Steps), b.Metadata.Owner, b.Metadata.AbortOwner)
	d.say("pause, resume or abort from another terminal: kmt gameday pause|resume|abort %s", o.Dir)
	d.run(ctx)
	d.res.EndedAt = time.Now()
	d.res.Findings = d.res.findings()
	if err := d.res.write(o.Dir); err != nil {
		return d.res, runner.Env(err)
	}
	d.say("game day %s: %s%s; report %s", b.Metadata.Name, d.res.Outcome, suffix(d.res.Reason), filepath.Join(o.Dir, resultHTML))
	return d.res, nil
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}

func (d *Day) say(f string, a ...any) {
	fmt.Fprintf(d.o.Progress, "[gameday %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(f, a...))
}

// run goes through pre-flight and the steps, stopping at a halt or abort.
func (d *Day) run(ctx context.Context) {
	d.res.Outcome = Held
	if reason := d.preflight(ctx); reason != "" {
		d.stop(Halted, "pre-flight: "+reason, 0)
		return
	}
	for i := range d.plans {
		if reason, abort := d.waitIfPaused(ctx); abort {
			d.stop(Aborted, reason, i)
			return
		}
		run := d.runStep
		if d.book.Clusters.Backend == BackendKubernetes {
			run = d.runKubeStep
		}
		sr := run(ctx, i)
		d.res.Steps = append(d.res.Steps, sr)
		switch sr.Status {
		case Halted, Aborted:
			d.stop(sr.Status, fmt.Sprintf("step %s: %s", sr.Name, sr.Reason), i+1)
			return
		case NotHeld, Errored:
			d.res.Outcome = NotHeld
		}
	}
}

// stop ends the day with outcome and reason; steps from `from` on are
// skipped.
func (d *Day) stop(outcome, reason string, from int) {
	d.res.Outcome, d.res.Reason = outcome, reason
	for _, p := range d.plans[min(from, len(d.plans)):] {
		if len(d.res.Steps) > 0 && d.res.Steps[len(d.res.Steps)-1].Name == p.step.Name {
			continue
		}
		d.res.Steps = append(d.res.Steps, StepResult{Name: p.step.Name, Hypothesis: p.step.Hypothesis, Status: Skipped,
			Reason: "not run: the game day stopped before it", Checks: []CheckOut{}})
	}
	d.say("STOPPED (%s): %s", outcome, reason)
}

// waitIfPaused holds while the control file says pause; it returns the
// reason and true on abort.
func (d *Day) waitIfPaused(ctx context.Context) (string, bool) {
	announced := false
	for {
		c := readControl(d.o.Dir)
		switch {
		case ctx.Err() != nil:
			return "interrupted (signal)", true
		case c.Cmd == CmdAbort:
			return abortReason(c), true
		case c.Cmd != CmdPause:
			if announced {
				d.say("resumed by %s", c.By)
			}
			return "", false
		}
		if !announced {
			d.say("paused by %s%s: kmt gameday resume %s to go on", c.By, suffix(c.Why), d.o.Dir)
			announced = true
		}
		select {
		case <-ctx.Done():
		case <-time.After(d.o.Tick):
		}
	}
}

func abortReason(c Control) string {
	return "aborted by " + orSomeone(c.By) + suffix(c.Why)
}

func orSomeone(s string) string {
	if s == "" {
		return "an operator"
	}
	return s
}

// plan prepares every step's scenario before anything runs, so a mistake in
// the last step is found before the first fault.
func (d *Day) plan() error {
	var errs []error
	var src, tgt clusterrun.Side
	if d.book.Clusters.Backend == BackendKubernetes {
		var err error
		if src, tgt, err = d.kubeSides(); err != nil {
			return err
		}
	}
	for i, s := range d.book.Steps {
		p, err := d.planStep(i, s, src, tgt)
		if err != nil {
			errs = append(errs, fmt.Errorf("step %s: %w", s.Name, err))
			continue
		}
		d.plans = append(d.plans, p)
	}
	return errors.Join(errs...)
}

func (d *Day) planStep(i int, s Step, src, tgt clusterrun.Side) (stepPlan, error) {
	name := s.Scenario
	if name == "" {
		name = "baseline"
	}
	sc, err := scenarios.Read(name)
	if err != nil {
		return stepPlan{}, err
	}
	if s.Short {
		if sc.Spec.Short == nil {
			return stepPlan{}, fmt.Errorf("short: scenario %s has no short form", name)
		}
		sc = sc.ShortForm()
	}
	sc.Spec.Short = nil
	sp := &sc.Spec
	if s.Faults != nil {
		sp.Timeline = s.Faults
		if r := sp.Assertions.RecoversWithin; r != nil && !hasFault(s.Faults, r.After) {
			sp.Assertions.RecoversWithin = nil // it named a fault the step replaced
		}
	}
	if l := s.Load; l != nil {
		if l.Rate > 0 {
			sp.Load.Rate = l.Rate
		}
		if l.Duration > 0 {
			sp.Load.Duration = l.Duration
		}
	}
	if s.Drain > 0 {
		sp.Drain = s.Drain
	}
	sp.Topology.Mirror.Defects = append(sp.Topology.Mirror.Defects, s.Defects...)
	if d.book.Clusters.Backend == BackendExternal {
		sp.Topology.Mirror.Kind = scenarios.MirrorExternal
	}
	b, err := yaml.Marshal(sc)
	if err != nil {
		return stepPlan{}, err
	}
	rel := fmt.Sprintf("%02d-%s", i+1, s.Name)
	path := filepath.Join(d.o.Dir, rel+".scenario.yaml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return stepPlan{}, err
	}
	p := stepPlan{step: s, path: path, dir: rel}
	if d.book.Clusters.Backend == BackendKubernetes {
		p.scenario = sc
		if err := d.planKube(&p, sc, src, tgt); err != nil {
			return stepPlan{}, err
		}
	} else {
		prep, err := runner.Prepare(d.runOptions(p))
		if err != nil {
			return stepPlan{}, err
		}
		p.scenario = prep.Scenario
	}
	// The scenario's assertions are compiled when the step runs: compile
	// them now so a window the step's faults removed is found up front.
	if _, err := assertions.Compile(p.scenario); err != nil {
		return stepPlan{}, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

func hasFault(fs []scenarios.Fault, name string) bool {
	for _, f := range fs {
		if f.Name == name {
			return true
		}
	}
	return false
}

func (d *Day) runOptions(p stepPlan) runner.Options {
	o := runner.Options{Scenario: p.path, ReportDir: filepath.Join(d.o.Dir, p.dir), Logger: d.o.Logger, MetricsAddr: d.book.Clusters.MetricsAddr}
	if c := d.book.Clusters; c.Backend == BackendExternal {
		o.SourceBootstrap, o.TargetBootstrap, o.TargetTopic = c.SourceBootstrap, c.TargetBootstrap, c.TargetTopic
	}
	return o
}

// preflight looks both ways before anything is injected: no alert fires,
// and (on the user's clusters) the first step's PromQL steady state holds.
// Each step also checks its steady state just before its first fault.
func (d *Day) preflight(ctx context.Context) string {
	b := d.book
	if b.Prometheus != nil || b.Alertmanager != nil {
		f, err := firing(ctx, b.Prometheus, b.Alertmanager)
		out := CheckOut{Check: "no alert firing", When: "pre-flight", Held: err == nil && len(f) == 0}
		switch {
		case err != nil:
			out.Detail = err.Error()
		case len(f) > 0:
			out.Detail = "firing: " + strings.Join(mapKeys(f), ", ")
		default:
			out.Detail = "no alert firing"
		}
		d.res.Preflight = append(d.res.Preflight, out)
		if !out.Held {
			return out.Detail
		}
	}
	if b.Clusters.Backend == BackendKubernetes {
		if reason := d.preflightKube(ctx); reason != "" {
			return reason
		}
	}
	if b.Clusters.Backend != BackendEmbedded && len(d.plans) > 0 {
		for _, c := range d.plans[0].step.SteadyState {
			if c.PromQL == "" {
				continue
			}
			ob := evalPromQL(ctx, b.Prometheus, c)
			d.res.Preflight = append(d.res.Preflight, CheckOut{Check: c.String(), When: "pre-flight", Held: ob.Held, Observed: ob.Value, Detail: ob.Detail})
			if !ob.Held {
				return c.String() + " does not hold: " + ob.Detail
			}
		}
	}
	if len(d.res.Preflight) == 0 {
		d.say("pre-flight: no alerts API or PromQL steady state to check; each step checks its steady state before its faults")
	} else {
		d.say("pre-flight: %d check(s) held", len(d.res.Preflight))
	}
	return ""
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
