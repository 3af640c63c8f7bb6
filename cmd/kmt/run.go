package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

//nolint:funlen // cobra command: mostly flag declarations
func newRunCmd(g *globals) *cobra.Command {
	var o runner.Options
	var defects []string
	var output string
	var kf kafkaclient.Flags // --kafka-tls-*, --kafka-sasl-*: your clusters' TLS and SASL
	c := &cobra.Command{
		Use:   "run SCENARIO",
		Short: "Run a scenario end to end and print the verdict",
		Long: `Run a scenario: a path to a YAML file, or a catalogue name (kmt list).

By default kmt starts everything in this process: two embedded Kafka-protocol
clusters (source and target, 3 brokers each), the reference mirror, the
loadgen, the validator, and the faults of the scenario's timeline. It prints
progress while it runs, a summary at the end, and writes report.json and
junit.xml to --report-dir.

Against clusters you already have, give both bootstraps. With --mirror
external kmt starts nothing: it produces to the source topic and validates
the target topic (use --target-topic when your mirror renames topics, as
MirrorMaker 2 does: --target-topic source.orders).

With --brokers apache the two clusters are real Apache Kafka KRaft clusters
(JVMs on loopback, the scenario's broker count each; their logs go to the
report folder) and every broker fault is done to them for real: SIGKILL and
restart, SIGSTOP/SIGCONT, whole-cluster restart, partitions added and
records deleted through the admin API.

With a mirror of your own as a local process, --mirror-command runs it with
the embedded clusters' addresses substituted in, and kmt injects process
faults (kill, stop, pause) into it:

  kmt run mirror-hard-kill --mirror-command 'while :; do
    kcat -C -q -u -e -b {{.SourceBootstrap}} -G {{.Group}} -X auto.offset.reset=earliest \
      -X session.timeout.ms=6000 -K "\x1f" {{.SourceTopic}} |
    kcat -P -q -b {{.TargetBootstrap}} -t {{.TargetTopic}} -K "\x1f"; sleep 0.2; done'

(a pipe mirror made of two kcats; kcat -P sends its last lines only at end
of input, so the consumer exits at the end of its partitions and the loop
resumes from the group's committed offsets).

Template fields: {{.SourceBootstrap}} {{.TargetBootstrap}} {{.SourceTopic}}
{{.TargetTopic}} {{.Group}} {{.ReportDir}}.

Reference-mirror defects (for proving the checker, never on by default):
  --defect drop=100   --defect duplicate=50   --defect reorder=10
  --defect corrupt=200   --defect commit-before-produce`,
		Example: `  kmt run baseline
  kmt run scenarios/wan-latency.yaml --short
  kmt run baseline --duration 20s --rate 2000 --report-dir /tmp/kmt
  kmt run source-broker-kill --short --brokers apache
  kmt run baseline --source-bootstrap a:9092 --target-bootstrap b:9092 --mirror external --target-topic source.orders

Failover drill (consumer-group offset translation) against your MirrorMaker 2:
  kmt run failover-caught-up --source-bootstrap a:9092 --target-bootstrap b:9092 --mirror external \
    --target-topic source.orders --failover-checkpoints-topic source.checkpoints.internal --failover-settle 2m

Apache Kafka's MirrorMaker 2 (dedicated mode) with properties generated from
the scenario, plus your production settings; the effective file, its log and
its metrics land in the report folder:
  kmt run mirror-hard-kill --short --brokers apache --mirror mirrormaker2 --mirror-config prod-mm2.properties`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			o.Scenario = args[0]
			o.Logger = log
			o.Progress = g.stderr
			for _, d := range defects {
				def, err := parseDefect(d)
				if err != nil {
					return runner.Usage(err)
				}
				o.Defects = append(o.Defects, def)
			}
			if cmd.Flags().Changed("mirror-command") && strings.TrimSpace(o.MirrorCommand) == "" {
				return runner.Usage(errors.New("--mirror-command is empty: give the shell command that runs your mirror, or leave the flag out for the built-in reference mirror"))
			}
			if output != "summary" && output != "json" {
				return runner.Usage(fmt.Errorf("--output %q: use summary or json", output))
			}
			if o.Security, err = kafkaSecurity(kf); err != nil {
				return err
			}
			rep, err := runner.Run(cmd.Context(), o)
			if err != nil && rep == nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				enc.Encode(rep)
			} else {
				rep.WriteSummary(g.stdout)
				dir := o.ReportDir
				if dir == "" {
					dir = filepath.Join("reports", rep.Run)
				}
				fmt.Fprintf(g.stdout, "report    %s\n", filepath.Join(dir, "report.json"))
			}
			if err != nil {
				fmt.Fprintf(g.stderr, "kmt: %v\n", err)
				return &exitError{runner.ExitCode(err)}
			}
			switch rep.Verdict {
			case report.Pass:
				return nil
			case report.Fail:
				return &exitError{runner.ExitFail}
			}
			return &exitError{runner.ExitEnv}
		},
	}
	f := c.Flags()
	f.BoolVar(&o.Short, "short", false, "use the scenario's short form (seconds, not minutes; what CI runs)")
	f.DurationVar(&o.Duration, "duration", 0, "override the load duration (e.g. 30s)")
	f.Float64Var(&o.Rate, "rate", 0, "override the load rate in messages/s over all topics")
	f.DurationVar(&o.Drain, "drain", 0, "override the drain deadline: how long to wait after the load for the mirror to catch up")
	f.StringVar(&o.ReportDir, "report-dir", "", "where report.json, junit.xml and mirror logs go (default reports/<run id>)")
	f.StringVar(&o.RunID, "run-id", "", "run id written into every record (default <scenario>-<time>-<random>)")
	f.StringVar(&o.SourceBootstrap, "source-bootstrap", "", "existing source cluster (host:port[,host:port]); needs --target-bootstrap")
	f.StringVar(&o.TargetBootstrap, "target-bootstrap", "", "existing target cluster; needs --source-bootstrap")
	f.StringVar(&o.Brokers, "brokers", runner.BrokersEmbedded, "clusters kmt starts: embedded (in-process Kafka-protocol fake, no install) or apache (real Apache Kafka KRaft brokers as JVMs; needs java)")
	f.StringVar(&o.KafkaHome, "kafka-home", "", "unpacked Apache Kafka (folder with libs/) for --brokers apache; default $KMT_KAFKA_HOME, else assembled once from Maven Central into ~/.cache/kmt")
	f.IntVar(&o.ClusterSize, "cluster-size", 0, "brokers per cluster kmt starts, overriding the scenario's (e.g. 1 on a small machine)")
	f.StringVar(&o.Mirror, "mirror", "", "override the mirror: reference (built in), process (--mirror-command), external (already running, yours), mirrormaker2 (Apache Kafka's MirrorMaker 2, started by kmt)")
	kf.Register(f)
	f.StringVar(&o.MirrorConfig, "mirror-config", "", "MirrorMaker 2 properties FILE with your production settings, added after kmt's (with --mirror mirrormaker2)")
	f.BoolVar(&o.SameTopic, "same-topic", false, "accept one cluster and topic as both source and target: no mirror, kmt checks the cluster against itself (kmt produces into that topic)")
	f.StringVar(&o.MirrorCommand, "mirror-command", "", "shell command that runs your mirror (implies --mirror process); Go template fields as above")
	f.StringArrayVar(&defects, "defect", nil, "reference-mirror defect NAME[=N] (repeatable): "+scenarios.DefectNames())
	f.StringVar(&o.SourceTopic, "source-topic", "", "override the source topic name (single-topic scenarios)")
	f.StringVar(&o.TargetTopic, "target-topic", "", "override the target topic name, for mirrors that rename (MirrorMaker 2: source.<topic>)")
	f.StringVar(&o.FailoverGroup, "failover-group", "", "failover drill (scenarios with spec.failover): the consumer group kmt moves; your MirrorMaker 2's `groups` must include it")
	f.StringVar(&o.CheckpointsTopic, "failover-checkpoints-topic", "", "failover drill: where your mirror writes checkpoints on the target (default <source alias>.checkpoints.internal)")
	f.DurationVar(&o.FailoverSettle, "failover-settle", 0, "failover drill: wait this long after the group left the source before reading its offsets on the target (default 2 checkpoint intervals; 2m for your mirror)")
	f.StringVar(&o.MetricsAddr, "metrics-addr", "", "serve Prometheus /metrics here while running, e.g. 127.0.0.1:9464")
	f.DurationVar(&o.ProgressInt, "progress-interval", 2*time.Second, "how often to print a progress line")
	f.StringVar(&output, "output", "summary", "what to print on stdout at the end: summary or json (report.json is always written)")
	return c
}

