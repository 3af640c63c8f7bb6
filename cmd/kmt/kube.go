package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"helm.sh/helm/v3/pkg/strvals"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kmt-dev/kafka-mirror-tester/chaos/mesh"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/assertions"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube/clusterrun"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// readScenario loads and validates a scenario for a backend.
func readScenario(path string, short bool, b scenarios.Backend) (*scenarios.Scenario, error) {
	s, err := scenarios.Read(path)
	if err != nil {
		return nil, runner.Usage(err)
	}
	if short {
		if s.Spec.Short == nil {
			return nil, runner.Usage(fmt.Errorf("%s: --short given but the scenario has no spec.short block", path))
		}
		s = s.ShortForm()
	}
	if err := s.Validate(b); err != nil {
		return nil, runner.Usage(err)
	}
	return s, nil
}

// kubernetesForm refuses, by name and before any cluster is reached, a
// catalogue scenario that has no chart because it has no Kubernetes form
// (the failover drill): the error says why and what to run instead.
func kubernetesForm(name string) error {
	if !slices.Contains(scenarios.Catalogue(), name) || slices.Contains(scenarios.KubernetesCatalogue(), name) {
		return nil
	}
	s, err := scenarios.Read(name)
	if err != nil {
		return runner.Usage(err)
	}
	if err := s.Validate(scenarios.BackendKubernetes); err != nil {
		return runner.Usage(fmt.Errorf("%s has no chart (charts/ holds the scenarios with a Kubernetes form): %w", name, err))
	}
	return nil
}

