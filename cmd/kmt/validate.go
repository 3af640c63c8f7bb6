package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	bootlist "github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/assertions"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube/agent"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/history"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
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
	shard, shards          int
	merge                  bool
	statesTopic            string
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
		RunE: func(cmd *cobra.Command, args []string) error {
			return runValidate(cmd.Context(), g, f, cmd.Flags().Changed("shard"))
		},
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
	fl.IntVar(&f.shards, "shards", 0, "run as one of this many validator shards (each reads partitions p % shards == --shard and publishes its state), or with --merge: how many to merge")
	fl.IntVar(&f.shard, "shard", 0, "this shard, 0..shards-1 (default $JOB_COMPLETION_INDEX)")
	fl.BoolVar(&f.merge, "merge", false, "merge the --shards shards' states into the one report (reads no records itself)")
	fl.StringVar(&f.statesTopic, "states-topic", validator.DefaultStatesTopic, "topic on the target cluster where shards publish their states")
	f.kafka.Register(fl)
	return c
}

// shardRole fills the job's sharding from the flags ($JOB_COMPLETION_INDEX
// is an Indexed Job pod's index) and says whether this process is a shard.
func (f validateFlags) shardRole(j *validator.Job, shardFlagged bool) (bool, error) {
	j.Shards, j.Shard, j.Merge, j.StatesTopic = f.shards, f.shard, f.merge, f.statesTopic
	if v := os.Getenv("JOB_COMPLETION_INDEX"); v != "" && !shardFlagged && f.shards > 1 && !f.merge {
		i, err := strconv.Atoi(v)
		if err != nil {
			return false, runner.Usage(fmt.Errorf("JOB_COMPLETION_INDEX=%q is not a number: give --shard", v))
		}
		j.Shard = i
	}
	switch {
	case f.merge && f.shards < 1:
		return false, runner.Usage(errors.New("--merge needs --shards (how many shard states to merge)"))
	case f.shards < 0 || j.Shard < 0 || f.shards > 1 && j.Shard >= f.shards:
		return false, runner.Usage(fmt.Errorf("--shard %d of --shards %d: give 0 <= shard < shards", j.Shard, f.shards))
	}
	return f.shards > 1 && !f.merge, nil
}

func runValidate(ctx context.Context, g *globals, f validateFlags, shardFlagged bool) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	job, err := f.job(log)
	if err != nil {
		return err
	}
	isShard, err := f.shardRole(&job, shardFlagged)
	if err != nil {
		return err
	}
	if isShard {
		return runShard(ctx, g, f, job)
	}
	dir := f.reportDir
	if dir == "" {
		dir = filepath.Join("reports", f.runID)
	}
	if err := runner.CheckReportDir(dir); err != nil {
		return err
	}
	// The report folder keeps the validator's own log, as kmt run's does.
	log, closeLog := history.OpenLog(dir, log)
	defer closeLog()
	job.Logger = log
	reg, stop, err := f.serveValidatorMetrics(&job)
	if err != nil {
		return err
	}
	defer stop()
	var cm *kube.ReportWriter
	if f.configMap != "" {
		if cm, err = kube.NewReportWriter(f.configMap, f.runID, job.Name()); err != nil {
			return runner.Env(fmt.Errorf("--report-configmap %s: %w", f.configMap, err))
		}
	}
	job.Progress = func(phase string, c validator.Counts) {
		fmt.Fprintf(g.stderr, "[validate] %s acked=%d received=%d duplicate=%d reordered=%d corrupt=%d\n", phase, c.Acked, c.Received, c.Duplicate, c.Reordered, c.Corrupt)
		if cm != nil {
			if err := cm.Progress(ctx, phase, c); err != nil {
				log.Warn("could not write progress to the report ConfigMap", "err", err)
			}
		}
	}
	var samples *timeline.Sampler
	job.LoadSeen = func(t0 time.Time, v *validator.Validator) { samples = timeline.StartRun(t0, v, reg) }
	job.Drained = func(rep *report.Report, v *validator.Validator, loadOffset time.Duration) {
		if samples != nil {
			rep.Timeline = timeline.PerSecond(v, loadOffset)
			samples.Finish(rep)
		}
	}
	// kmt's own health (CPU, scheduling, the validator's read lag): when
	// saturated, timing assertions are incomplete, not the mirror's fault.
	var harness *runner.Harness
	job.Started = func(v *validator.Validator) {
		harness = runner.StartHarness(ctx, kafkaclient.Config{Brokers: bootlist.Split(f.targetBoot), Security: job.Security}, job.Topics, v)
	}
	job.LoadEnded = func() { harness.LoadEnded() }
	job.Judged = func(rep *report.Report) {
		if harness != nil { // a merge reads nothing: its shards' health is theirs
			harness.Judge(rep, loadgen.Stats{}, 0) // the load ran elsewhere: its rate is not judged here
		}
	}
	defer func() {
		if harness != nil {
			harness.Stop()
		}
	}()
	rep, err := job.Run(ctx)
	var ce *validator.ConfigError
	if errors.As(err, &ce) {
		return runner.Usage(err)
	}
	if err != nil {
		return runner.Env(err)
	}
	return f.finish(ctx, g, rep, job.Scenario, cm, dir, log)
}

