package gameday

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
)

// watch is the state of one running step, as its monitor sees it.
type watch struct {
	d      *Day
	p      stepPlan
	res    *StepResult
	live   *live
	cancel context.CancelFunc
	// heal, when set, removes the step's faults at a halt (Kubernetes:
	// abort by label); the embedded nemesis heals on cancel.
	heal func(*Halt)
	// seen: each fault's first and last look in force (Kubernetes).
	seen map[string]*FaultOut
	// annotations: the Grafana annotation id of each fault in force.
	annotations map[string]int64

	t0          time.Time
	firstFault  time.Duration // planned start of the first fault (0: none)
	loadEnd     time.Duration // planned end of the load
	beforeDone  bool
	during      map[string]*CheckOut // per check: the first break, else the latest
	active      []string
	faultSeen   time.Time // first fault really applied
	alertPolled time.Time
	lastSay     time.Time
}

// runStep runs one step: the scenario in the background, and a monitor
// that evaluates checks, halt conditions, alerts and the control file
// every tick until the run ends.
func (d *Day) runStep(ctx context.Context, i int) StepResult {
	p := d.plans[i]
	res := &StepResult{Name: p.step.Name, Hypothesis: p.step.Hypothesis, StartedAt: time.Now(), ReportDir: p.dir, Checks: []CheckOut{}}
	d.say("step %d/%d %s: %s", i+1, len(d.plans), p.step.Name, p.step.Hypothesis)
	reg := prometheus.NewRegistry()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &watch{d: d, p: p, res: res, live: &live{g: reg}, cancel: cancel, during: map[string]*CheckOut{}}
	w.plan()
	started := make(chan time.Time, 1)
	o := d.runOptions(p)
	o.Registry = reg
	o.OnStart = func(t0 time.Time, _ string) { started <- t0 }
	var rep *report.Report
	var err error
	done := make(chan struct{})
	go func() { defer close(done); rep, err = runner.Run(sctx, o) }()
	tick := time.NewTicker(d.o.Tick)
	defer tick.Stop()
	for running := true; running; {
		select {
		case <-done:
			running = false
		case t0 := <-started:
			w.t0 = t0
		case now := <-tick.C:
			w.tick(sctx, now)
		}
	}
	res.EndedAt = time.Now()
	w.closeAnnotations(ctx, res.EndedAt)
	w.finish(ctx, rep, err)
	return *res
}

// plan reads the planned times of the step's scenario.
func (w *watch) plan() {
	sp := w.p.scenario.Spec
	w.loadEnd = sp.Load.Duration.D()
	for _, f := range sp.Timeline {
		if w.firstFault == 0 || f.At.D() < w.firstFault {
			w.firstFault = f.At.D()
		}
	}
}

// tick is one look at the running step.
func (w *watch) tick(ctx context.Context, now time.Time) {
	if c := readControl(w.d.o.Dir); c.Cmd == CmdAbort && w.res.Halt == nil {
		w.halt(Aborted, abortReason(c), now)
		return
	}
	if w.t0.IsZero() || w.res.Halt != nil {
		return
	}
	mfs, err := w.live.snapshot(now)
	if err != nil {
		return
	}
	eval := func(c Check) Observation { return w.live.evalLive(ctx, c, mfs, w.d.book.Prometheus) }
	if !w.observe(ctx, now, activeFaults(mfs), eval) {
		return
	}
	if now.Sub(w.lastSay) >= 2*time.Second {
		w.lastSay = now
		w.d.say("  %s +%4.1fs faults=%-14s lag=%-6.0f lost=%.0f dup=%.0f p99(5s)=%s", w.p.step.Name, now.Sub(w.t0).Seconds(), orDash(w.active),
			sum(mfs, metrics.ValidatorLag, "", ""), sum(mfs, metrics.ValidatorMissing, metrics.LabelCategory, "lost"),
			sum(mfs, metrics.ValidatorAnomaly, metrics.LabelCategory, "duplicate"), fmtSeconds(w.live.recentP99()))
	}
}

