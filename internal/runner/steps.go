package runner

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kmt-dev/kafka-mirror-tester/chaos/local"
	"github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/embedded"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/wan"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/mirror"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/history"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/timeline"
	"github.com/kmt-dev/kafka-mirror-tester/loadgen"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
	"github.com/kmt-dev/kafka-mirror-tester/validator"
)

// The steps of a run, in the order execute runs them.

// begin fixes the run id, the report folder (with kmt.log and the
// effective scenario) and the report skeleton; closeLog ends kmt.log.
func (r *run) begin() (closeLog func(), err error) {
	r.log = r.o.Logger
	if r.log == nil {
		r.log = slog.Default()
	}
	r.runID = r.o.RunID
	if r.runID == "" {
		r.runID = NewRunID(r.s.Metadata.Name)
	}
	if !wire.ValidRunID(r.runID) {
		return nil, Usage(fmt.Errorf("run id %q: use 1-64 of [A-Za-z0-9._-]", r.runID))
	}
	r.dir = r.o.ReportDir
	if r.dir == "" {
		r.dir = filepath.Join("reports", r.runID)
	}
	// Absolute: mirror processes run inside the report folder (their logs
	// and MirrorMaker 2's properties live there), so a relative path
	// handed to them (--report-dir rep) would point at rep/rep/...
	abs, err := filepath.Abs(r.dir)
	if err != nil {
		return nil, Usage(fmt.Errorf("report folder %q: %w", r.dir, err))
	}
	r.dir = abs
	if err := CheckReportDir(r.dir); err != nil {
		return nil, err
	}
	r.log, closeLog = history.OpenLog(r.dir, r.log)
	r.log = r.log.With("run", r.runID)
	if err := history.SaveConfig(r.dir, r.s); err != nil {
		r.log.Warn("could not save the effective scenario", "err", err)
	}
	r.rep = &report.Report{
		SchemaVersion: report.SchemaVersion, Scenario: r.s.Metadata.Name, Run: r.runID,
		Backend: string(r.backend), Mirror: r.s.Spec.Topology.Mirror.Kind, Short: r.o.Short, StartedAt: time.Now(),
	}
	return closeLog, nil
}

// reportFailure makes sure that whatever stops the run after begin, CI
// finds a report.json that says so (verdict incomplete, with the error),
// not an empty folder.
func (r *run) reportFailure(errp *error) {
	err := *errp
	if err == nil || r.rep.Verdict != "" {
		return
	}
	r.rep.Verdict = report.Incomplete
	r.rep.Error = err.Error()
	r.rep.EndedAt = time.Now()
	r.rep.Judge()
	if _, werr := r.rep.WriteJSON(r.dir); werr != nil {
		r.log.Error("could not write report.json", "err", werr)
	}
	if _, werr := r.rep.WriteJUnit(r.dir); werr != nil {
		r.log.Error("could not write junit.xml", "err", werr)
	}
	history.Finish(r.dir, r.rep, r.o.ReportDir == "", r.log)
}

// wrap is the registerer for one role's metrics.
func (r *run) wrap(role string) prometheus.Registerer {
	return metrics.Wrap(r.reg, r.s.Metadata.Name, r.runID, role)
}

// registerMetrics sets up the run's registry, its info gauge and phases.
func (r *run) registerMetrics(context.Context) error {
	r.reg = r.o.Registry
	if r.reg == nil {
		r.reg = prometheus.NewRegistry()
	}
	r.reg.MustRegister(collectors.NewGoCollector())
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: metrics.RunInfo, Help: "1 for the run; carries the scenario, run and role labels."})
	info.Set(1)
	r.wrap("harness").MustRegister(info)
	r.phases = newPhaseTracker(r.wrap("harness"))
	return nil
}

// compileAssertions checks every assertion before anything starts.
func (r *run) compileAssertions(context.Context) error {
	as, err := r.prepareAssertions()
	r.asserts = as
	return err
}

// clusters is where the run's records go: the bootstraps every client
// uses, how kmt's own clients dial the source (around the WAN), and the
// parts the nemesis can fault (nil when kmt did not start them).
type clusters struct {
	srcBoot, tgtBoot string
	srcDial          func(ctx context.Context, network, addr string) (net.Conn, error)
	source, target   local.Cluster
	wan              *wan.Link
}

