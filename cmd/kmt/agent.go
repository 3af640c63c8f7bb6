package main

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/kmt-dev/kafka-mirror-tester/chaos/mesh"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube/agent"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
)

func newAgentCmd(g *globals) *cobra.Command {
	var (
		cfg                           agent.Config
		scenarioPath, targetsPath     string
		role, metricsAddr, targetBoot string
	)
	c := &cobra.Command{
		Use:   "agent",
		Short: "In-cluster fault agent of a scenario chart (one per cluster)",
		Long: `Run inside a cluster as part of a scenario chart: wait for the load's real
start (the run's first ledger entry), export kmt_run_info, kmt_phase and
kmt_fault_active on that clock, perform the faults Chaos Mesh cannot
(broker-pause and mirror-pause by pod exec, topic-add-partitions and
topic-purge through the Kafka admin API), read what this cluster's Chaos Mesh
Workflow really injected, and publish every fault's record to the fault topic
on the source cluster, where kmt validate reads them before judging.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			s, err := scenarioDefaults(scenarioPath, false)
			if err != nil {
				return err
			}
			if s == nil || cfg.RunID == "" || cfg.SourceBootstrap == "" {
				return runner.Usage(errors.New("--scenario, --run-id and --source-bootstrap are required"))
			}
			if role != string(mesh.Source) && role != string(mesh.Target) {
				return runner.Usage(fmt.Errorf("--role %q: want source or target", role))
			}
			if cfg.Targets, err = agent.ReadTargets(targetsPath); err != nil {
				return runner.Usage(err)
			}
			cfg.Scenario, cfg.Role, cfg.Logger = s, mesh.Cluster(role), log
			if cfg.Security, err = kafkaSecurity(kafkaclient.Flags{}); err != nil { // the chart's KMT_KAFKA_* variables
				return err
			}
			if err := agentKube(&cfg); err != nil {
				log.Warn("no Kubernetes access: Chaos Mesh status and process pauses are unavailable, and their faults will be reported as not done", "err", err)
			}
			reg := prometheus.NewRegistry()
			cfg.Registerer = metrics.Wrap(reg, s.Metadata.Name, cfg.RunID, "harness")
			stop, err := serveMetrics(metricsAddr, reg)
			if err != nil {
				return err
			}
			defer stop()
			if err := agent.Run(cmd.Context(), cfg); err != nil {
				return runner.Env(err)
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&scenarioPath, "scenario", "", "scenario file (or catalogue name)")
	f.StringVar(&targetsPath, "targets", "/etc/kmt/targets.yaml", "the chart's targets value (namespaces, selectors, pod prefixes, mirror container)")
	f.StringVar(&role, "role", "", "which cluster this agent runs in: source or target")
	f.StringVar(&cfg.RunID, "run-id", "", "the run")
	f.StringVar(&cfg.SourceBootstrap, "source-bootstrap", "", "source cluster as seen from this cluster (ledger and fault topics, topic faults)")
	f.StringVar(&targetBoot, "target-bootstrap", "", "target cluster (unused; accepted so both workloads share one environment)")
	f.StringVar(&cfg.LedgerTopic, "ledger-topic", ledger.DefaultTopic, "ledger topic on the source cluster")
	f.StringVar(&cfg.FaultsTopic, "faults-topic", agent.DefaultTopic, "fault topic on the source cluster")
	f.StringVar(&cfg.Workflow, "workflow", "", "this cluster's Chaos Mesh Workflow (in the pod's namespace)")
	f.BoolVar(&cfg.Inject, "inject", true, "perform this side's faults (false: report each as not done)")
	f.StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus /metrics here, e.g. :9090")
	return c
}

// agentKube connects with the pod's service account.
func agentKube(cfg *agent.Config) error {
	rc, err := config.GetConfig()
	if err != nil {
		return err
	}
	if cfg.Kube, err = client.New(rc, client.Options{Scheme: scheme.Scheme}); err != nil {
		return err
	}
	if cfg.Pauser, err = agent.NewPauser(rc); err != nil {
		return err
	}
	cfg.Namespace, err = kube.Namespace()
	return err
}