// observe is what every backend does on a look at a running step: follow
// the faults in force (cur), evaluate the steady state and the halt
// conditions with eval, poll the expected alert. It returns false once the
// step halted.
func (w *watch) observe(ctx context.Context, now time.Time, cur []string, eval func(Check) Observation) bool {
	el := now.Sub(w.t0)
	w.faults(ctx, cur, now)
	w.steadyState(eval, el)
	if w.res.Halt != nil {
		return false
	}
	for _, c := range append(append([]Check{}, w.d.book.Halt...), w.p.step.Halt...) {
		ob := eval(c)
		if !ob.Held && !math.IsNaN(ob.Value) {
			w.halt(Halted, fmt.Sprintf("halt condition %q broke at +%.1fs: %s", c.String(), el.Seconds(), ob.Detail), now)
			return false
		}
	}
	w.expectAlert(ctx, now)
	return true
}

func orDash(ss []string) string {
	if len(ss) == 0 {
		return "-"
	}
	return strings.Join(ss, ",")
}

func fmtSeconds(v float64) string {
	if math.IsNaN(v) {
		return "-"
	}
	return seconds(v)
}

// halt stops the step now: cancelling its run heals every active fault
// at once (the nemesis reverts on cancel) and ends the load.
func (w *watch) halt(status, reason string, now time.Time) {
	h := &Halt{Reason: reason, At: now, Active: slices.Clone(w.active)}
	if !w.t0.IsZero() {
		h.AtSeconds = now.Sub(w.t0).Seconds()
	}
	w.res.Halt, w.res.Status, w.res.Reason = h, status, reason
	w.d.say("HALT step %s: %s; healing %s now", w.p.step.Name, reason, orDash(w.active))
	if w.heal != nil {
		w.heal(h)
	}
	w.cancel()
}

// faults follows kmt_fault_active: progress and Grafana annotations at
// every real start and end.
func (w *watch) faults(ctx context.Context, cur []string, now time.Time) {
	for _, f := range cur {
		if !slices.Contains(w.active, f) {
			if w.faultSeen.IsZero() {
				w.faultSeen = now
			}
			w.d.say("  %s fault %s applied at +%.1fs", w.p.step.Name, f, now.Sub(w.t0).Seconds())
			w.annotateStart(ctx, now, f)
		}
	}
	for _, f := range w.active {
		if !slices.Contains(cur, f) {
			w.d.say("  %s fault %s reverted at +%.1fs", w.p.step.Name, f, now.Sub(w.t0).Seconds())
			w.annotateEnd(ctx, now, f)
		}
	}
	w.active = cur
}

// annotateStart opens a fault's region annotation in Grafana; a failure is
// logged and kept for the report: annotations never stop a game day.
func (w *watch) annotateStart(ctx context.Context, at time.Time, fault string) {
	g := w.d.grafana
	if g == nil {
		return
	}
	text := fmt.Sprintf("kmt game day %s, step %s: fault %s applied", w.d.book.Metadata.Name, w.p.step.Name, fault)
	id, err := g.start(ctx, at, text, w.p.step.Name, fault)
	if err != nil {
		w.annotationFailed(err)
		return
	}
	if w.annotations == nil {
		w.annotations = map[string]int64{}
	}
	w.annotations[fault] = id
}

// annotateEnd closes the fault's region at its revert.
func (w *watch) annotateEnd(ctx context.Context, at time.Time, fault string) {
	g, id := w.d.grafana, w.annotations[fault]
	if g == nil || id == 0 {
		return
	}
	text := fmt.Sprintf("kmt game day %s, step %s: fault %s applied, then reverted", w.d.book.Metadata.Name, w.p.step.Name, fault)
	if err := g.end(ctx, id, at, text); err != nil {
		w.annotationFailed(err)
	}
}

// closeAnnotations ends the regions of faults still open when the step
// ended (healed by the halt, or removed with the run).
func (w *watch) closeAnnotations(ctx context.Context, at time.Time) {
	for _, f := range w.active {
		w.annotateEnd(ctx, at, f)
	}
	w.active = nil
}

