// Package runner is `kmt run`: it wires the two clusters (embedded or the
// user's), the mirror, the loadgen, the validator, the nemesis and the
// metrics into one run on the scenario's timeline, and returns the report:
//
//	warmup -> steady -> fault windows -> recovery -> drain -> verdict
package runner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kmt-dev/kafka-mirror-tester/chaos/local"
	"github.com/kmt-dev/kafka-mirror-tester/failover"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/assertions"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/kafkadist"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/mirror"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/history"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/timeline"
	"github.com/kmt-dev/kafka-mirror-tester/loadgen"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
	"github.com/kmt-dev/kafka-mirror-tester/validator"
)

// Options are the knobs of one run; zero values mean "as the scenario says".
type Options struct {
	Scenario  string // path or catalogue name
	Short     bool
	Duration  time.Duration
	Rate      float64
	Drain     time.Duration
	ReportDir string // default reports/<run id>
	RunID     string // default <scenario>-<time>-<random>

	// Against existing clusters: both set, or neither (embedded).
	SourceBootstrap string
	TargetBootstrap string
	// Brokers is the backend of clusters kmt starts: BrokersEmbedded
	// (default) or BrokersApache (real Kafka from KafkaHome, else
	// $KMT_KAFKA_HOME, else assembled from Maven Central into the cache).
	Brokers   string
	KafkaHome string
	// ClusterSize overrides the scenario's broker count of both clusters
	// (a small machine, or a CI subset where the fault needs no quorum).
	ClusterSize int
	// Mirror overrides the scenario's mirror kind (reference, process, external).
	Mirror        string
	MirrorCommand string
	Defects       []scenarios.Defect // appended to the scenario's (reference mirror only)
	Isolation     string             // overrides spec.validation.isolation
	MirrorConfig  string             // MirrorMaker 2 properties fragment file (--mirror-config)
	// Security (TLS, SASL) for your clusters (--source-bootstrap and
	// --target-bootstrap): kmt's clients and MirrorMaker 2 use it for both.
	Security kafkaclient.Security
	// Failover drill overrides (spec.failover): the group, the mirror's
	// checkpoints topic, the settle time.
	FailoverGroup    string
	CheckpointsTopic string
	FailoverSettle   time.Duration
	SourceTopic      string // override the (single) topic's source name
	TargetTopic      string // and its target name (mirrors that rename)
	// SameTopic accepts one cluster and one topic as both source and
	// target: there is no mirror, kmt checks the cluster against itself
	// (the identity). Without it that setup is refused: kmt would produce
	// into the topic it checks.
	SameTopic bool

	MetricsAddr string // serve /metrics here while running ("" = off)
	Logger      *slog.Logger
	Progress    io.Writer     // progress lines; nil = none
	ProgressInt time.Duration // default 2s
	// Registry, when set, receives every metric (tests read it).
	Registry *prometheus.Registry
	// OnStart is called once the load started, with the load start time and
	// the metrics address actually served (tests and the differential check).
	OnStart func(t0 time.Time, metricsURL string)
	// BeforeTeardown is called after the drain, before the clusters and the
	// mirror are stopped, with the bootstraps in use (tests read the target
	// with an independent consumer here).
	BeforeTeardown func(sourceBootstrap, targetBootstrap string)
}

// Prepared is a scenario ready to run: loaded, overridden, validated.
type Prepared struct {
	Scenario *scenarios.Scenario
	Backend  scenarios.Backend
}

// Prepare loads and validates the scenario with the options applied; its
// errors are UsageErrors (exit 2).
func Prepare(o Options) (*Prepared, error) {
	if err := o.checkOverrides(); err != nil {
		return nil, err
	}
	s, err := scenarios.Read(o.Scenario)
	if err != nil {
		return nil, Usage(err)
	}
	if o.Short {
		if s.Spec.Short == nil {
			return nil, Usage(fmt.Errorf("%s: --short given but the scenario has no spec.short block", s.File))
		}
		// Validate the long form too: a typo there is still a typo.
		if err := s.Validate(""); err != nil {
			return nil, Usage(err)
		}
		s = s.ShortForm()
	}
	if err := o.apply(s); err != nil {
		return nil, err
	}
	backend, err := o.backend(s)
	if err != nil {
		return nil, err
	}
	sp := &s.Spec
	if err := s.Validate(backend); err != nil {
		return nil, Usage(err)
	}
	if err := checkMirrorMaker2(sp); err != nil {
		return nil, Usage(err)
	}
	if (o.Security.TLS != nil || o.Security.SASL != nil) && backend != scenarios.BackendExternal {
		return nil, Usage(errors.New("TLS/SASL settings (--kafka-* flags, KMT_KAFKA_* variables) are for your clusters: give --source-bootstrap and --target-bootstrap too (the clusters kmt starts are plaintext)"))
	}
	if err := checkNotOntoItself(o, sp.Topology.Topics); err != nil {
		return nil, err
	}
	return &Prepared{Scenario: s, Backend: backend}, nil
}

