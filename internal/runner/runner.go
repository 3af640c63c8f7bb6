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
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kmt-dev/kafka-mirror-tester/chaos/local"
	"github.com/kmt-dev/kafka-mirror-tester/internal/embedded"
	"github.com/kmt-dev/kafka-mirror-tester/internal/health"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkadist"
	"github.com/kmt-dev/kafka-mirror-tester/internal/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/internal/mirror"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/history"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/timeline"
	"github.com/kmt-dev/kafka-mirror-tester/internal/wan"
	"github.com/kmt-dev/kafka-mirror-tester/internal/wire"
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
	MirrorConfig  string             // MirrorMaker 2 properties fragment file (--mirror-config)
	SourceTopic   string             // override the (single) topic's source name
	TargetTopic   string             // and its target name (mirrors that rename)

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
	sp := &s.Spec
	if o.Duration > 0 {
		sp.Load.Duration = scenarios.Duration(o.Duration)
	}
	if o.Rate > 0 {
		sp.Load.Rate = o.Rate
	}
	if o.ClusterSize < 0 {
		return nil, Usage(fmt.Errorf("--cluster-size %d: give a broker count of at least 1 (or 0 for the scenario's)", o.ClusterSize))
	}
	if o.ClusterSize > 0 {
		sp.Topology.Source.Brokers, sp.Topology.Target.Brokers = o.ClusterSize, o.ClusterSize
	}
	if o.Drain > 0 {
		sp.Drain = scenarios.Duration(o.Drain)
	}
	if o.Mirror != "" {
		switch o.Mirror {
		case scenarios.MirrorReference, scenarios.MirrorProcess, scenarios.MirrorExternal, scenarios.MirrorMirrorMaker2:
		default:
			return nil, Usage(fmt.Errorf("--mirror %q: use reference (built in), process (with --mirror-command), external (yours, already running) or mirrormaker2 (Apache Kafka's, started by kmt)", o.Mirror))
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
		return nil, Usage(fmt.Errorf("--defect needs the reference mirror, but the mirror is %q (from --mirror/--mirror-command or the scenario)", sp.Topology.Mirror.Kind))
	}
	sp.Topology.Mirror.Defects = append(sp.Topology.Mirror.Defects, o.Defects...)
	if err := applyMirrorMaker2(sp, o.MirrorConfig); err != nil {
		return nil, Usage(err)
	}
	if o.SourceTopic != "" || o.TargetTopic != "" {
		if len(sp.Topology.Topics) != 1 {
			return nil, Usage(fmt.Errorf("--source-topic/--target-topic need a scenario with exactly one topic; %s has %d", s.File, len(sp.Topology.Topics)))
		}
		if o.SourceTopic != "" {
			sp.Topology.Topics[0].Name = o.SourceTopic
		}
		if o.TargetTopic != "" {
			sp.Topology.Topics[0].TargetName = o.TargetTopic
		}
	}
	if (o.SourceBootstrap == "") != (o.TargetBootstrap == "") {
		return nil, Usage(errors.New("give both --source-bootstrap and --target-bootstrap (existing clusters), or neither (embedded clusters)"))
	}
	switch o.Brokers {
	case "", BrokersEmbedded, BrokersApache:
	default:
		return nil, Usage(fmt.Errorf("--brokers %q: use embedded (in-process, the default) or apache (real Apache Kafka JVMs; --kafka-home or assembled from Maven Central)", o.Brokers))
	}
	if o.Brokers == BrokersApache && o.SourceBootstrap != "" {
		return nil, Usage(errors.New("--brokers apache starts clusters, --source-bootstrap/--target-bootstrap use yours: give one or the other"))
	}
	backend := scenarios.BackendLocal
	if o.SourceBootstrap != "" {
		backend = scenarios.BackendExternal
		if len(sp.Timeline) > 0 {
			return nil, Usage(fmt.Errorf("%s: the scenario has %d fault(s) (first: %q) but kmt cannot inject faults into clusters it did not start; run it embedded, on Kubernetes (kmt render / charts), or pick a scenario without a timeline such as baseline", s.File, len(sp.Timeline), sp.Timeline[0].Name))
		}
	} else if sp.Topology.Mirror.Kind == scenarios.MirrorExternal {
		return nil, Usage(errors.New("--mirror external means the mirror already runs between your clusters: give --source-bootstrap and --target-bootstrap too"))
	}
	if err := s.Validate(backend); err != nil {
		return nil, Usage(err)
	}
	if err := checkMirrorMaker2(sp); err != nil {
		return nil, Usage(err)
	}
	return &Prepared{Scenario: s, Backend: backend}, nil
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
	harness  *health.CPUMeter // kmt's own CPU over the load
	readLag  func() float64   // stops the validator's read-lag meter (harness.go)
	phases   *phaseTracker
	dist     *kafkadist.Dist // the Apache Kafka distribution, once found
}

