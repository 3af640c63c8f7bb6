package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/kmt-dev/kafka-mirror-tester/internal/assertions"
	bootlist "github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube/agent"
	"github.com/kmt-dev/kafka-mirror-tester/internal/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/timeline"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
	"github.com/kmt-dev/kafka-mirror-tester/loadgen"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
	"github.com/kmt-dev/kafka-mirror-tester/validator"
)

type validateFlags struct {
	kafka                  kafkaclient.Flags
	sourceBoot, targetBoot string
	topics                 []string
	targetTopic            string
	runID                  string
	ledgerTopic            string
	drain, wait            time.Duration
	reportDir              string
	scenarioPath           string
	short                  bool
	prom                   assertions.RemoteOptions
	configMap              string
	metricsAddr            string
	faultsTopic            string
}

func newValidateCmd(g *globals) *cobra.Command {
	var f validateFlags
	c := &cobra.Command{
		Use:   "validate",
		Short: "Check what a mirror delivered to the target against the source's ack ledger",
		Long: `Run the validator alone, in the target datacenter: read the run's ack ledger
from the ledger topic on the source cluster (written by kmt loadgen
--ledger-topic), read every partition of the target topic (and of the source
topic, to tell source loss from mirror loss) from the beginning, wait for the
load to finish, drain, and write the verdict.

With --scenario its assertions are evaluated against a Prometheus HTTP API
(--prometheus-url; kube-prometheus-stack or a plain Prometheus), windowed by
the scenario's phases placed at the load's start. With --report-configmap the
report is also written into that ConfigMap of the pod's namespace (Kubernetes).`,
		Example: `  kmt validate --source-bootstrap src:9092 --target-bootstrap dst:9092 --topic orders --target-topic source.orders --run-id test-1
  kmt validate --scenario /etc/kmt/scenario.yaml --source-bootstrap $SRC --target-bootstrap $DST --run-id $RUN_ID \
      --prometheus-url http://prometheus-operated.monitoring:9090 --report-dir /report --report-configmap kmt-report`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return runValidate(cmd.Context(), g, f) },
	}
	fl := c.Flags()
	fl.StringVar(&f.sourceBoot, "source-bootstrap", "", "source cluster (the ledger topic and the source log live there)")
	fl.StringVar(&f.targetBoot, "target-bootstrap", "", "target cluster (where the mirror writes)")
	fl.StringArrayVar(&f.topics, "topic", nil, "source topic (repeatable; default: the scenario's)")
	fl.StringVar(&f.targetTopic, "target-topic", "", "target topic name when the mirror renames (single topic), e.g. source.orders")
	fl.StringVar(&f.runID, "run-id", "", "the run to judge (records of other runs are counted apart)")
	fl.StringVar(&f.ledgerTopic, "ledger-topic", ledger.DefaultTopic, "ledger topic on the source cluster")
	fl.DurationVar(&f.drain, "drain", 0, "drain deadline after the load finished (default: the scenario's, else 60s)")
	fl.DurationVar(&f.wait, "wait", 0, "how long to wait for the load to finish (default: scenario duration + 10m, else 1h)")
	fl.StringVar(&f.reportDir, "report-dir", "", "where report.json and junit.xml go (default reports/<run id>)")
	fl.StringVar(&f.scenarioPath, "scenario", "", "scenario file (or catalogue name): topics, drain, assertions")
	fl.BoolVar(&f.short, "short", false, "with --scenario: use its short form")
	fl.StringVar(&f.prom.URL, "prometheus-url", "", "Prometheus HTTP API for the scenario's assertions, e.g. http://prometheus-operated.monitoring:9090")
	fl.StringVar(&f.prom.BearerTokenFile, "prometheus-token-file", "", "bearer token file (e.g. the pod's service-account token)")
	fl.StringVar(&f.prom.CAFile, "prometheus-ca-file", "", "CA bundle to verify the Prometheus server")
	fl.BoolVar(&f.prom.InsecureSkipVerify, "prometheus-insecure", false, "skip TLS verification of Prometheus (test clusters only)")
	fl.StringVar(&f.configMap, "report-configmap", "", "also write the report into this ConfigMap (in-cluster)")
	fl.StringVar(&f.metricsAddr, "metrics-addr", "", "serve Prometheus /metrics here, e.g. :9090")
	fl.StringVar(&f.faultsTopic, "faults-topic", "", "with --scenario: read what the in-cluster fault agents did (e.g. "+agent.DefaultTopic+" on the source) and judge by it")
	f.kafka.Register(fl)
	return c
}