// apply puts the command line's overrides into the scenario.
func (o Options) apply(s *scenarios.Scenario) error {
	sp := &s.Spec
	if o.Duration > 0 {
		sp.Load.Duration = scenarios.Duration(o.Duration)
	}
	if o.Rate > 0 {
		sp.Load.Rate = o.Rate
	}
	if o.ClusterSize > 0 {
		sp.Topology.Source.Brokers, sp.Topology.Target.Brokers = o.ClusterSize, o.ClusterSize
	}
	if o.Drain > 0 {
		sp.Drain = scenarios.Duration(o.Drain)
	}
	if err := o.applyMirror(sp); err != nil {
		return err
	}
	if err := o.applyFailover(sp); err != nil {
		return err
	}
	if o.Isolation != "" {
		sp.Validation.Isolation = o.Isolation
	}
	if o.SourceTopic != "" || o.TargetTopic != "" {
		if len(sp.Topology.Topics) != 1 {
			return Usage(fmt.Errorf("--source-topic/--target-topic need a scenario with exactly one topic; %s has %d", s.File, len(sp.Topology.Topics)))
		}
		if o.SourceTopic != "" {
			sp.Topology.Topics[0].Name = o.SourceTopic
		}
		if o.TargetTopic != "" {
			sp.Topology.Topics[0].TargetName = o.TargetTopic
		}
	}
	return nil
}

// applyMirror puts --mirror, --mirror-command, --defect and --mirror-config
// into the scenario's mirror.
func (o Options) applyMirror(sp *scenarios.Spec) error {
	if o.Mirror != "" {
		switch o.Mirror {
		case scenarios.MirrorReference, scenarios.MirrorProcess, scenarios.MirrorExternal, scenarios.MirrorMirrorMaker2:
		default:
			return Usage(fmt.Errorf("--mirror %q: use reference (built in), process (with --mirror-command), external (yours, already running) or mirrormaker2 (Apache Kafka's, started by kmt)", o.Mirror))
		}
		sp.Topology.Mirror.Kind = o.Mirror
	}
	if o.MirrorCommand != "" {
		sp.Topology.Mirror.Command = o.MirrorCommand
		if o.Mirror == "" {
			sp.Topology.Mirror.Kind = scenarios.MirrorProcess
		}
	}
	if len(o.Defects) > 0 && sp.Topology.Mirror.Kind != scenarios.MirrorReference {
		return Usage(fmt.Errorf("--defect needs the reference mirror, but the mirror is %q (from --mirror/--mirror-command or the scenario)", sp.Topology.Mirror.Kind))
	}
	sp.Topology.Mirror.Defects = append(sp.Topology.Mirror.Defects, o.Defects...)
	if err := applyMirrorMaker2(sp, o.MirrorConfig); err != nil {
		return Usage(err)
	}
	return nil
}

// backend says where the run happens: clusters kmt starts (local) or the
// user's (external), refusing combinations that cannot work.
func (o Options) backend(s *scenarios.Scenario) (scenarios.Backend, error) {
	sp := &s.Spec
	if (o.SourceBootstrap == "") != (o.TargetBootstrap == "") {
		return "", Usage(errors.New("give both --source-bootstrap and --target-bootstrap (existing clusters), or neither (embedded clusters)"))
	}
	switch o.Brokers {
	case "", BrokersEmbedded, BrokersApache:
	default:
		return "", Usage(fmt.Errorf("--brokers %q: use embedded (in-process, the default) or apache (real Apache Kafka JVMs; --kafka-home or assembled from Maven Central)", o.Brokers))
	}
	if o.Brokers == BrokersApache && o.SourceBootstrap != "" {
		return "", Usage(errors.New("--brokers apache starts clusters, --source-bootstrap/--target-bootstrap use yours: give one or the other"))
	}
	if o.SourceBootstrap == "" {
		if sp.Topology.Mirror.Kind == scenarios.MirrorExternal {
			return "", Usage(errors.New("--mirror external means the mirror already runs between your clusters: give --source-bootstrap and --target-bootstrap too"))
		}
		return scenarios.BackendLocal, nil
	}
	if len(sp.Timeline) > 0 {
		return "", Usage(fmt.Errorf("%s: the scenario has %d fault(s) (first: %q) but kmt cannot inject faults into clusters it did not start; run it embedded, on Kubernetes (kmt render / charts), or pick a scenario without a timeline such as baseline", s.File, len(sp.Timeline), sp.Timeline[0].Name))
	}
	return scenarios.BackendExternal, nil
}