func (r *run) defer_(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *run) cleanup() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
}

func (r *run) execute(ctx context.Context) (rep *report.Report, err error) {
	o := r.o
	r.log = o.Logger
	if r.log == nil {
		r.log = slog.Default()
	}
	r.runID = o.RunID
	if r.runID == "" {
		r.runID = NewRunID(r.s.Metadata.Name)
	}
	if !wire.ValidRunID(r.runID) {
		return nil, Usage(fmt.Errorf("run id %q: use 1-64 of [A-Za-z0-9._-]", r.runID))
	}
	r.dir = o.ReportDir
	if r.dir == "" {
		r.dir = filepath.Join("reports", r.runID)
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, Env(fmt.Errorf("create report dir %s: %w (pick another with --report-dir)", r.dir, err))
	}
	var closeLog func()
	r.log, closeLog = history.OpenLog(r.dir, r.log)
	defer closeLog()
	r.log = r.log.With("run", r.runID)
	if err := history.SaveConfig(r.dir, r.s); err != nil {
		r.log.Warn("could not save the effective scenario", "err", err)
	}
	sp := &r.s.Spec
	mirrorKind := sp.Topology.Mirror.Kind
	r.rep = &report.Report{
		SchemaVersion: report.SchemaVersion, Scenario: r.s.Metadata.Name, Run: r.runID,
		Backend: string(r.backend), Mirror: mirrorKind, Short: o.Short, StartedAt: time.Now(),
	}
	defer r.cleanup()
	// Whatever stops the run after this point, CI finds a report.json that
	// says so (verdict incomplete, with the error), not an empty folder.
	defer func() {
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
		r.rep.WriteJUnit(r.dir)
		history.Finish(r.dir, r.rep, o.ReportDir == "", r.log)
	}()

	r.reg = o.Registry
	if r.reg == nil {
		r.reg = prometheus.NewRegistry()
	}
	r.reg.MustRegister(collectors.NewGoCollector())
	wrap := func(role string) prometheus.Registerer {
		return metrics.Wrap(r.reg, r.s.Metadata.Name, r.runID, role)
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: metrics.RunInfo, Help: "1 for the run; carries the scenario, run and role labels."})
	info.Set(1)
	wrap("harness").MustRegister(info)
	r.phases = newPhaseTracker(wrap("harness"))
	metricsURL, err := r.serveMetrics()
	if err != nil {
		return nil, err
	}

	asserts, err := r.prepareAssertions()
	if err != nil {
		return nil, err
	}

	// 1. Clusters.
	var src, tgt localCluster
	var link *wan.Link
	srcBoot, tgtBoot := o.SourceBootstrap, o.TargetBootstrap
	var srcDial, tgtDial func(ctx context.Context, network, addr string) (net.Conn, error)
	if r.backend == scenarios.BackendLocal {
		tmp, err := os.MkdirTemp("", "kmt-"+r.runID+"-")
		if err != nil {
			return nil, Env(fmt.Errorf("create a temporary directory for cluster data: %w", err))
		}
		r.defer_(func() { os.RemoveAll(tmp) })
		link = wan.NewLink(r.log.With("part", "wan"), wrap("harness"))
		r.defer_(func() { link.Close() })
		src, tgt, err = r.startClusters(ctx, link, tmp)
		if err != nil {
			return nil, err
		}
		srcBoot, tgtBoot = src.Bootstrap(), tgt.Bootstrap()
		srcDial = src.DirectDial
		for _, t := range sp.Topology.Topics {
			if err := src.CreateTopic(ctx, t.Name, t.Partitions); err != nil {
				return nil, Env(fmt.Errorf("create source topic %s: %w", t.Name, err))
			}
			// The target topic exists up front with the same partition
			// count, as an operator would create it: a pipe mirror (kcat)
			// cannot create topics, and the reference mirror keeps
			// partition numbers.
			if err := tgt.CreateTopic(ctx, t.Target(), t.Partitions); err != nil {
				return nil, Env(fmt.Errorf("create target topic %s: %w", t.Target(), err))
			}
		}
		r.log.Info("clusters up", "source", srcBoot, "target", tgtBoot)
	}

	// 2. Validator (before the mirror, so it sees the first record).
	led := ledger.New()
	var pairs []validator.TopicPair
	var topics []string
	for _, t := range sp.Topology.Topics {
		pairs = append(pairs, validator.TopicPair{Source: t.Name, Target: t.Target()})
		topics = append(topics, t.Name)
	}
	if src == nil { // the user's clusters: this run id must not be there yet
		var targets []string
		for _, p := range pairs {
			targets = append(targets, p.Target)
		}
		if err := checkRunIDUnused(ctx, r.runID, runIDSide{srcBoot, srcDial, topics}, runIDSide{tgtBoot, tgtDial, targets}); err != nil {
			return nil, err
		}
	}
	val, err := validator.New(validator.Config{
		TargetBootstrap: tgtBoot, TargetDial: tgtDial,
		SourceBootstrap: srcBoot, SourceDial: srcDial,
		Topics: pairs, RunID: r.runID, Ledger: led, Isolation: sp.Validation.Isolation,
		Registerer: wrap("validator"), Logger: r.log.With("part", "validator"),
	})
	if err != nil {
		return nil, Usage(err)
	}
	vctx, vcancel := context.WithCancel(context.WithoutCancel(ctx))
	r.defer_(vcancel)
	vstart := time.Now()
	if err := val.Start(vctx); err != nil {
		return nil, Env(fmt.Errorf("start the validator: %w", err))
	}

	// 3. Mirror.
	var ctl mirror.Controller
	tm := make([]mirror.TopicMap, 0, len(pairs))
	for _, p := range pairs {
		tm = append(tm, mirror.TopicMap{Source: p.Source, Target: p.Target})
	}
	switch mirrorKind {
	case scenarios.MirrorReference:
		ref, err := mirror.NewReference(mirror.Config{
			SourceBootstrap: srcBoot, TargetBootstrap: tgtBoot, Topics: tm,
			Group: sp.Topology.Mirror.Group, Defects: sp.Topology.Mirror.Defects,
			Registerer: wrap("mirror"), Logger: r.log.With("part", "mirror"),
		})
		if err != nil {
			return nil, Usage(err)
		}
		ctl = ref
	case scenarios.MirrorProcess:
		proc, err := mirror.NewProcess(mirror.ProcessConfig{
			Command: sp.Topology.Mirror.Command,
			Vars: mirror.TemplateVars{
				SourceBootstrap: srcBoot, TargetBootstrap: tgtBoot,
				SourceTopic: pairs[0].Source, TargetTopic: pairs[0].Target,
				Group: sp.Topology.Mirror.Group, ReportDir: r.dir,
			},
			LogDir: r.dir, Logger: r.log.With("part", "mirror"),
		})
		if err != nil {
			return nil, Usage(err)
		}
		ctl = proc
	case scenarios.MirrorMirrorMaker2:
		dist, err := r.distribution(ctx)
		if err != nil {
			return nil, err
		}
		ends := mm2Ends{srcBoot: srcBoot, tgtBoot: tgtBoot, srcDial: srcDial}
		if r.backend == scenarios.BackendLocal {
			ends.srcBrokers, ends.tgtBrokers = sp.Topology.Source.Brokers, sp.Topology.Target.Brokers
			_, ends.precreate = src.(*embedded.Cluster)
		}
		m, err := r.newMirrorMaker2(ctx, dist, ends, wrap("mirror"))
		if err != nil {
			return nil, err
		}
		ctl = m
	}
	if ctl != nil {
		if err := ctl.Start(ctx); err != nil {
			return nil, Env(fmt.Errorf("start the %s mirror: %w", mirrorKind, err))
		}
		r.defer_(func() { ctl.Close() })
	}

	// 4. Assertion metrics collection, then load and faults on one clock.
	coll, err := r.startCollector(asserts)
	if err != nil {
		return nil, err
	}
	var nem *local.Nemesis
	if len(sp.Timeline) > 0 {
		env := local.Env{Truncations: val, DefaultTopic: topics[0], Logger: r.log.With("part", "nemesis"), Registerer: wrap("harness")}
		if src != nil {
			env.Source, env.Target = src, tgt
		}
		if r.o.Brokers == BrokersApache {
			env.Backend = "local (Apache Kafka brokers)"
		}
		if link != nil {
			env.WAN = link
		}
		if ctl != nil {
			env.Mirror = ctl
		}
		nem = local.New(env, sp.Timeline)
		if err := nem.Check(); err != nil {
			return nil, Usage(err)
		}
	}

	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	t0 := time.Now()
	r.harness = health.StartCPU(time.Second)
	r.readLag = startReadLag(ctx, tgtBoot, tgtDial, pairs, val)
	r.phases.start(t0, r.s.Phases())
	if o.OnStart != nil {
		o.OnStart(t0, metricsURL)
	}
	var wg sync.WaitGroup
	var loadStats loadgen.Stats
	var loadErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		loadStats, loadErr = loadgen.Run(lctx, loadgen.Config{
			Bootstrap: srcBoot, Dial: srcDial, Topics: topics, RunID: r.runID,
			Rate: sp.Load.Rate, MessageSize: sp.Load.MessageSize, Streams: sp.Load.Streams,
			Duration: sp.Load.Duration.D(), Count: sp.Load.Count, SkipRunIDCheck: true, // checked above
			Ledger: led, Registerer: wrap("loadgen"), Logger: r.log.With("part", "loadgen"),
		})
	}()
	if nem != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nem.Run(ctx, t0)
		}()
	}
	stopProgress := r.progress(t0, val, nem)
	samples := timeline.StartRun(t0, val, r.reg)
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	interrupted := false
	select {
	case <-allDone:
	case <-ctx.Done():
		interrupted = true
		r.log.Warn("interrupted: stopping load, reverting faults, writing a partial report")
		lcancel()
		<-allDone
	}
	loadEnd := time.Now()
	r.harness.Stop()
	if loadErr != nil && !interrupted {
		stopProgress()
		r.rep.Error = "loadgen: " + loadErr.Error()
		r.rep.Verdict = report.Incomplete
		r.finish(val, 0, loadStats, nem, nil, nil)
		return r.rep, Env(fmt.Errorf("loadgen: %w", loadErr))
	}

	// 5. Drain: keep reading until every stream reached its last acked
	// sequence or the deadline passes.
	r.phases.enter("drain", loadEnd)
	drain := sp.Drain.D()
	if interrupted {
		// A short grace so records already in flight are not reported as
		// unseen in the partial report; a second Ctrl-C ends kmt at once.
		drain = min(drain, 3*time.Second)
	}
	r.log.Info("load finished; draining", "acked", loadStats.Acked, "deadline", drain)
	res, derr := val.Drain(context.WithoutCancel(ctx), drain)
	r.phases.end(time.Now())
	stopProgress()
	if derr != nil {
		r.rep.Error = "validator: " + derr.Error()
	}
	if interrupted {
		r.rep.Verdict = report.Incomplete
		r.rep.Error = "interrupted"
	}
	if nem != nil {
		r.phases.actualFaults(nem.Records())
	}
	assertResults := r.evaluate(coll, asserts)
	r.rep.Timeline = timeline.PerSecond(val, t0.Sub(vstart))
	samples.Finish(r.rep)
	if o.BeforeTeardown != nil {
		o.BeforeTeardown(srcBoot, tgtBoot)
	}
	r.finish(val, drain, loadStats, nem, res, assertResults)
	return r.rep, nil
}

