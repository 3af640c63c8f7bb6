package gameday

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kube/charts"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube/clusterrun"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/history"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/htmlreport"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// A game day on Kubernetes runs each step as `kmt cluster run` does: the
// step's scenario becomes a chart (its own faults, load and short form
// included) installed into both clusters with one fresh run id; the day
// follows it through the validator's progress ConfigMap, the run's Chaos
// Mesh objects and Jobs, and the cluster's Prometheus; a halt or an abort
// removes everything labelled with the run (Chaos Mesh objects first, so
// the faults stop before anything else; deleting the agent Jobs makes each
// agent resume what it paused), and a finished step is uninstalled the
// same way, so nothing of a step outlives it.

// defaultKubeTimeout bounds each Helm action and each removal of a run.
const defaultKubeTimeout = 5 * time.Minute

func (d *Day) kubeTimeout() time.Duration {
	if t := d.book.Clusters.Timeout.D(); t > 0 {
		return t
	}
	return defaultKubeTimeout
}

// kubeSides reads the two clusters of the run book from the kubeconfig.
func (d *Day) kubeSides() (clusterrun.Side, clusterrun.Side, error) {
	c := d.book.Clusters
	src, err := clusterrun.LoadSide(c.Kubeconfig, c.Source.Context, c.Source.Namespace, clusterrun.RoleSource)
	if err != nil {
		return src, src, err
	}
	tgt, err := clusterrun.LoadSide(c.Kubeconfig, c.Target.Context, c.Target.Namespace, clusterrun.RoleTarget)
	return src, tgt, err
}

// planKube writes the step's chart beside its report folder and prepares
// the runner that installs it (nothing is sent to the clusters yet).
func (d *Day) planKube(p *stepPlan, sc *scenarios.Scenario, src, tgt clusterrun.Side) error {
	c := d.book.Clusters
	root := c.Charts
	if root == "" {
		root = "charts"
	}
	chartDir := filepath.Join(d.o.Dir, p.dir+".chart")
	if err := charts.WriteScenario(chartDir, sc, root); err != nil {
		return err
	}
	stepDir := filepath.Join(d.o.Dir, p.dir)
	if err := os.MkdirAll(stepDir, 0o755); err != nil {
		return err
	}
	log, closeLog := history.OpenLog(stepDir, d.o.Logger)
	d.closers = append(d.closers, closeLog)
	r, err := clusterrun.New(clusterrun.Options{
		Source: src, Target: tgt, Chart: chartDir, Scenario: sc.Metadata.Name, RunID: clusterrun.NewRunID(),
		Values:     c.Values,
		SideValues: map[clusterrun.Role]map[string]any{clusterrun.RoleSource: c.Source.Values, clusterrun.RoleTarget: c.Target.Values},
		Timeout:    d.kubeTimeout(), PollInterval: d.o.Tick, Logger: log,
	})
	if err != nil {
		return err
	}
	p.kube, p.log = r, log
	return history.SaveConfig(stepDir, sc)
}

// preflightKube renders every step's chart against both live API servers
// (a Helm dry run: nothing is written): the namespaces exist, every object
// is accepted by name, and chaos goes only where a namespace opted in.
func (d *Day) preflightKube(ctx context.Context) string {
	for _, p := range d.plans {
		out := CheckOut{Check: "step " + p.step.Name + ": its chart renders in both clusters and its faults go where chaos is allowed", When: "pre-flight"}
		pl, err := p.kube.Plan(ctx)
		if err == nil {
			err = pl.Err()
		}
		if err != nil {
			out.Detail = err.Error()
		} else {
			out.Held = true
			var objs, chaos int
			for _, s := range pl.Sides {
				objs, chaos = objs+len(s.Create), chaos+len(s.Chaos)
			}
			out.Observed = float64(objs)
			out.Detail = fmt.Sprintf("%d objects to create, %d of them Chaos Mesh faults, run %s", objs, chaos, p.kube.RunID())
		}
		d.res.Preflight = append(d.res.Preflight, out)
		if !out.Held {
			return out.Check + ": " + out.Detail
		}
	}
	return ""
}