// checkOverrides refuses negative overrides, which would otherwise be
// ignored silently (the scenario's value would run and pass).
func (o Options) checkOverrides() error {
	for _, c := range []struct {
		flag string
		neg  bool
		val  any
	}{{"--duration", o.Duration < 0, o.Duration}, {"--rate", o.Rate < 0, o.Rate}, {"--drain", o.Drain < 0, o.Drain}, {"--cluster-size", o.ClusterSize < 0, o.ClusterSize}} {
		if c.neg {
			return Usage(fmt.Errorf("%s %v: must not be negative (leave it out for the scenario's value)", c.flag, c.val))
		}
	}
	return nil
}

// checkNotOntoItself refuses a run whose source and target are the same
// cluster and the same topic: the mirror would copy the user's records
// onto themselves.
func checkNotOntoItself(o Options, topics []scenarios.Topic) error {
	if o.SourceBootstrap == "" || o.SameTopic || !sameCluster(o.SourceBootstrap, o.TargetBootstrap) {
		return nil
	}
	for _, t := range topics {
		if t.Name == t.Target() {
			return Usage(fmt.Errorf("--source-bootstrap and --target-bootstrap name the same cluster (%s) and topic %q is both the source and the target: kmt would produce into the topic it checks and the mirror would copy it onto itself; give the mirror's target topic with --target-topic (MirrorMaker 2 writes <alias>.%s), or --same-topic to check the cluster against itself with no mirror", o.SourceBootstrap, t.Name, t.Name))
		}
	}
	return nil
}

// sameCluster reports whether two bootstrap lists share a broker address.
func sameCluster(a, b string) bool {
	seen := map[string]bool{}
	for _, x := range strings.Split(a, ",") {
		seen[strings.ToLower(strings.TrimSpace(x))] = true
	}
	for _, x := range strings.Split(b, ",") {
		if x = strings.ToLower(strings.TrimSpace(x)); x != "" && seen[x] {
			return true
		}
	}
	return false
}

// NewRunID returns a run id: scenario, UTC time and 4 random hex digits.
func NewRunID(scenario string) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	id := fmt.Sprintf("%s-%s-%s", scenario, time.Now().UTC().Format("20060102T150405"), hex.EncodeToString(b[:]))
	if len(id) > wire.MaxRunIDLen {
		id = id[len(id)-wire.MaxRunIDLen:]
	}
	return id
}

// Run executes one run. It returns the report (also when the run was
// interrupted: verdict incomplete) and an error only when it could not run
// or the input was bad (see ExitCode).
func Run(ctx context.Context, o Options) (*report.Report, error) {
	p, err := Prepare(o)
	if err != nil {
		return nil, err
	}
	r := &run{o: o, s: p.Scenario, backend: p.Backend}
	return r.execute(ctx)
}

type run struct {
	o       Options
	s       *scenarios.Scenario
	backend scenarios.Backend
	log     *slog.Logger
	runID   string
	dir     string
	rep     *report.Report
	reg     *prometheus.Registry

	mm2 *mirror.MirrorMaker2 // when the mirror is MirrorMaker 2

	cleanups []func()
	harness  *Harness // kmt's own health over the load (harness.go)
	phases   *phaseTracker
	dist     *kafkadist.Dist // the Apache Kafka distribution, once found

	// What the steps build, in step order (steps.go).
	metricsURL string
	asserts    []assertions.Assertion
	coll       *localProm
	clusters   clusters
	led        *ledger.Ledger
	pairs      []validator.TopicPair
	val        *validator.Validator
	valStart   time.Time
	mirror     mirror.Controller
	nem        *local.Nemesis  // nil without a timeline
	drill      *failover.Drill // nil without spec.failover (failover.go)
}

func (r *run) defer_(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *run) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
}

// step is one named action of a run.
type step struct {
	name string
	do   func(ctx context.Context) error
}