// startClusters starts the clusters of a local run (embedded or Apache
// Kafka, behind the WAN link: clusters.go) with the scenario's topics; an
// external run uses the user's bootstraps as given.
func (r *run) startClusters(ctx context.Context) error {
	r.clusters = clusters{srcBoot: r.o.SourceBootstrap, tgtBoot: r.o.TargetBootstrap}
	if r.backend != scenarios.BackendLocal {
		return r.ensureTopicConfigs(ctx)
	}
	tmp, err := os.MkdirTemp("", "kmt-"+r.runID+"-")
	if err != nil {
		return Env(fmt.Errorf("create a temporary directory for cluster data: %w", err))
	}
	r.defer_(func() { os.RemoveAll(tmp) })
	link := wan.NewLink(r.log.With("part", "wan"), r.wrap("harness"))
	r.defer_(func() { link.Close() })
	src, tgt, err := r.startLocalClusters(ctx, link, tmp)
	if err != nil {
		return err
	}
	for _, t := range r.s.Spec.Topology.Topics {
		if err := src.CreateTopicWithConfigs(ctx, t.Name, t.Partitions, t.Config); err != nil {
			return Env(fmt.Errorf("create source topic %s: %w", t.Name, err))
		}
		// The target topic exists up front with the same partition count,
		// as an operator would create it: a pipe mirror (kcat) cannot
		// create topics, and the reference mirror keeps partition numbers.
		// Its configs are targetConfig only: the source's are the mirror's
		// to carry over (watched: noteTopicConfigs).
		if err := tgt.CreateTopicWithConfigs(ctx, t.Target(), t.Partitions, t.TargetConfig); err != nil {
			return Env(fmt.Errorf("create target topic %s: %w", t.Target(), err))
		}
	}
	r.clusters = clusters{srcBoot: src.Bootstrap(), tgtBoot: tgt.Bootstrap(), srcDial: src.DirectDial, source: src, target: tgt, wan: link}
	r.log.Info("clusters up", "source", r.clusters.srcBoot, "target", r.clusters.tgtBoot)
	return nil
}

// checkRunID refuses a run id that already has records on clusters kmt
// did not create (embedded and Apache clusters are new for every run).
func (r *run) checkRunID(ctx context.Context) error {
	if r.clusters.source != nil {
		return nil
	}
	var sources, targets []string
	for _, t := range r.s.Spec.Topology.Topics {
		sources, targets = append(sources, t.Name), append(targets, t.Target())
	}
	return checkRunIDUnused(ctx, r.runID, r.o.Security, runIDSide{r.clusters.srcBoot, r.clusters.srcDial, sources}, runIDSide{r.clusters.tgtBoot, nil, targets})
}

// startValidator starts reading the target (and the source) before the
// mirror starts, so it sees the first record.
func (r *run) startValidator(ctx context.Context) error {
	r.led = ledger.New()
	for _, t := range r.s.Spec.Topology.Topics {
		r.pairs = append(r.pairs, validator.TopicPair{Source: t.Name, Target: t.Target()})
	}
	val, err := validator.New(validator.Config{
		TargetBootstrap: r.clusters.tgtBoot,
		SourceBootstrap: r.clusters.srcBoot, SourceDial: r.clusters.srcDial,
		Topics: r.pairs, RunID: r.runID, Ledger: r.led, Isolation: r.s.Spec.Validation.Isolation,
		Transactions: r.s.Spec.Load.Transactions, Fidelity: r.s.Spec.Load.Fidelity, CompactedTopics: r.s.CompactedTopics(),
		StallAfter: r.s.Spec.Validation.StallThreshold(), SyncWithin: r.s.Spec.Validation.SyncWithin.D(),
		NeverCopied: mirror.MM2NeverCopiedConfigs, TargetTopicOf: r.targetTopicOf,
		Security:   r.o.Security,
		Registerer: r.wrap("validator"), Logger: r.log.With("part", "validator"),
	})
	if err != nil {
		return Usage(err)
	}
	// The validator outlives an interrupt: it still drains briefly and
	// judges what arrived, so the partial report has counts.
	vctx, vcancel := context.WithCancel(context.WithoutCancel(ctx))
	r.defer_(vcancel)
	r.valStart = time.Now()
	if err := val.Start(vctx); err != nil {
		return Env(fmt.Errorf("start the validator: %w", err))
	}
	r.val = val
	return nil
}

// targetTopicOf names the target copy of a source topic the scenario does
// not list (scenarios.Scenario.TargetTopicOf).
func (r *run) targetTopicOf(source string) string { return r.s.TargetTopicOf(source) }