// runKubeStep installs one step's chart into both clusters and watches it
// until the validator's report is there, a halt condition breaks, or an
// operator aborts; then the step's run is removed from both clusters.
func (d *Day) runKubeStep(ctx context.Context, i int) StepResult {
	p := d.plans[i]
	r := p.kube
	res := &StepResult{Name: p.step.Name, Hypothesis: p.step.Hypothesis, StartedAt: time.Now(), ReportDir: p.dir, RunID: r.RunID(), Checks: []CheckOut{}}
	d.say("step %d/%d %s (run %s): %s", i+1, len(d.plans), p.step.Name, r.RunID(), p.step.Hypothesis)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := &watch{d: d, p: p, res: res, cancel: cancel, during: map[string]*CheckOut{}, seen: map[string]*FaultOut{}}
	w.plan()
	w.heal = func(h *Halt) { w.healKube(r, h) }
	rep, err := w.followKube(sctx, r)
	res.EndedAt = time.Now()
	w.closeAnnotations(ctx, res.EndedAt)
	if rep != nil {
		if werr := writeKubeReport(filepath.Join(d.o.Dir, p.dir), rep); werr != nil {
			p.log.Warn("could not write the step's report folder", "err", werr)
		}
		w.finish(ctx, rep.Report, err)
	} else {
		w.finish(ctx, nil, err)
		res.Faults = w.seenFaults()
	}
	if res.Halt == nil {
		// Finished (or failed): uninstall, then sweep by label as abort does.
		ur, uerr := r.Uninstall(context.WithoutCancel(ctx))
		res.Cleanup = cleanupOf(ur, uerr)
		d.say("step %s: run %s removed from both clusters (%d objects), %d left", res.Name, r.RunID(), res.Cleanup.Removed, len(res.Cleanup.Left))
	}
	return *res
}

// followKube installs the chart and looks at both clusters every tick.
// It returns the validator's report, or nil when the step halted.
func (w *watch) followKube(ctx context.Context, r *clusterrun.Runner) (*clusterrun.Report, error) {
	if err := r.Install(ctx); err != nil {
		return nil, fmt.Errorf("install the step's chart: %w", err)
	}
	w.t0 = time.Now()
	w.d.say("  %s installed into both clusters; abort by hand with: kmt abort --run-id %s", w.p.step.Name, r.RunID())
	tick := time.NewTicker(w.d.o.Tick)
	defer tick.Stop()
	var lookErrs int
	for {
		var now time.Time
		select {
		case <-ctx.Done():
			if w.res.Halt == nil {
				w.halt(Aborted, "interrupted (signal)", time.Now())
			}
			return nil, nil
		case now = <-tick.C:
		}
		if c := readControl(w.d.o.Dir); c.Cmd == CmdAbort {
			w.halt(Aborted, abortReason(c), now)
			return nil, nil
		}
		look, err := r.Look(ctx)
		var jf *clusterrun.JobFailedError
		switch {
		case errors.As(err, &jf):
			return nil, err
		case err != nil && ctx.Err() == nil:
			// The API server may blink; ten failed looks in a row end the step.
			if lookErrs++; lookErrs >= 10 {
				return nil, fmt.Errorf("looking at run %s failed %d times in a row: %w", r.RunID(), lookErrs, err)
			}
			continue
		}
		lookErrs = 0
		eval := func(c Check) Observation { return kubeEval(ctx, c, look, w.d.book.Prometheus, r.RunID()) }
		cur := kubeActive(ctx, look, w.d.book.Prometheus, r.RunID())
		w.track(cur, now)
		if !w.observe(ctx, now, cur, eval) {
			return nil, nil
		}
		if now.Sub(w.lastSay) >= 2*time.Second {
			w.lastSay = now
			w.d.say("  %s +%4.1fs phase=%s faults=%s acked=%.0f received=%.0f lost=%.0f dup=%.0f", w.p.step.Name, now.Sub(w.t0).Seconds(),
				orDash(strings.Fields(look.Phase)), orDash(cur), look.Counts["acked"], look.Counts["received"], look.Counts["lost"], look.Counts["duplicate"])
		}
		if look.Done {
			return r.Fetch(ctx)
		}
	}
}

// healKube removes everything of the step's run from both clusters, Chaos
// Mesh objects first, and records what went and how long it took.
func (w *watch) healKube(r *clusterrun.Runner, h *Halt) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), w.d.kubeTimeout())
	defer cancel()
	ar, err := r.Abort(ctx, clusterrun.AbortOptions{Timeout: w.d.kubeTimeout()})
	h.HealSeconds = time.Since(start).Seconds()
	h.Healed = []string{}
	if ar != nil {
		if !ar.FaultsRemoved.IsZero() {
			h.FaultsGoneSeconds = ar.FaultsRemoved.Sub(start).Seconds()
		}
		if !ar.AgentsStopped.IsZero() {
			h.AgentsGoneSeconds = ar.AgentsStopped.Sub(start).Seconds()
		}
		for _, o := range ar.Deleted {
			h.Healed = append(h.Healed, o.String())
		}
		for _, rel := range ar.Releases {
			h.Healed = append(h.Healed, "Helm release "+rel)
		}
	}
	w.res.Cleanup = cleanupOf(ar, err)
	for _, f := range w.seen {
		if f.RevertedAt.IsZero() {
			f.RevertedAt = time.Now()
		}
	}
	w.d.say("  %s healed: Chaos Mesh objects deleted after %.2fs, agents stopped after %.2fs, %d object(s) of run %s removed in %.1fs, %d left",
		w.p.step.Name, h.FaultsGoneSeconds, h.AgentsGoneSeconds, len(h.Healed), r.RunID(), h.HealSeconds, len(w.res.Cleanup.Left))
}

