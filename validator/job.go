package validator

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	bootlist "github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/assertions"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube/agent"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Job is the validator on its own, in the target datacenter (`kmt
// validate`, the charts' validator Job): it reads the run's ack ledger from
// the ledger topic on the source, reads the target (and the source), waits
// for the load to finish, drains, evaluates the scenario's assertions
// against a Prometheus and returns the judged report. The command only
// turns flags into a Job and the report into files and an exit code.
type Job struct {
	SourceBootstrap, TargetBootstrap string
	Security                         kafkaclient.Security
	Topics                           []TopicPair
	RunID                            string
	// LedgerTopic is where the loadgen publishes its acks (on the source).
	LedgerTopic string
	// Scenario (optional) gives phases, faults and assertions.
	Scenario   *scenarios.Scenario
	Assertions []assertions.Assertion
	Remote     *assertions.Remote // nil: assertions are not evaluated
	// FaultsTopic: with Scenario, what the in-cluster fault agents did.
	FaultsTopic string
	Drain, Wait time.Duration
	Short       bool
	// Shard of Shards (>= 2): RunShard reads this shard's partitions and
	// publishes its state to StatesTopic (on the target; default
	// DefaultStatesTopic). Merge: Run merges the Shards states instead of
	// reading (shardjob.go).
	Shard, Shards int
	StatesTopic   string
	Merge         bool
	Registerer    prometheus.Registerer
	Logger        *slog.Logger
	// Progress is called about every 2 s while waiting for the load.
	Progress func(phase string, c Counts)
	// Started, LoadEnded and Judged, when set, are called once the
	// validator runs, when the load ended, and after the verdict (the
	// command measures kmt's own health over them).
	Started   func(v *Validator)
	LoadEnded func()
	Judged    func(rep *report.Report)
	// LoadSeen, when set, is called once when the load's first acks are
	// seen (t0), with the running validator (the command starts the
	// report's per-second sampler there).
	LoadSeen func(t0 time.Time, v *Validator)
	// Drained, when set, is called after the drain with the report and
	// how long after the validator started the load began.
	Drained func(rep *report.Report, v *Validator, loadOffset time.Duration)
}

// Run judges the run. The report is returned whenever the job got as far
// as reading (verdict incomplete, with the reason, when it could not
// finish); the error is for what stopped it before (a bad config is a
// *ConfigError).
func (j Job) Run(ctx context.Context) (*report.Report, error) {
	rep := &report.Report{SchemaVersion: report.SchemaVersion, Scenario: j.Name(), Run: j.RunID, Backend: "external", Mirror: "external", Short: j.Short, StartedAt: time.Now()}
	if j.Merge {
		return j.runMerge(ctx, rep)
	}
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	led, ledErr := j.readLedger(lctx)
	val, err := New(j.validatorConfig(led))
	if err != nil {
		return nil, &ConfigError{err}
	}
	vctx, vcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer vcancel()
	vstart := time.Now()
	if err := val.Start(vctx); err != nil {
		return nil, err
	}
	if j.Started != nil {
		j.Started(val)
	}
	var faults *agent.Collector
	if j.FaultsTopic != "" && j.Scenario != nil {
		// Purges reach the validator as they happen, before it drains.
		faults = agent.NewCollector(val.NoteTruncation)
		go agent.Read(lctx, j.sourceClient(), j.FaultsTopic, j.RunID, faults.Add)
	}
	t0, interrupted := j.waitForLoad(ctx, rep, led, val, ledErr)
	loadEnd := time.Now()
	if j.LoadEnded != nil {
		j.LoadEnded()
	}
	drain := j.Drain
	if interrupted {
		drain = 0
		rep.Verdict = report.Incomplete
		rep.Error = "interrupted"
	}
	res, derr := val.Drain(context.WithoutCancel(ctx), drain)
	if derr != nil && rep.Error == "" {
		rep.Error = "validator: " + derr.Error()
	}
	if res != nil {
		ApplyResult(rep, res)
	}
	if j.Drained != nil {
		j.Drained(rep, val, t0.Sub(vstart))
	}
	rep.EndedAt = time.Now()
	if j.Scenario != nil {
		j.judgeScenario(ctx, rep, faults, t0, loadEnd)
	}
	rep.Judge()
	if j.Judged != nil {
		j.Judged(rep)
	}
	return rep, nil
}

// ConfigError is a Job that cannot start as configured (exit 2).
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// waitForLoad waits for the ledger's done entry (or Wait, or an interrupt)
// and returns when the load started (as first seen) and whether the run was
// interrupted. A load that does not finish in time, or a ledger that cannot
// be read, makes the report incomplete with the reason.
func (j Job) waitForLoad(ctx context.Context, rep *report.Report, led *ledger.Ledger, val *Validator, ledErr <-chan error) (t0 time.Time, interrupted bool) {
	j.Logger.Info("waiting for the load to finish", "run", j.RunID, "ledger_topic", j.LedgerTopic, "wait", j.Wait)
	deadline := time.Now().Add(j.Wait)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for !led.Done() {
		if acked, _ := led.Totals(); acked > 0 && t0.IsZero() {
			// The ledger is flushed about once a second: the load started
			// about a second before its first entry was read.
			t0 = time.Now().Add(-time.Second)
			if j.LoadSeen != nil {
				j.LoadSeen(t0, val)
			}
		}
		if time.Now().After(deadline) {
			rep.Error = fmt.Sprintf("the load of run %s did not finish within %s (no done entry in ledger topic %s): is the loadgen running with --run-id %s --ledger-topic %s? raise --wait for long loads", j.RunID, j.Wait, j.LedgerTopic, j.RunID, j.LedgerTopic)
			rep.Verdict = report.Incomplete
			break
		}
		select {
		case <-ctx.Done():
			interrupted = true
		case err := <-ledErr:
			if err != nil && ctx.Err() == nil {
				rep.Error = "reading the ledger: " + err.Error()
				rep.Verdict = report.Incomplete
			}
		case <-tick.C:
			if j.Progress != nil {
				phase := "waiting for load"
				if !t0.IsZero() && j.Scenario != nil {
					phase = PhaseAt(j.Scenario, time.Since(t0))
				}
				j.Progress(phase, val.Live())
			}
		}
		if interrupted || rep.Error != "" {
			break
		}
	}
	if t0.IsZero() {
		t0 = rep.StartedAt
	}
	return t0, interrupted
}

