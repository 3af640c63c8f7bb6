package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
	"github.com/kmt-dev/kafka-mirror-tester/loadgen"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// serveMetrics serves reg on addr until the returned stop is called.
func serveMetrics(addr string, reg *prometheus.Registry) (func(), error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, runner.Env(fmt.Errorf("listen for /metrics on %s: %w", addr, err))
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}

// scenarioDefaults loads --scenario (if given) for its topics and load.
func scenarioDefaults(path string, short bool) (*scenarios.Scenario, error) {
	if path == "" {
		return nil, nil
	}
	s, err := scenarios.Read(path)
	if err != nil {
		return nil, runner.Usage(err)
	}
	if short {
		s = s.ShortForm()
	}
	if err := s.Validate(""); err != nil {
		return nil, runner.Usage(err)
	}
	return s, nil
}

//nolint:funlen // cobra command: mostly flag declarations
func newLoadgenCmd(g *globals) *cobra.Command {
	var (
		cfg           loadgen.Config
		kf            kafkaclient.Flags
		topics        []string
		scenarioPath  string
		short         bool
		metricsAddr   string
		scenarioName  string
		streams, size int
		rate          float64
		linger        bool
		createTopics  bool
		rf            int
		duration      time.Duration
	)
	c := &cobra.Command{
		Use:   "loadgen",
		Short: "Produce sequenced records to a source cluster and publish the ack ledger",
		Long: `Produce sequenced, checksummed records (acks=all) at a controlled rate, and
record exactly which sequences the source acknowledged. With --ledger-topic
the ledger is published to that topic on the source cluster (MirrorMaker 2
does not copy topics starting with __ by default), so a validator in the
other datacenter (kmt validate) knows what was acked.

Values come from --scenario (load and topics) unless given as flags.`,
		Example: `  kmt loadgen --bootstrap localhost:9092 --topic orders --rate 1000 --duration 60s --run-id test-1 --ledger-topic __kmt_ledger
  kmt loadgen --scenario /etc/kmt/scenario.yaml --bootstrap $SOURCE_BOOTSTRAP --run-id $RUN_ID --metrics-addr :9090`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			s, err := scenarioDefaults(scenarioPath, short)
			if err != nil {
				return err
			}
			if s != nil {
				scenarioName = s.Metadata.Name
			}
			if cfg.Bootstrap == "" {
				return runner.Usage(errors.New("--bootstrap is required (the source cluster, host:port[,host:port])"))
			}
			if cfg.RunID == "" && cfg.Instances > 1 {
				return runner.Usage(errors.New("--instances > 1 needs --run-id: every instance of the run must write the same run id"))
			}
			if cfg.RunID == "" {
				cfg.RunID = runner.NewRunID(orDefault(scenarioName, "loadgen"))
			}
			if err := loadgenInstanceFromEnv(&cfg, cmd.Flags().Changed("instance")); err != nil {
				return err
			}
			if cfg.Security, err = kafkaSecurity(kf); err != nil {
				return err
			}
			cfg.Topics, cfg.Rate, cfg.Duration, cfg.Streams, cfg.MessageSize = topics, rate, duration, streams, size
			reg := prometheus.NewRegistry()
			cfg.Registerer = metrics.Wrap(reg, orDefault(scenarioName, "adhoc"), cfg.RunID, "loadgen")
			stop, err := serveMetrics(metricsAddr, reg)
			if err != nil {
				return err
			}
			defer stop()
			cfg.Logger = log
			job := loadgen.Job{Config: cfg, Scenario: s, CreateTopics: createTopics, ReplicationFactor: rf, Linger: linger, Summary: g.stdout, Progress: g.stderr}
			if _, err := job.Run(cmd.Context()); err != nil {
				if loadgen.IsBadInput(err) {
					return runner.Usage(err)
				}
				return runner.Env(err)
			}
			return nil
		},
	}
	f := c.Flags()
	kf.Register(f)
	f.StringVar(&cfg.Bootstrap, "bootstrap", "", "source cluster bootstrap servers (host:port[,host:port])")
	f.StringArrayVar(&topics, "topic", nil, "topic to produce to (repeatable); must exist")
	f.Float64Var(&rate, "rate", 0, "messages per second over all topics (0 with a scenario: the scenario's)")
	f.DurationVar(&duration, "duration", 0, "how long to produce")
	f.Int64Var(&cfg.Count, "count", 0, "stop after this many records")
	f.IntVar(&streams, "streams", 0, "streams (keys) per topic (default 32 via scenario, else 1)")
	f.IntVar(&size, "size", 0, "record value size in bytes (default 256 via scenario)")
	f.StringVar(&cfg.RunID, "run-id", "", "run id written into every record (the validator judges only this run)")
	f.StringVar(&cfg.LedgerTopic, "ledger-topic", "", "publish the ack ledger to this topic on the source, e.g. "+ledger.DefaultTopic)
	f.StringVar(&scenarioPath, "scenario", "", "scenario file (or catalogue name) to take topics and load from")
	f.BoolVar(&short, "short", false, "with --scenario: use its short form")
	f.StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus /metrics here, e.g. :9090")
	f.IntVar(&cfg.Instances, "instances", 0, "loadgen instances of this run (an Indexed Job's completions); --rate and --count are totals, each instance produces its share on its own streams")
	f.IntVar(&cfg.Instance, "instance", 0, "this instance, 0..instances-1 (default $JOB_COMPLETION_INDEX)")
	f.StringVar(&cfg.Launch, "launch-id", os.Getenv("KMT_LAUNCH_ID"), "with --instances: a token every instance of this launch shares (e.g. the Job's uid; default $KMT_LAUNCH_ID)")
	f.BoolVar(&createTopics, "create-topics", false, "create missing topics first (partitions from --scenario, else 6)")
	f.IntVar(&rf, "replication-factor", -1, "with --create-topics: replication factor (-1: the broker's default)")
	f.BoolVar(&linger, "linger", false, "after the load, keep serving /metrics until SIGTERM (for Kubernetes Deployments)")
	return c
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// loadgenInstanceFromEnv takes the instance from $JOB_COMPLETION_INDEX (an
// Indexed Job's pod) unless --instance was given.
func loadgenInstanceFromEnv(cfg *loadgen.Config, flagged bool) error {
	v := os.Getenv("JOB_COMPLETION_INDEX")
	if flagged || v == "" || cfg.Instances <= 1 {
		return nil
	}
	i, err := strconv.Atoi(v)
	if err != nil {
		return runner.Usage(fmt.Errorf("JOB_COMPLETION_INDEX=%q is not a number: give --instance", v))
	}
	cfg.Instance = i
	return nil
}