func (w *watch) annotationFailed(err error) {
	w.d.o.Logger.Warn("grafana annotation failed", "err", err)
	if len(w.res.AnnotationErrors) < 5 {
		w.res.AnnotationErrors = append(w.res.AnnotationErrors, err.Error())
	}
}

// steadyState evaluates the step's checks: once just before the first
// fault is due (a failure there halts before anything is injected), then
// every tick while a fault is active (or, without faults, while the load
// runs).
func (w *watch) steadyState(eval func(Check) Observation, el time.Duration) {
	checks := w.p.step.SteadyState
	due := w.firstFault - 2*w.d.o.Tick
	if w.firstFault == 0 {
		due = w.p.scenario.Spec.Warmup.D()
	}
	if !w.beforeDone && el >= due {
		w.beforeDone = true
		for _, c := range checks {
			ob := eval(c)
			w.res.Checks = append(w.res.Checks, CheckOut{Check: c.String(), When: "before", Held: ob.Held, Observed: ob.Value, Detail: ob.Detail, At: el.Seconds()})
			if !ob.Held {
				w.halt(Halted, fmt.Sprintf("steady state did not hold before the faults: %s (%s); nothing was injected", c.String(), ob.Detail), time.Now())
				return
			}
		}
	}
	inWindow := len(w.active) > 0 || (w.firstFault == 0 && w.beforeDone && el < w.loadEnd)
	if !w.beforeDone || !inWindow {
		return
	}
	for _, c := range checks {
		ob := eval(c)
		prev := w.during[c.String()]
		if prev != nil && !prev.Held {
			continue // keep the first break
		}
		w.during[c.String()] = &CheckOut{Check: c.String(), When: "during", Held: ob.Held, Observed: ob.Value, Detail: ob.Detail, At: el.Seconds()}
	}
}

// expectAlert polls the alerts API once a second after the first fault.
func (w *watch) expectAlert(ctx context.Context, now time.Time) {
	ea := w.p.step.ExpectAlert
	if ea == nil || w.faultSeen.IsZero() || now.Sub(w.alertPolled) < time.Second {
		return
	}
	if w.res.Alert == nil {
		w.res.Alert = &AlertOut{Name: ea.Name, Within: ea.Within.D().Seconds()}
	}
	a := w.res.Alert
	if a.Fired {
		return
	}
	w.alertPolled = now
	f, err := firing(ctx, w.d.book.Prometheus, w.d.book.Alertmanager)
	if err != nil {
		a.Error = err.Error()
		return
	}
	a.Error = ""
	// Time to detect: when kmt first saw it firing (polled each second;
	// Prometheus's activeAt is when it became pending, not firing).
	if _, ok := f[ea.Name]; ok {
		a.Fired = true
		a.TimeToDetect = now.Sub(w.faultSeen).Seconds()
		w.d.say("  %s alert %s fired %.1fs after the fault", w.p.step.Name, ea.Name, a.TimeToDetect)
	}
}