// startMirror starts the mirror kmt runs (reference or process); an
// external mirror is the user's and already runs.
func (r *run) startMirror(ctx context.Context) error {
	m := r.s.Spec.Topology.Mirror
	var ctl mirror.Controller
	switch m.Kind {
	case scenarios.MirrorReference:
		tm := make([]mirror.TopicMap, 0, len(r.pairs))
		for _, p := range r.pairs {
			tm = append(tm, mirror.TopicMap{Source: p.Source, Target: p.Target})
		}
		var later []mirror.TopicMap
		for _, t := range r.s.CreatedTopics() {
			later = append(later, mirror.TopicMap{Source: t, Target: r.targetTopicOf(t)})
		}
		ref, err := mirror.NewReference(mirror.Config{
			SourceBootstrap: r.clusters.srcBoot, TargetBootstrap: r.clusters.tgtBoot, Topics: tm, Later: later,
			Group: m.Group, Defects: m.Defects, Checkpoints: r.refCheckpoints(),
			// A run that claims exactly-once gets the reference mirror's
			// transactional writes (MirrorMaker 2's exactlyOnce analogue).
			Transactional: r.s.Spec.Load.Transactions != nil && r.s.Spec.Load.Transactions.ExactlyOnce,
			Registerer:    r.wrap("mirror"), Logger: r.log.With("part", "mirror"),
		})
		if err != nil {
			return Usage(err)
		}
		ctl = ref
	case scenarios.MirrorProcess:
		proc, err := mirror.NewProcess(mirror.ProcessConfig{
			Command: m.Command,
			Vars: mirror.TemplateVars{
				SourceBootstrap: r.clusters.srcBoot, TargetBootstrap: r.clusters.tgtBoot,
				SourceTopic: r.pairs[0].Source, TargetTopic: r.pairs[0].Target,
				Group: m.Group, ReportDir: r.dir,
			},
			LogDir: r.dir, Logger: r.log.With("part", "mirror"),
		})
		if err != nil {
			return Usage(err)
		}
		ctl = proc
	case scenarios.MirrorMirrorMaker2:
		mm, err := r.startMirrorMaker2(ctx)
		if err != nil {
			return err
		}
		ctl = mm
	default:
		return nil
	}
	if err := ctl.Start(ctx); err != nil {
		return Env(fmt.Errorf("start the %s mirror: %w", m.Kind, err))
	}
	r.defer_(func() { ctl.Close() })
	r.mirror = ctl
	return nil
}

// startMirrorMaker2 prepares Apache Kafka's MirrorMaker 2 between the
// run's clusters (mirrormaker2.go).
func (r *run) startMirrorMaker2(ctx context.Context) (mirror.Controller, error) {
	dist, err := r.distribution(ctx)
	if err != nil {
		return nil, err
	}
	c := r.clusters
	ends := mm2Ends{srcBoot: c.srcBoot, tgtBoot: c.tgtBoot, srcDial: c.srcDial}
	if r.backend == scenarios.BackendLocal {
		topo := r.s.Spec.Topology
		ends.srcBrokers, ends.tgtBrokers = topo.Source.Brokers, topo.Target.Brokers
		_, ends.precreate = c.source.(*embedded.Cluster)
	}
	return r.newMirrorMaker2(ctx, dist, ends, r.wrap("mirror"))
}

// mirrorExits lists the exits of the mirror's process that kmt did not
// ask for (a process mirror that crashed or ended mid-run).
func (r *run) mirrorExits() []report.MirrorExit {
	p, ok := r.mirror.(interface{ UnexpectedExits() []mirror.Exit })
	if !ok {
		return nil
	}
	var out []report.MirrorExit
	for _, e := range p.UnexpectedExits() {
		out = append(out, report.MirrorExit{At: e.At, Status: e.Status, Log: e.Log, Tail: e.Tail})
	}
	return out
}

// startCollector gathers the run's metrics into the embedded TSDB for the
// assertions (when there are any).
func (r *run) startCollector(context.Context) error {
	coll, err := r.collector(r.asserts)
	r.coll = coll
	return err
}

// planFaults prepares the nemesis and refuses, before any load, a fault
// the backend cannot perform.
func (r *run) planFaults(context.Context) error {
	tl := r.s.Spec.Timeline
	if len(tl) == 0 {
		return nil
	}
	env := local.Env{
		Backend: r.backend, Source: r.clusters.source, Target: r.clusters.target,
		Truncations: r.val, Metadata: r.val, DefaultTopic: r.pairs[0].Source,
		Logger: r.log.With("part", "nemesis"), Registerer: r.wrap("harness"),
	}
	if r.o.Brokers == BrokersApache {
		env.Backend = "local (Apache Kafka brokers)"
	}
	if r.clusters.wan != nil {
		env.WAN = r.clusters.wan
	}
	if r.mirror != nil {
		env.Mirror = r.mirror
	}
	r.nem = local.New(env, tl)
	if err := r.nem.Check(); err != nil {
		return Usage(err)
	}
	return nil
}