func newRenderCmd(g *globals) *cobra.Command {
	p := mesh.DefaultParams()
	var short, partial bool
	var peers, mirrorAddrs []string
	c := &cobra.Command{
		Use:   "render SCENARIO",
		Short: "Print the Chaos Mesh objects of a scenario (both clusters) as YAML",
		Long: `Print the scenario's fault timeline as Chaos Mesh objects: one Workflow per
cluster (Serial steps with Suspend gaps, a deadline on every step, so faults
end by themselves). Every document is labelled with the cluster it belongs
to (kmt.dev/cluster: source|target). Defaults match the kind setup (kind/):
Strimzi labels, a KafkaMirrorMaker2 named mirror in the target cluster.

Faults kmt's in-cluster agent performs (broker-pause, mirror-pause, topic
operations) are not Chaos Mesh objects and are not printed. A fault with no
Kubernetes form (wan-reset, wan-stall) is an error naming it, unless
--skip-unsupported.

  kmt render rules SCENARIO    the assertions as a prometheus-operator PrometheusRule`,
		Example: `  kmt render wan-partition --peer 172.18.0.3/32 | kubectl --context kind-target apply -f -`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctrllog.SetLogger(logr.Discard())
			b := scenarios.BackendKubernetes
			if partial {
				b = ""
			}
			s, err := readScenario(args[0], short, b)
			if err != nil {
				return err
			}
			p.PeerAddresses, p.MirrorAddresses = peers, mirrorAddrs
			var objs map[mesh.Cluster][]client.Object
			if partial {
				o, skipped, err := mesh.RenderPartial(s, p)
				if err != nil {
					return runner.Usage(err)
				}
				for _, f := range skipped {
					fmt.Fprintf(g.stderr, "kmt: skipped fault %q (%s): no Kubernetes meaning\n", f.Name, f.Kind)
				}
				objs = o
			} else {
				o, err := mesh.Render(s, p)
				if err != nil {
					return runner.Usage(err)
				}
				objs = o
			}
			return mesh.Print(g.stdout, objs)
		},
	}
	f := c.Flags()
	c.PersistentFlags().BoolVar(&short, "short", false, "render the scenario's short form")
	f.BoolVar(&partial, "skip-unsupported", false, "leave out faults with no Kubernetes meaning instead of failing")
	f.StringArrayVar(&peers, "peer", nil, "IP or CIDR of the source brokers as seen from the mirror (repeatable; WAN faults need it, e.g. the source kind node's docker address)")
	f.StringArrayVar(&mirrorAddrs, "mirror-address", nil, "IP or CIDR the mirror's connections come from as the source brokers see them (repeatable; wan-latency and wan-bandwidth shape the source side too)")
	c.PersistentFlags().StringVar(&p.Namespace, "namespace", p.Namespace, "namespace of the Workflows (render) or of the PrometheusRule (render rules)")
	f.StringVar(&p.RunID, "run-id", p.RunID, "run id label (kmt.dev/run)")
	f.DurationVar(&p.StartDelay, "start-delay", p.StartDelay, "wait this long before t=0 of the timeline (while the loadgen starts)")
	c.AddCommand(&cobra.Command{
		Use:   "rules SCENARIO",
		Short: "Print the scenario's assertions as a prometheus-operator PrometheusRule",
		Long: `Print the scenario's assertions (built-in and custom) as a PrometheusRule
with one alert per assertion, firing while the assertion is violated, for
game days watched in Grafana and Alertmanager.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := readScenario(args[0], short, "")
			if err != nil {
				return err
			}
			b, err := assertions.RenderRules(s, p.Namespace)
			if err != nil {
				return runner.Usage(err)
			}
			_, err = g.stdout.Write(b)
			return err
		},
	})
	return c
}

type kubeFlags struct {
	kubeconfig                   string
	sourceContext, targetContext string
	namespace                    string
}

func (k *kubeFlags) add(c *cobra.Command) {
	f := c.Flags()
	f.StringVar(&k.kubeconfig, "kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&k.sourceContext, "source-context", "", "kube context of the source cluster (e.g. kind-source)")
	f.StringVar(&k.targetContext, "target-context", "", "kube context of the target cluster (e.g. kind-target)")
	f.StringVar(&k.namespace, "namespace", "kmt", "namespace of the kmt workloads in both clusters (must be labelled kmt.dev/chaos=allowed for faults)")
}

func (k *kubeFlags) sides() (clusterrun.Side, clusterrun.Side, error) {
	if k.sourceContext == "" || k.targetContext == "" {
		return clusterrun.Side{}, clusterrun.Side{}, runner.Usage(errors.New("--source-context and --target-context are required (kubectl config get-contexts lists them)"))
	}
	src, err := clusterrun.LoadSide(k.kubeconfig, k.sourceContext, k.namespace, clusterrun.RoleSource)
	if err != nil {
		return src, src, runner.Usage(err)
	}
	tgt, err := clusterrun.LoadSide(k.kubeconfig, k.targetContext, k.namespace, clusterrun.RoleTarget)
	if err != nil {
		return src, tgt, runner.Usage(err)
	}
	return src, tgt, nil
}

//nolint:funlen // cobra command: mostly flag declarations
func newClusterCmd(g *globals) *cobra.Command {
	var k kubeFlags
	var chart, runID string
	var yes, keep bool
	var sets, srcSets, tgtSets []string
	var timeout time.Duration
	root := &cobra.Command{Use: "cluster", Short: "Run scenarios on two Kubernetes clusters (Helm charts, Chaos Mesh)"}
	run := &cobra.Command{
		Use:   "run SCENARIO",
		Short: "Install a scenario chart into both clusters, follow it, print the verdict, uninstall",
		Long: `Run a scenario on two Kubernetes clusters: install charts/<scenario> with
role=source into the source context and role=target into the target context
(Helm SDK), follow the run (phases, active Chaos Mesh objects, live counts
from the validator), fetch the verdict from the validator's report
ConfigMap, and uninstall.

Safety for game days: kmt prints exactly what it will create in each
cluster and asks before it starts (--yes skips the question), and refuses
to create chaos in a namespace that has not opted in with the label
kmt.dev/chaos=allowed. kmt abort --run-id ID removes everything of a run.`,
		Example: `  kmt cluster run wan-partition --source-context kind-kmt-source --target-context kind-kmt-target --target-set kafka.sourceBootstrap=172.18.0.2:32100
  kmt cluster run baseline --source-context prod-eu --target-context prod-us --namespace kmt --set prometheus.url=http://prometheus-operated.monitoring:9090 --target-set kafka.sourceBootstrap=src.example:9094`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			name := strings.TrimSuffix(filepath.Base(args[0]), ".yaml")
			if chart == "" {
				if err := kubernetesForm(name); err != nil {
					return err
				}
				chart = filepath.Join("charts", name)
			}
			src, tgt, err := k.sides()
			if err != nil {
				return err
			}
			if _, err := os.Stat(chart); err != nil {
				return runner.Usage(fmt.Errorf("chart %s: %w (give --chart, or run from the repository root; make charts regenerates them)", chart, err))
			}
			values := map[string]any{}
			side := map[clusterrun.Role]map[string]any{clusterrun.RoleSource: {}, clusterrun.RoleTarget: {}}
			for _, x := range []struct {
				flag string
				in   []string
				into map[string]any
			}{{"--set", sets, values}, {"--source-set", srcSets, side[clusterrun.RoleSource]}, {"--target-set", tgtSets, side[clusterrun.RoleTarget]}} {
				for _, s := range x.in {
					// Helm's own --set syntax and typing (true, 3, a.b=c, list[0]=x).
					if err := strvals.ParseInto(s, x.into); err != nil {
						return runner.Usage(fmt.Errorf("%s %q: %w (use key=value; dots nest: prometheus.url=...)", x.flag, s, err))
					}
				}
			}
			r, err := clusterrun.New(clusterrun.Options{Source: src, Target: tgt, Chart: chart, Scenario: name, RunID: runID, Values: values, SideValues: side, Timeout: timeout, Logger: log})
			if err != nil {
				return runner.Usage(err)
			}
			ctx := cmd.Context()
			plan, err := r.Plan(ctx)
			if err != nil {
				return runner.Env(err)
			}
			plan.Write(g.stdout)
			if err := plan.Err(); err != nil {
				return runner.Usage(err)
			}
			if !yes && !confirm(g, "Install this into both clusters?") {
				return runner.Usage(errors.New("not confirmed: nothing was created (pass --yes to skip the question)"))
			}
			if err := r.Install(ctx); err != nil {
				return runner.Env(err)
			}
			defer func() {
				if keep {
					fmt.Fprintf(g.stderr, "kmt: --keep: leaving run %s installed; remove it with kmt abort --run-id %s\n", r.RunID(), r.RunID())
					return
				}
				uctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
				defer cancel()
				if res, err := r.Uninstall(uctx); err != nil {
					fmt.Fprintf(g.stderr, "kmt: uninstall: %v\n", err)
				} else if len(res.Remaining) > 0 {
					fmt.Fprintf(g.stderr, "kmt: %d objects remain: %v\n", len(res.Remaining), res.Remaining)
				}
			}()
			rep, err := r.Follow(ctx, func(p clusterrun.Progress) { fmt.Fprintln(g.stderr, p.Line()) })
			if err != nil {
				return runner.Env(err)
			}
			rep.Report.WriteSummary(g.stdout)
			switch rep.Verdict() {
			case report.Pass:
				return nil
			case report.Fail:
				return &exitError{runner.ExitFail}
			}
			return &exitError{runner.ExitEnv}
		},
	}
	k.add(run)
	f := run.Flags()
	f.StringVar(&chart, "chart", "", "scenario chart folder (default charts/<scenario>)")
	f.StringVar(&runID, "run-id", "", "run id (default generated)")
	f.BoolVar(&yes, "yes", false, "do not ask before installing")
	f.BoolVar(&keep, "keep", false, "leave everything installed at the end (remove later with kmt abort)")
	f.StringArrayVar(&sets, "set", nil, "chart value key=value for both clusters (repeatable), e.g. prometheus.url=http://...:9090")
	f.StringArrayVar(&srcSets, "source-set", nil, "chart value for the source cluster only (repeatable)")
	f.StringArrayVar(&tgtSets, "target-set", nil, "chart value for the target cluster only, e.g. kafka.sourceBootstrap=<source's external address> (repeatable)")
	f.DurationVar(&timeout, "timeout", 5*time.Minute, "bound on each Helm install/uninstall")
	root.AddCommand(run)
	return root
}