// execute is the run as a list of named steps, each a small method in
// steps.go: the setup steps add one part each (and register how to take it
// down again); then load and faults run on one clock, the validator drains,
// and the report is judged and written. A failing step, or an interrupt
// between steps, ends the run with an incomplete report.json that says why.
func (r *run) execute(ctx context.Context) (rep *report.Report, err error) {
	closeLog, err := r.begin()
	if err != nil {
		return nil, err
	}
	defer closeLog()
	defer r.cleanup()
	defer r.reportFailure(&err)
	setup := []step{
		{"register metrics", r.registerMetrics},
		{"serve metrics", r.serveMetrics},
		{"compile assertions", r.compileAssertions},
		{"start clusters", r.startClusters},
		{"check the run id is unused", r.checkRunID},
		{"start validator", r.startValidator}, // before the mirror, so it sees the first record
		{"start mirror", r.startMirror},
		{"watch topic configs arrive", r.noteTopicConfigs}, // once the mirror runs: its start is not its sync time
		{"start the failover drill", r.startFailover},
		{"collect assertion metrics", r.startCollector},
		{"plan faults", r.planFaults},
	}
	for _, st := range setup {
		if ctx.Err() != nil {
			return nil, Env(fmt.Errorf("interrupted before %s", st.name))
		}
		r.log.Debug("run step", "step", st.name)
		if err := st.do(ctx); err != nil {
			return nil, err
		}
	}
	load := r.loadAndFaults(ctx)
	if load.err != nil && !load.interrupted {
		r.rep.Error = "loadgen: " + load.err.Error()
		r.rep.Verdict = report.Incomplete
		r.finish(load.stats, nil, nil)
		return r.rep, Env(fmt.Errorf("loadgen: %w", load.err))
	}
	res := r.drain(ctx, load)
	r.finishFailover(ctx)
	as := r.evaluate(r.coll, r.asserts)
	r.rep.Timeline = timeline.PerSecond(r.val, load.t0.Sub(r.valStart))
	load.samples.Finish(r.rep)
	if r.o.BeforeTeardown != nil {
		r.o.BeforeTeardown(r.clusters.srcBoot, r.clusters.tgtBoot)
	}
	r.finish(load.stats, res, as)
	return r.rep, nil
}

// finish fills the report from every part, judges it and writes it.
func (r *run) finish(ls loadgen.Stats, res *validator.Result, as []report.Assertion) {
	rep := r.rep
	rep.EndedAt = time.Now()
	rep.Phases = r.phases.records()
	if r.nem != nil {
		rep.Faults = r.nem.Records()
	}
	rep.Load = report.Load{
		TargetRate: r.s.Spec.Load.Rate, Sent: ls.Sent, Acked: ls.Acked, Failed: ls.Failed,
		Seconds: ls.Elapsed.Seconds(),
	}
	if ls.Elapsed > 0 {
		rep.Load.AchievedRate = float64(ls.Acked+ls.Failed+ls.Aborted) / ls.Elapsed.Seconds()
	}
	if res != nil {
		ApplyResult(rep, res)
	}
	if t := rep.Transactions; t != nil {
		t.Transactions, t.AbortedTransactions = ls.Transactions, ls.AbortedTransactions
	}
	rep.Counts.Produced = ls.Sent
	rep.ExtraCounts.Failed = ls.Failed
	rep.Assertions = as
	rep.MirrorExits = r.mirrorExits()
	if r.mm2 != nil {
		rep.MirrorMetrics = r.mm2.ReportMetrics()
	}
	rep.Judge()
	if r.harness != nil {
		r.harness.Judge(rep, ls, r.s.Spec.Load.Rate)
	}
	if path, err := rep.WriteJSON(r.dir); err != nil {
		r.log.Error("could not write report.json", "err", err)
	} else {
		r.log.Info("report written", "path", path)
	}
	if _, err := rep.WriteJUnit(r.dir); err != nil {
		r.log.Error("could not write junit.xml", "err", err)
	}
	history.Finish(r.dir, rep, r.o.ReportDir == "", r.log)
}

// serveMetrics serves /metrics on MetricsAddr, if set.
func (r *run) serveMetrics(context.Context) error {
	if r.o.MetricsAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", r.o.MetricsAddr)
	if err != nil {
		return Env(fmt.Errorf("listen for /metrics on %s: %w (pick a free address with --metrics-addr)", r.o.MetricsAddr, err))
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	r.defer_(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	r.metricsURL = "http://" + ln.Addr().String() + "/metrics"
	r.log.Info("serving metrics", "url", r.metricsURL)
	return nil
}

// progress prints a line every ProgressInt until the returned stop is called.
func (r *run) progress(t0 time.Time) func() {
	val, nem := r.val, r.nem
	w := r.o.Progress
	if w == nil {
		return func() {}
	}
	every := r.o.ProgressInt
	if every <= 0 {
		every = 2 * time.Second
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				c := val.Live()
				active := "-"
				if nem != nil {
					if a := nem.Active(); len(a) > 0 {
						active = strings.Join(a, ",")
					}
				}
				fmt.Fprintf(w, "[%6.1fs] %-22s faults=%-18s acked=%-7d received=%-7d lag=%-6d dup=%d reordered=%d corrupt=%d\n",
					time.Since(t0).Seconds(), r.phases.current(), active, c.Acked, c.Received,
					int64(c.Acked)-int64(c.Received-c.Duplicate), c.Duplicate, c.Reordered, c.Corrupt)
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(done); <-finished }) }
}