// loadResult is how the load ended.
type loadResult struct {
	t0, end     time.Time
	samples     *timeline.Sampler // the report's per-second series, finished after the drain
	stats       loadgen.Stats
	err         error
	interrupted bool
}

// loadAndFaults runs the load and the fault timeline on one clock until
// both ended, or the run is interrupted (then the load stops and every
// active fault is reverted at once).
func (r *run) loadAndFaults(ctx context.Context) loadResult {
	sp := r.s.Spec
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	var res loadResult
	res.t0 = time.Now()
	r.harness = StartHarness(ctx, kafkaclient.Config{Brokers: bootstrap.Split(r.clusters.tgtBoot), Security: r.o.Security}, r.pairs, r.val)
	defer r.harness.LoadEnded()
	r.defer_(r.harness.Stop) // finish judges it; this covers a run that ends without one
	r.phases.start(res.t0, r.s.Phases())
	if r.o.OnStart != nil {
		r.o.OnStart(res.t0, r.metricsURL)
	}
	topics := make([]string, 0, len(r.pairs))
	for _, p := range r.pairs {
		topics = append(topics, p.Source)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		res.stats, res.err = loadgen.Run(lctx, loadgen.Config{
			Bootstrap: r.clusters.srcBoot, Dial: r.clusters.srcDial, Topics: topics, RunID: r.runID,
			Rate: sp.Load.Rate, MessageSize: sp.Load.MessageSize, Streams: sp.Load.Streams,
			Duration: sp.Load.Duration.D(), Count: sp.Load.Count, SkipRunIDCheck: true, // checkRunID
			Transactions: sp.Load.Transactions, Fidelity: sp.Load.Fidelity,
			Ledger: r.led, Security: r.o.Security, Registerer: r.wrap("loadgen"), Logger: r.log.With("part", "loadgen"),
		})
	})
	if r.nem != nil {
		wg.Go(func() { r.nem.Run(ctx, res.t0) })
	}
	if r.drill != nil {
		wg.Go(func() { r.drill.Run(ctx, res.t0) })
	}
	stopProgress := r.progress(res.t0)
	defer stopProgress()
	res.samples = timeline.StartRun(res.t0, r.val, r.reg)
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	select {
	case <-allDone:
	case <-ctx.Done():
		res.interrupted = true
		r.log.Warn("interrupted: stopping load, reverting faults, writing a partial report")
		lcancel()
		<-allDone
	}
	res.end = time.Now()
	return res
}

// drain keeps reading until every stream reached its last acked sequence
// or the drain deadline passes. An interrupt ends it at once (verdict
// incomplete); after an interrupt during the load it gets a short grace so
// records already in flight are not reported as unseen.
func (r *run) drain(ctx context.Context, load loadResult) *validator.Result {
	r.phases.enter("drain", load.end)
	deadline := r.s.Spec.Drain.D()
	dctx := ctx
	if load.interrupted {
		deadline = min(deadline, 3*time.Second)
		dctx = context.WithoutCancel(ctx)
	}
	r.log.Info("load finished; draining", "acked", load.stats.Acked, "deadline", deadline)
	res, err := r.val.Drain(dctx, deadline)
	r.phases.end(time.Now())
	if err != nil {
		r.rep.Error = "validator: " + err.Error()
	}
	switch {
	case load.interrupted:
		r.rep.Verdict = report.Incomplete
		r.rep.Error = "interrupted"
	case ctx.Err() != nil:
		r.rep.Verdict = report.Incomplete
		r.rep.Error = "interrupted during the drain"
		r.log.Warn("interrupted during the drain: judging what arrived, verdict incomplete")
	}
	if r.nem != nil {
		r.phases.actualFaults(r.nem.Records())
	}
	return res
}

// CheckReportDir creates dir and proves a file can be written in it, so
// an unwritable report folder is a usage error before anything starts, not
// a missing report after the run.
func CheckReportDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Usage(fmt.Errorf("report folder %s: %w (pick another with --report-dir)", dir, err))
	}
	f, err := os.CreateTemp(dir, ".kmt-write-test-")
	if err != nil {
		return Usage(fmt.Errorf("report folder %s is not writable: %w (pick another with --report-dir)", dir, err))
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