// job turns the flags into a validator.Job; every bad flag is a usage
// error (exit 2) before anything connects.
func (f validateFlags) job(log *slog.Logger) (validator.Job, error) {
	s, err := scenarioDefaults(f.scenarioPath, f.short)
	if err != nil {
		return validator.Job{}, err
	}
	if f.sourceBoot == "" || f.targetBoot == "" {
		return validator.Job{}, runner.Usage(errors.New("--source-bootstrap and --target-bootstrap are required"))
	}
	if f.runID == "" {
		return validator.Job{}, runner.Usage(errors.New("--run-id is required: the validator judges one run (the loadgen's --run-id)"))
	}
	if f.drain < 0 || f.wait < 0 {
		return validator.Job{}, runner.Usage(fmt.Errorf("--drain %s / --wait %s: must not be negative (leave them out for the defaults)", f.drain, f.wait))
	}
	j := validator.Job{
		SourceBootstrap: f.sourceBoot, TargetBootstrap: f.targetBoot, RunID: f.runID, LedgerTopic: f.ledgerTopic,
		Scenario: s, FaultsTopic: f.faultsTopic, Drain: 60 * time.Second, Wait: time.Hour, Short: f.short, Logger: log,
	}
	if s != nil {
		j.Drain, j.Wait = s.Spec.Drain.D(), kube.LoadWait(s)
		for _, t := range s.Spec.Topology.Topics {
			j.Topics = append(j.Topics, validator.TopicPair{Source: t.Name, Target: t.Target()})
		}
		if j.Assertions, err = assertions.Compile(s); err != nil {
			return j, runner.Usage(err)
		}
		if err := assertions.CheckExprs(j.Assertions); err != nil {
			return j, runner.Usage(err)
		}
	}
	if err := f.topicPairs(&j); err != nil {
		return j, err
	}
	if f.drain > 0 {
		j.Drain = f.drain
	}
	if f.wait > 0 {
		j.Wait = f.wait
	}
	if len(j.Assertions) > 0 && f.prom.URL != "" {
		if j.Remote, err = assertions.NewRemote(f.prom); err != nil {
			return j, runner.Usage(err)
		}
	} else if len(j.Assertions) > 0 {
		log.Warn("the scenario has assertions but no --prometheus-url: they are not evaluated")
	}
	if j.Security, err = kafkaSecurity(f.kafka); err != nil {
		return j, err
	}
	return j, nil
}

// topicPairs applies --topic and --target-topic over the scenario's topics.
func (f validateFlags) topicPairs(j *validator.Job) error {
	if len(f.topics) > 0 {
		j.Topics = nil
		for _, t := range f.topics {
			j.Topics = append(j.Topics, validator.TopicPair{Source: t, Target: t})
		}
	}
	if len(j.Topics) == 0 {
		return runner.Usage(errors.New("--topic is required (or --scenario)"))
	}
	if f.targetTopic != "" {
		if len(j.Topics) != 1 {
			return runner.Usage(errors.New("--target-topic needs exactly one source topic"))
		}
		j.Topics[0].Target = f.targetTopic
	}
	return nil
}

// finish writes the report (files, summary, ConfigMap) and maps the verdict
// to the exit code.
func (f validateFlags) finish(ctx context.Context, g *globals, rep *report.Report, s *scenarios.Scenario, cm *kube.ReportWriter, dir string, log *slog.Logger) error {
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
		putHTMLConfigMap(context.WithoutCancel(ctx), cm, f.configMap, dir, log)
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

// serveValidatorMetrics serves a new registry on --metrics-addr and gives
// the job its wrapped registerer (role validator); stop ends the server.
func (f validateFlags) serveValidatorMetrics(job *validator.Job) (*prometheus.Registry, func(), error) {
	reg := prometheus.NewRegistry()
	stop, err := serveMetrics(f.metricsAddr, reg)
	if err != nil {
		return nil, nil, err
	}
	job.Registerer = metrics.Wrap(reg, job.Name(), f.runID, "validator")
	return reg, stop, nil
}

// runShard runs one validator shard: its state goes to the states topic,
// the merge (kmt validate --merge) writes the report.
func runShard(ctx context.Context, g *globals, f validateFlags, job validator.Job) error {
	_, stop, err := f.serveValidatorMetrics(&job)
	if err != nil {
		return err
	}
	defer stop()
	err = job.RunShard(ctx)
	var ce *validator.ConfigError
	if errors.As(err, &ce) {
		return runner.Usage(err)
	}
	if err != nil {
		return runner.Env(fmt.Errorf("validator shard %d of %d: %w", job.Shard, job.Shards, err))
	}
	fmt.Fprintf(g.stdout, "shard %d of %d: state published to %s; kmt validate --merge --shards %d writes the report\n", job.Shard, job.Shards, job.StatesTopic, job.Shards)
	return nil
}