func runValidate(ctx context.Context, g *globals, f validateFlags) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	s, err := scenarioDefaults(f.scenarioPath, f.short)
	if err != nil {
		return err
	}
	if f.sourceBoot == "" || f.targetBoot == "" {
		return runner.Usage(errors.New("--source-bootstrap and --target-bootstrap are required"))
	}
	if f.runID == "" {
		return runner.Usage(errors.New("--run-id is required: the validator judges one run (the loadgen's --run-id)"))
	}
	var pairs []validator.TopicPair
	name := "adhoc"
	drain, wait := 60*time.Second, time.Hour
	isolation := ""
	var as []assertions.Assertion
	if s != nil {
		name = s.Metadata.Name
		drain = s.Spec.Drain.D()
		isolation = s.Spec.Validation.Isolation
		wait = kube.LoadWait(s)
		for _, t := range s.Spec.Topology.Topics {
			pairs = append(pairs, validator.TopicPair{Source: t.Name, Target: t.Target()})
		}
		if as, err = assertions.Compile(s); err != nil {
			return runner.Usage(err)
		}
		if err := assertions.CheckExprs(as); err != nil {
			return runner.Usage(err)
		}
	}
	if len(f.topics) > 0 {
		pairs = nil
		for _, t := range f.topics {
			pairs = append(pairs, validator.TopicPair{Source: t, Target: t})
		}
	}
	if len(pairs) == 0 {
		return runner.Usage(errors.New("--topic is required (or --scenario)"))
	}
	if f.targetTopic != "" {
		if len(pairs) != 1 {
			return runner.Usage(errors.New("--target-topic needs exactly one source topic"))
		}
		pairs[0].Target = f.targetTopic
	}
	if f.drain > 0 {
		drain = f.drain
	}
	if f.wait > 0 {
		wait = f.wait
	}
	var remote *assertions.Remote
	if len(as) > 0 && f.prom.URL != "" {
		if remote, err = assertions.NewRemote(f.prom); err != nil {
			return runner.Usage(err)
		}
	} else if len(as) > 0 {
		log.Warn("the scenario has assertions but no --prometheus-url: they are not evaluated")
	}
	dir := f.reportDir
	if dir == "" {
		dir = filepath.Join("reports", f.runID)
	}

	reg := prometheus.NewRegistry()
	stop, err := serveMetrics(f.metricsAddr, reg)
	if err != nil {
		return err
	}
	defer stop()
	rep := &report.Report{SchemaVersion: report.SchemaVersion, Scenario: name, Run: f.runID, Backend: "external", Mirror: "external", Short: f.short, StartedAt: time.Now()}

	var cm *kube.ReportWriter
	if f.configMap != "" {
		if cm, err = kube.NewReportWriter(f.configMap, f.runID, name); err != nil {
			return runner.Env(fmt.Errorf("--report-configmap %s: %w", f.configMap, err))
		}
	}
	sec, err := kafkaSecurity(f.kafka)
	if err != nil {
		return err
	}
	dial, err := kafkaDial(f.kafka) // the fault agents' topics: TLS only so far
	if err != nil && f.faultsTopic != "" {
		return err
	}
	led := ledger.New()
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	ledErr := make(chan error, 1)
	go func() {
		ledErr <- ledger.ReadTopicWith(lctx, kafkaclient.Config{Brokers: bootlist.Split(f.sourceBoot), Security: sec}, f.ledgerTopic, f.runID, led)
	}()
	val, err := validator.New(validator.Config{
		TargetBootstrap: f.targetBoot, SourceBootstrap: f.sourceBoot, Security: sec, Topics: pairs, RunID: f.runID,
		Ledger: led, Isolation: isolation, Registerer: metrics.Wrap(reg, name, f.runID, "validator"), Logger: log,
	})
	if err != nil {
		return runner.Usage(err)
	}
	vctx, vcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer vcancel()
	vstart := time.Now()
	if err := val.Start(vctx); err != nil {
		return runner.Env(err)
	}
	// kmt's own health (CPU, scheduling, the validator's read lag): when
	// saturated, timing assertions are incomplete, not the mirror's fault.
	harness := runner.StartHarness(ctx, kafkaclient.Config{Brokers: bootlist.Split(f.targetBoot), Security: sec}, pairs, val)
	defer harness.Stop()
	var samples *timeline.Sampler
	var faults *agent.Collector
	if f.faultsTopic != "" && s != nil {
		// Purges reach the validator as they happen, before it drains.
		faults = agent.NewCollector(val.NoteTruncation)
		go agent.Read(lctx, f.sourceBoot, dial, f.faultsTopic, f.runID, faults.Add)
	}

	// Wait for the load to finish (the ledger's done entry), with progress.
	log.Info("waiting for the load to finish", "run", f.runID, "ledger_topic", f.ledgerTopic, "wait", wait)
	var t0 time.Time
	deadline := time.Now().Add(wait)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	interrupted := false
	for !led.Done() {
		if acked, _ := led.Totals(); acked > 0 && t0.IsZero() {
			// The ledger is flushed about once a second: the load started
			// about a second before its first entry was read.
			t0 = time.Now().Add(-time.Second)
			samples = timeline.StartRun(t0, val, reg)
		}
		if time.Now().After(deadline) {
			rep.Error = fmt.Sprintf("the load of run %s did not finish within %s (no done entry in ledger topic %s): is the loadgen running with --run-id %s --ledger-topic %s? raise --wait for long loads", f.runID, wait, f.ledgerTopic, f.runID, f.ledgerTopic)
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
			c := val.Live()
			phase := "waiting for load"
			if !t0.IsZero() && s != nil {
				phase = phaseAt(s, time.Since(t0))
			}
			fmt.Fprintf(g.stderr, "[validate] %s acked=%d received=%d duplicate=%d reordered=%d corrupt=%d\n", phase, c.Acked, c.Received, c.Duplicate, c.Reordered, c.Corrupt)
			if cm != nil {
				if err := cm.Progress(ctx, phase, c); err != nil {
					log.Warn("could not write progress to the report ConfigMap", "err", err)
				}
			}
		}
		if interrupted || rep.Error != "" {
			break
		}
	}
	if t0.IsZero() {
		t0 = rep.StartedAt
	}
	loadEnd := time.Now()
	harness.LoadEnded()
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
		runner.ApplyResult(rep, res)
	}
	if samples != nil {
		rep.Timeline = timeline.PerSecond(val, t0.Sub(vstart))
		samples.Finish(rep)
	}
	rep.EndedAt = time.Now()
	if s != nil {
		// The load's real start, as the ledger carries it (the same clock
		// the fault agents use), over the validator's first sight of it.
		if st, err := agent.LoadStart(ctx, f.sourceBoot, dial, f.ledgerTopic, f.runID, 30*time.Second); err == nil {
			t0 = st
		}
		w := assertions.PlannedWindows(s, t0)
		if faults != nil {
			if missing := faults.Wait(ctx, kube.FaultRecordsWait); len(missing) > 0 {
				log.Warn("fault agents did not finish; their faults count as not done", "clusters", missing)
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
		if remote != nil {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
			// Give Prometheus one scrape interval (30s by default in
			// kube-prometheus-stack) to collect the final values.
			select {
			case <-time.After(35 * time.Second):
			case <-actx.Done():
			}
			rep.Assertions = runner.ReportAssertions(as, assertions.EvaluateAll(actx, remote, as, w))
			cancel()
		}
	}
	rep.Judge()
	harness.Judge(rep, loadgen.Stats{}, 0) // the load ran elsewhere: its rate is not judged here
	if _, err := rep.WriteJSON(dir); err != nil {
		return runner.Env(err)
	}
	if _, err := rep.WriteJUnit(dir); err != nil {
		log.Warn("could not write junit.xml", "err", err)
	}
	saveValidateArtifacts(dir, s, rep, f.reportDir == "", log)
	rep.WriteSummary(g.stdout)
	fmt.Fprintf(g.stdout, "report    %s\n", filepath.Join(dir, "report.json"))
	if cm != nil {
		if err := cm.Report(context.WithoutCancel(ctx), rep); err != nil {
			fmt.Fprintf(g.stderr, "kmt: writing the report ConfigMap %s: %v\n", f.configMap, err)
			return &exitError{runner.ExitEnv}
		}
		log.Info("report written to ConfigMap", "name", f.configMap)
		putHTMLConfigMap(context.WithoutCancel(ctx), cm, dir, log)
	}
	switch rep.Verdict {
	case report.Pass:
		return nil
	case report.Fail:
		return &exitError{runner.ExitFail}
	}
	if rep.Error != "" {
		fmt.Fprintf(g.stderr, "kmt: %s\n", rep.Error)
	}
	return &exitError{runner.ExitEnv}
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

// phaseAt names the planned phase at offset d from the load start (fault
// windows win over steady).
func phaseAt(s *scenarios.Scenario, d time.Duration) string {
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