func newAbortCmd(g *globals) *cobra.Command {
	var k kubeFlags
	var runID string
	var force bool
	c := &cobra.Command{
		Use:   "abort --run-id ID",
		Short: "Remove every object of a run from both clusters, chaos included",
		Long: `Remove every object kmt created for a run (found by its labels) from both
clusters: Chaos Mesh objects first (also mid-fault), then the Helm releases,
then anything else labelled with the run. Objects held by a finalizer are
listed with the command that releases them; --remove-finalizers strips them
(only when Chaos Mesh's controller is gone, or the fault may stay injected).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			if runID == "" {
				return runner.Usage(errors.New("--run-id is required (it is printed when a run starts, and is the kmt.dev/run label)"))
			}
			src, tgt, err := k.sides()
			if err != nil {
				return err
			}
			res, err := clusterrun.Abort(cmd.Context(), []clusterrun.Side{src, tgt}, runID, clusterrun.AbortOptions{RemoveFinalizers: force, Logger: log})
			if err != nil {
				return runner.Env(err)
			}
			for _, d := range res.Deleted {
				fmt.Fprintf(g.stdout, "deleted   %v\n", d)
			}
			for _, rel := range res.Releases {
				fmt.Fprintf(g.stdout, "release   %s uninstalled\n", rel)
			}
			for _, n := range res.Notes {
				fmt.Fprintf(g.stdout, "note      %s\n", n)
			}
			if len(res.Remaining) > 0 {
				for _, r := range res.Remaining {
					fmt.Fprintf(g.stdout, "REMAINING %v\n", r)
				}
				return &exitError{runner.ExitEnv}
			}
			return nil
		},
	}
	k.add(c)
	c.Flags().StringVar(&runID, "run-id", "", "the run to remove")
	c.Flags().BoolVar(&force, "remove-finalizers", false, "strip finalizers of objects that are stuck")
	return c
}

func confirm(g *globals, q string) bool {
	fi, err := os.Stdin.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		fmt.Fprintln(g.stderr, "kmt: stdin is not a terminal; pass --yes to proceed")
		return false
	}
	fmt.Fprintf(g.stderr, "%s [y/N] ", q)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	return strings.EqualFold(strings.TrimSpace(line), "y") || strings.EqualFold(strings.TrimSpace(line), "yes")
}