// judgeScenario places the scenario's phases and the faults the agents
// really did on the clock, and evaluates the assertions over them.
func (j Job) judgeScenario(ctx context.Context, rep *report.Report, faults *agent.Collector, t0, loadEnd time.Time) {
	s := j.Scenario
	// The load's real start, as the ledger carries it (the same clock the
	// fault agents use), over the validator's first sight of it.
	if st, err := agent.LoadStart(ctx, j.sourceClient(), j.LedgerTopic, j.RunID, 30*time.Second); err == nil {
		t0 = st
	}
	w := assertions.PlannedWindows(s, t0)
	if faults != nil {
		if missing := faults.Wait(ctx, kube.FaultRecordsWait); len(missing) > 0 {
			j.Logger.Warn("fault agents did not finish; their faults count as not done", "clusters", missing)
		}
		rep.Faults = faults.Faults(s, t0, loadEnd)
		actualFaultWindows(w, rep.Faults, rep.EndedAt)
	}
	w["drain"] = assertions.Window{Start: loadEnd, End: rep.EndedAt}
	run := w["run"]
	run.End = rep.EndedAt
	w["run"] = run
	for _, p := range s.Phases() {
		if pw, ok := w[p.Name]; ok {
			rep.Phases = append(rep.Phases, report.Phase{Name: p.Name, Start: pw.Start, End: pw.End})
		}
	}
	if j.Remote == nil {
		return
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	// Give Prometheus one scrape interval (30s by default in
	// kube-prometheus-stack) to collect the final values.
	select {
	case <-time.After(35 * time.Second):
	case <-actx.Done():
	}
	// One Prometheus may hold other runs' series too: judge this run's only.
	as, err := assertions.ScopeToRun(j.Assertions, j.RunID)
	if err != nil {
		rep.Error = "evaluating the assertions: " + err.Error()
		rep.Verdict = report.Incomplete
		return
	}
	rep.Assertions = assertions.ToReport(as, assertions.EvaluateAll(actx, j.Remote, as, w))
}

// actualFaultWindows replaces each planned fault:<name> window with the
// time the fault was really in force; one never in force loses its window,
// so an assertion over it fails ("no window") instead of judging a fault
// that did not happen.
func actualFaultWindows(w map[string]assertions.Window, faults []report.Fault, end time.Time) {
	for _, f := range faults {
		name := "fault:" + f.Name
		if f.Start.IsZero() {
			delete(w, name)
			continue
		}
		fe := f.End
		if fe.IsZero() {
			fe = end
		}
		w[name] = assertions.Window{Start: f.Start, End: fe}
	}
}

// PhaseAt names the planned phase at offset d from the load start (fault
// windows win over steady).
func PhaseAt(s *scenarios.Scenario, d time.Duration) string {
	cur := "-"
	for _, p := range s.Phases() {
		if d >= p.Start && d < p.End {
			if cur == "-" || strings.HasPrefix(p.Name, "fault:") {
				cur = p.Name
			}
		}
	}
	return cur
}

// readLedger reads the run's ledger topic into a fresh ledger in the
// background until ctx ends: the channel gets how the reader ended.
func (j Job) readLedger(ctx context.Context) (*ledger.Ledger, <-chan error) {
	led := ledger.New()
	done := make(chan error, 1)
	go func() {
		done <- ledger.ReadTopicWith(ctx, kafkaclient.Config{Brokers: bootlist.Split(j.SourceBootstrap), Security: j.Security}, j.LedgerTopic, j.RunID, led)
	}()
	return led, done
}

// validatorConfig is the one validator Config of this Job (a shard adds
// its Shard/Shards).
func (j Job) validatorConfig(led *ledger.Ledger) Config {
	return Config{
		TargetBootstrap: j.TargetBootstrap, SourceBootstrap: j.SourceBootstrap, Security: j.Security, Topics: j.Topics, RunID: j.RunID,
		Ledger: led, Isolation: j.isolation(), Registerer: j.Registerer, Logger: j.Logger,
		StallAfter: j.stallAfter(),
	}.withLoadModes(j.Scenario)
}

func (j Job) isolation() string {
	if j.Scenario != nil {
		return j.Scenario.Spec.Validation.Isolation
	}
	return ""
}

// stallAfter is the stall watchdog's threshold: the scenario's, else the
// default (a mirror task that died while its deployment looks healthy is
// what a validator beside a real mirror most needs to see).
func (j Job) stallAfter() time.Duration {
	if j.Scenario != nil {
		return j.Scenario.Spec.Validation.StallThreshold() // 0: switched off
	}
	return scenarios.DefaultStallAfter
}

// Name is the scenario's name, or "adhoc".
func (j Job) Name() string {
	if j.Scenario != nil {
		return j.Scenario.Metadata.Name
	}
	return "adhoc"
}