func cleanupOf(ar *clusterrun.AbortResult, err error) *Cleanup {
	c := &Cleanup{Left: []string{}}
	if ar != nil {
		c.Removed = len(ar.Deleted) + len(ar.Releases)
		for _, o := range ar.Remaining {
			c.Left = append(c.Left, o.String())
		}
		c.Notes = ar.Notes
	}
	if err != nil {
		c.Error = err.Error()
	}
	return c
}

// track keeps when each fault was first and last seen in force, for a step
// that ends without the validator's own account of the faults.
func (w *watch) track(cur []string, now time.Time) {
	for _, f := range cur {
		if w.seen[f] == nil {
			w.seen[f] = &FaultOut{Name: f, AppliedAt: now}
		}
	}
	for name, f := range w.seen {
		if f.RevertedAt.IsZero() && !slices.Contains(cur, name) {
			f.RevertedAt = now
		}
	}
}

func (w *watch) seenFaults() []FaultOut {
	out := make([]FaultOut, 0, len(w.seen))
	for _, f := range w.seen {
		out = append(out, *f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AppliedAt.Before(out[j].AppliedAt) })
	return out
}

// kubeActive lists the faults in force: the one whose window the
// validator is in (its progress phase fault:<name>, on the load's clock),
// the run's single Chaos Mesh objects that inject now (as Chaos Mesh
// records it; a Workflow running or an object Chaos Mesh has not picked up
// yet is no fault in force), and, when Prometheus is given, the faults the
// in-cluster agents report with kmt_fault_active (kmt's own pauses and
// purges, and what Chaos Mesh's Workflows really spawned).
func kubeActive(ctx context.Context, look clusterrun.Progress, prom *Endpoint, run string) []string {
	set := map[string]bool{}
	if f, ok := strings.CutPrefix(look.Phase, "fault:"); ok && f != "" {
		set[f] = true
	}
	for _, c := range look.Chaos {
		if c.Active && c.Kind != "Workflow" && c.Kind != "Schedule" && c.Phase != "Pending" {
			set[fmt.Sprintf("%s:%s/%s", c.Cluster, c.Kind, c.Name)] = true
		}
	}
	if prom != nil {
		q := fmt.Sprintf(`max by (%s) (%s{%s=%q}) == 1`, metrics.LabelFault, metrics.FaultActive, metrics.LabelRun, run)
		if names, err := labelValues(ctx, prom.URL, q, metrics.LabelFault); err == nil {
			for _, n := range names {
				set[n] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// kubeEval evaluates a check on a running Kubernetes step: kmt's
// invariants from the validator's progress ConfigMap (its live counts),
// the p99 from the validator's latency histogram in Prometheus, PromQL as
// written. No progress yet (the validator has not started) holds, with the
// value NaN, as the embedded p99 does before anything arrived.
func kubeEval(ctx context.Context, c Check, look clusterrun.Progress, prom *Endpoint, run string) Observation {
	n := look.Counts
	noData := Observation{Value: math.NaN(), Held: true, Detail: "no progress from the validator yet"}
	switch c.Invariant {
	case NothingLost:
		if n == nil {
			return noData
		}
		v := n["lost"]
		return Observation{Value: v, Held: v == 0, Detail: fmt.Sprintf("%g lost so far (validator progress)", v)}
	case LagBelow:
		if n == nil {
			return noData
		}
		v := max(n["acked"]-n["received"], 0)
		return Observation{Value: v, Held: v < c.Value, Detail: fmt.Sprintf("lag %g records (acked %g - received %g, validator progress)", v, n["acked"], n["received"])}
	case DuplicatesBelow:
		if n == nil {
			return noData
		}
		v := n["duplicate"]
		return Observation{Value: v, Held: v < c.Value, Detail: fmt.Sprintf("%g duplicates so far (validator progress)", v)}
	case P99Below:
		q := fmt.Sprintf(`histogram_quantile(0.99, sum by (le) (rate(%s_bucket{%s=%q}[1m])))`, metrics.ValidatorLatency, metrics.LabelRun, run)
		v, err := instantQuery(ctx, prom.URL, q)
		switch {
		case errors.Is(err, errNoSeries) || (err == nil && math.IsNaN(v)):
			return Observation{Value: math.NaN(), Held: true, Detail: "no arrivals in the last minute (Prometheus)"}
		case err != nil:
			return Observation{Value: math.NaN(), Detail: err.Error()}
		}
		return Observation{Value: v, Held: v < c.Value, Detail: fmt.Sprintf("p99 of the last minute %s (Prometheus)", seconds(v))}
	}
	return evalPromQL(ctx, prom, c)
}

// writeKubeReport keeps the validator's report in the step's folder as a
// local run's: report.json exactly as written in the cluster, report.html.
func writeKubeReport(dir string, rep *clusterrun.Report) error {
	if err := os.WriteFile(filepath.Join(dir, history.ReportFile), rep.Raw, 0o644); err != nil {
		return err
	}
	_, err := htmlreport.WriteFile(dir, rep.Report)
	return err
}