// parseDefect reads NAME or NAME=N.
func parseDefect(s string) (scenarios.Defect, error) {
	name, n, hasN := strings.Cut(s, "=")
	d := scenarios.Defect{Name: name}
	if hasN {
		v, err := strconv.Atoi(n)
		if err != nil || v < 2 {
			return d, fmt.Errorf("--defect %s: N must be a whole number >= 2", s)
		}
		d.Every = v
	}
	switch takesN, known := scenarios.DefectTakesN(name); {
	case !known:
		return d, fmt.Errorf("--defect %q: unknown; use one of %s (NAME=N for the every-N defects)", s, scenarios.DefectNames())
	case takesN && !hasN:
		return d, fmt.Errorf("--defect %s needs =N (every Nth record), e.g. %s=100", name, name)
	}
	return d, nil
}

func newListCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the catalogue scenarios with what each tests",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			names := scenarios.Catalogue()
			sort.Strings(names)
			for _, n := range names {
				s, err := scenarios.Read(n)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.stdout, "%s\n  %s\n", n, wrap(strings.TrimSpace(s.Metadata.Description), 76, "  "))
			}
			return nil
		},
	}
}

func wrap(s string, width int, indent string) string {
	var b strings.Builder
	line := 0
	for i, w := range strings.Fields(s) {
		if i > 0 && line+len(w)+1 > width {
			b.WriteString("\n" + indent)
			line = 0
		} else if i > 0 {
			b.WriteByte(' ')
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	return b.String()
}