// finish fills the report from every part, judges it and writes it.
func (r *run) finish(val *validator.Validator, _ time.Duration, ls loadgen.Stats, nem *local.Nemesis, res *validator.Result, as []report.Assertion) {
	rep := r.rep
	rep.EndedAt = time.Now()
	rep.Phases = r.phases.records()
	if nem != nil {
		rep.Faults = nem.Records()
	}
	rep.Load = report.Load{
		TargetRate: r.s.Spec.Load.Rate, Sent: ls.Sent, Acked: ls.Acked, Failed: ls.Failed,
		Seconds: ls.Elapsed.Seconds(),
	}
	if ls.Elapsed > 0 {
		rep.Load.AchievedRate = float64(ls.Acked+ls.Failed) / ls.Elapsed.Seconds()
	}
	if res != nil {
		ApplyResult(rep, res)
	}
	rep.Counts.Produced = ls.Sent
	rep.ExtraCounts.Failed = ls.Failed
	rep.Assertions = as
	if r.mm2 != nil {
		rep.MirrorMetrics = r.mm2.ReportMetrics()
	}
	rep.Judge()
	if r.harness != nil {
		judgeHarness(rep, r.harness.Stop(), r.readLag(), ls, r.s.Spec.Load.Rate)
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
func (r *run) serveMetrics() (string, error) {
	if r.o.MetricsAddr == "" {
		return "", nil
	}
	ln, err := net.Listen("tcp", r.o.MetricsAddr)
	if err != nil {
		return "", Env(fmt.Errorf("listen for /metrics on %s: %w (pick a free address with --metrics-addr)", r.o.MetricsAddr, err))
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
	url := "http://" + ln.Addr().String() + "/metrics"
	r.log.Info("serving metrics", "url", url)
	return url, nil
}

// progress prints a line every ProgressInt until the returned stop is called.
func (r *run) progress(t0 time.Time, val *validator.Validator, nem *local.Nemesis) func() {
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