// finish fills the step's result from its report: the during and after
// checks, the faults as they happened, what to record, the status.
func (w *watch) finish(ctx context.Context, rep *report.Report, err error) {
	res := w.res
	for _, c := range w.p.step.SteadyState {
		if o := w.during[c.String()]; o != nil {
			res.Checks = append(res.Checks, *o)
		}
	}
	if rep == nil {
		if h := res.Halt; h != nil {
			if h.Healed == nil { // the run's own nemesis healed on cancel
				if err != nil {
					res.Reason += "; " + err.Error()
				}
				return
			}
			// Kubernetes: healed by removing the run.
			res.Reason += fmt.Sprintf("; healed at once: Chaos Mesh objects deleted %.2fs after the halt, fault agents stopped after %.2fs, the whole run %s removed in %.1fs (%s)",
				h.FaultsGoneSeconds, h.AgentsGoneSeconds, res.RunID, h.HealSeconds, orDash(h.Healed))
			return
		}
		res.Status, res.Reason = Errored, "the step ended without a report"
		if err != nil {
			res.Reason = err.Error()
		}
		return
	}
	res.Verdict, res.Reasons = rep.Verdict, rep.Reasons
	if res.Halt == nil {
		for _, c := range w.p.step.SteadyState {
			ob := evalAfter(ctx, c, rep, w.d.book.Prometheus)
			res.Checks = append(res.Checks, CheckOut{Check: c.String(), When: "after", Held: ob.Held, Observed: ob.Value, Detail: ob.Detail,
				At: rep.EndedAt.Sub(w.t0).Seconds()})
		}
	}
	w.record(rep)
	if res.Halt != nil {
		res.Reason += "; " + healed(res.Faults, res.Halt)
		return
	}
	var broke []string
	for _, c := range res.Checks {
		if !c.Held {
			broke = append(broke, fmt.Sprintf("%s broke %s (+%.1fs): %s", c.Check, c.When, c.At, c.Detail))
		}
	}
	if rep.Verdict != report.Pass {
		broke = append(broke, "kmt's verdict is "+rep.Verdict+": "+strings.Join(rep.Reasons, "; "))
	}
	if a := res.Alert; w.p.step.ExpectAlert != nil && (a == nil || !a.Fired || a.TimeToDetect > a.Within) {
		broke = append(broke, fmt.Sprintf("alert %s did not fire within %s of the fault", w.p.step.ExpectAlert.Name, w.p.step.ExpectAlert.Within))
	}
	if err != nil {
		broke = append(broke, "the run: "+err.Error())
	}
	res.Status = Held
	if len(broke) > 0 {
		res.Status, res.Reason = NotHeld, strings.Join(broke, "; ")
	}
	w.d.say("step %s: %s%s", res.Name, res.Status, suffix(res.Reason))
}

// record keeps the faults as they happened and what the step asked for.
func (w *watch) record(rep *report.Report) {
	res := w.res
	what := w.p.step.Record
	want := func(k string) bool { return len(what) == 0 || slices.Contains(what, k) }
	planned := map[string]time.Time{}
	for _, f := range w.p.scenario.Spec.Timeline {
		planned[f.Name] = w.t0.Add(f.End())
	}
	for _, f := range rep.Faults {
		res.Faults = append(res.Faults, FaultOut{Name: f.Name, Kind: f.Kind, AppliedAt: f.Start, RevertedAt: f.End,
			PlannedEnd: planned[f.Name], Actions: f.Actions, Error: f.Error})
	}
	if want("counts") {
		c := rep.Counts
		res.Counts = &c
		res.Recorded = append(res.Recorded, fmt.Sprintf("acked %d, received %d, lost %d, unseen %d, duplicate %d", c.Acked, c.Received, c.Lost, c.Unseen, c.Duplicate))
	}
	if want("latency") {
		l := rep.LatencySeconds
		res.Latency = &l
		res.Recorded = append(res.Recorded, fmt.Sprintf("latency p50 %s, p99 %s, max %s", seconds(l.P50), seconds(l.P99), seconds(l.Max)))
	}
	if want("lag") {
		for _, s := range rep.Timeline {
			res.MaxLag = max(res.MaxLag, s.Lag)
		}
		res.Recorded = append(res.Recorded, fmt.Sprintf("highest lag %d records", res.MaxLag))
	}
}

// healed says when each fault active at the halt was reverted.
func healed(fs []FaultOut, h *Halt) string {
	var out []string
	for _, f := range fs {
		if f.AppliedAt.IsZero() || !slices.Contains(h.Active, f.Name) {
			continue
		}
		if f.RevertedAt.IsZero() {
			out = append(out, "fault "+f.Name+" was NOT reverted")
			continue
		}
		out = append(out, fmt.Sprintf("fault %s healed %s after the halt, %s before its planned end",
			f.Name, f.RevertedAt.Sub(h.At).Round(time.Millisecond), f.PlannedEnd.Sub(f.RevertedAt).Round(100*time.Millisecond)))
	}
	if len(out) == 0 {
		return "no fault was active"
	}
	return strings.Join(out, "; ")
}
