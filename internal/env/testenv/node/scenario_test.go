package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/health"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/kafkadist"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube/clusterrun"
	"github.com/kmt-dev/kafka-mirror-tester/internal/mirror"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// The scenario charts' Kafka side on the node: a source and a target Kafka
// (plain StatefulSets from the Kafka image) in namespace kafkaNS, named so
// the charts' default bootstrap addresses find them, and MirrorMaker 2
// between them; the charts go into one namespace per role.
const (
	kafkaNS       = "kafka"
	sourceNS      = "kmt-source"
	targetNS      = "kmt-target"
	sourceCtx     = "kmt-source"
	targetCtx     = "kmt-target"
	reportKey     = "report.json"
	scenarioTopic = "orders"
)

// mirrorPair is the running Kafka pair and mirror, with the broker pod IPs
// this machine reaches them at.
type mirrorPair struct {
	sourceIP, targetIP string
	kubeconfig         string // contexts sourceCtx and targetCtx
}

func (p mirrorPair) sourceBootstrap() string { return p.sourceIP + ":9092" }
func (p mirrorPair) targetBootstrap() string { return p.targetIP + ":9092" }

var (
	kafkaImageOnce sync.Once
	kafkaImageErr  error
)

// importKafkaImage imports the Kafka image into the node once per test
// binary (the Kafka libs are assembled from Maven Central when missing).
func importKafkaImage(t *testing.T, n *Node) {
	t.Helper()
	kafkaImageOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		dist, err := kafkadist.Ensure(ctx, kafkadist.Version, nil)
		if err != nil {
			kafkaImageErr = fmt.Errorf("kafka libs: %w", err)
			return
		}
		spec, err := KafkaImageSpec(DebianJRE, dist.Libs)
		if err != nil {
			kafkaImageErr = err
			return
		}
		kafkaImageErr = n.ImportImage(ctx, spec)
	})
	if kafkaImageErr != nil {
		t.Fatal(kafkaImageErr)
	}
}

// startMirrorPair deploys both Kafkas and MirrorMaker 2 (identity policy:
// the target topic keeps the source's name, as the catalogue scenarios
// expect) and the two namespaces and kube contexts the charts go into.
func startMirrorPair(t *testing.T, n *Node) mirrorPair {
	t.Helper()
	importKafkaImage(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cs := n.Clientset
	for _, ns := range []string{kafkaNS, sourceNS, targetNS} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []string{"source", "target"} {
		if err := DeployKafka(ctx, cs, kafkaNS, c); err != nil {
			t.Fatal(err)
		}
	}
	var p mirrorPair
	for c, ip := range map[string]*string{"source": &p.sourceIP, "target": &p.targetIP} {
		pod, err := n.WaitPodReady(ctx, kafkaNS, KafkaPod(c), 6*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		*ip = pod.Status.PodIP
	}
	// The scenario topic exists before MirrorMaker 2 starts, as it would
	// in front of a mirror that runs all the time: a topic created by the
	// first run's loadgen is found only at MirrorMaker 2's next refresh and
	// copied after its tasks are reassigned (measured on this node: 32-35 s
	// before the first record arrived, failing the baseline's p99 latency
	// assertion with 37 s).
	sc, err := scenarios.Read("baseline")
	if err != nil {
		t.Fatal(err)
	}
	adm, err := kadm.NewOptClient(kgo.SeedBrokers(p.sourceBootstrap()))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	var partitions int32
	for _, topic := range sc.Spec.Topology.Topics {
		if topic.Name == scenarioTopic {
			partitions = int32(topic.Partitions)
		}
	}
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, scenarioTopic); err != nil {
		t.Fatalf("creating topic %s (%d partitions) on the source at %s: %v", scenarioTopic, partitions, p.sourceBootstrap(), err)
	}
	props, err := mirror.MM2Properties(mirror.MM2Settings{
		SourceBootstrap: KafkaBootstrapService("source") + "." + kafkaNS + ".svc:9092",
		TargetBootstrap: KafkaBootstrapService("target") + "." + kafkaNS + ".svc:9092",
		Topics:          []string{scenarioTopic},
		Policy:          mirror.PolicyIdentity,
		SourceBrokers:   1,
		TargetBrokers:   1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := DeployMirrorMaker2(ctx, cs, kafkaNS, props); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitMirroredTopic(ctx, t, p, partitions)
	t.Logf("MirrorMaker 2 created %s on the target %s after its Deployment", scenarioTopic, time.Since(start).Round(time.Second))
	p.kubeconfig = twoContexts(t, n)
	return p
}

// waitMirroredTopic waits until MirrorMaker 2 has created the scenario
// topic on the target with the source's partitions: its source connector
// runs and has found the topic.
func waitMirroredTopic(ctx context.Context, t *testing.T, p mirrorPair, partitions int32) {
	t.Helper()
	adm, err := kadm.NewOptClient(kgo.SeedBrokers(p.targetBootstrap()))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	for {
		td, err := adm.ListTopics(ctx, scenarioTopic)
		if err == nil && td.Has(scenarioTopic) && len(td[scenarioTopic].Partitions) == int(partitions) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("MirrorMaker 2 never created %s with %d partitions on the target at %s: %v (last: %v)", scenarioTopic, partitions, p.targetBootstrap(), ctx.Err(), err)
		case <-time.After(2 * time.Second):
		}
	}
}

// twoContexts writes a kubeconfig with the node's admin credentials under
// two contexts, sourceCtx and targetCtx, whose namespaces are the roles'
// (kmt cluster run --namespace "" uses them): the one node plays both
// clusters.
func twoContexts(t *testing.T, n *Node) string {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(n.KubeconfigPath)
	if err != nil {
		t.Fatal(err)
	}
	base := cfg.Contexts[cfg.CurrentContext]
	if base == nil {
		t.Fatalf("kubeconfig %s has no current context", n.KubeconfigPath)
	}
	for name, ns := range map[string]string{sourceCtx: sourceNS, targetCtx: targetNS} {
		c := base.DeepCopy()
		c.Namespace = ns
		cfg.Contexts[name] = c
	}
	// In the node's folder: it outlives this subtest (a subtest's TempDir
	// would not) and goes with the node.
	path := filepath.Join(n.Dir, "kubeconfig-two-contexts")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// chartValues are the values every scenario chart needs on this node: the
// kmt image as imported, no prometheus-operator objects (no operator
// here), and the fault targets named after DeployKafka's and
// DeployMirrorMaker2's labels.
func chartValues(prometheusURL string) []string {
	sets := []string{
		"image.repository=" + strings.Split(KmtImage, ":")[0], "image.tag=" + strings.Split(KmtImage, ":")[1], "image.pullPolicy=Never",
		"monitoring.serviceMonitor=false", "monitoring.prometheusRule=false", "monitoring.dashboard=false",
		"prometheus.url=" + prometheusURL,
		"targets.source.namespace=" + kafkaNS, "targets.source.brokerSelector=kmt.dev/kafka-cluster=source", "targets.source.brokerPodPrefix=source-kafka-",
		"targets.target.namespace=" + kafkaNS, "targets.target.brokerSelector=kmt.dev/kafka-cluster=target", "targets.target.brokerPodPrefix=target-kafka-",
		"targets.mirror.namespace=" + kafkaNS, "targets.mirror.selector=app.kubernetes.io/name=" + MirrorMaker2Name, "targets.mirror.container=" + MirrorMaker2Name,
	}
	args := make([]string, 0, 2*len(sets))
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return args
}

// clusterRun is what one `kmt cluster run` did.
type clusterRun struct {
	stdout, stderr string
	exit           int
	// report is the validator's report.json, read from its ConfigMap while
	// the run was installed (kmt uninstalls it at the end).
	report *report.Report
}

// runClusterScenario runs `kmt cluster run <scenario>` on the node with
// run id run and the chart values, capturing the report ConfigMap the
// validator writes before kmt uninstalls it.
func runClusterScenario(t *testing.T, n *Node, p mirrorPair, scenario, run string, extra ...string) clusterRun {
	t.Helper()
	sc, err := scenarios.Read(scenario)
	if err != nil {
		t.Fatal(err)
	}
	if err := Refusal(sc, ProbeNetem()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	root, err := moduleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"cluster", "run", scenario, "--yes", "--run-id", run,
		"--kubeconfig", p.kubeconfig, "--source-context", sourceCtx, "--target-context", targetCtx, "--namespace", "",
		"--chart", filepath.Join(root, "charts", scenario)}, extra...)
	cmd := exec.CommandContext(ctx, n.KmtBinary(), args...)
	cmd.Dir = t.TempDir()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	got := make(chan *report.Report, 1)
	watchCtx, stopWatch := context.WithCancel(ctx)
	go func() { got <- watchReport(watchCtx, n, targetNS) }()
	err = cmd.Wait()
	stopWatch()
	r := clusterRun{stdout: stdout.String(), stderr: stderr.String(), report: <-got}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.exit = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("kmt cluster run %s: %v", scenario, err)
	}
	t.Logf("kmt cluster run %s (exit %d):\n%s\n--- stderr (tail):\n%s", scenario, r.exit, r.stdout, tail(r.stderr, 3000))
	return r
}

// watchReport watches ns for ConfigMaps holding a report until ctx ends,
// and returns the last report it saw (nil if none). A watch, not a poll:
// on a quiet machine the report ConfigMap lived less than a second between
// the validator writing it and kmt uninstalling the run (a 1 s poll missed
// it while kmt printed its verdict).
func watchReport(ctx context.Context, n *Node, ns string) *report.Report {
	var last *report.Report
	read := func(cm *corev1.ConfigMap) {
		if data, ok := cm.Data[reportKey]; ok {
			var r report.Report
			if json.Unmarshal([]byte(data), &r) == nil && r.Verdict != "" {
				last = &r
			}
		}
	}
	for ctx.Err() == nil {
		cms, err := n.Clientset.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		for i := range cms.Items {
			read(&cms.Items[i])
		}
		w, err := n.Clientset.CoreV1().ConfigMaps(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: cms.ResourceVersion})
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		for ev := range w.ResultChan() {
			if cm, ok := ev.Object.(*corev1.ConfigMap); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
				read(cm)
			}
		}
		w.Stop()
	}
	return last
}

// checkRunRemoved fails unless every object of run is gone within two
// minutes of kmt cluster run's end (Job pods are deleted in the background
// and take their grace period).
func checkRunRemoved(t *testing.T, n *Node, run string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		left := runObjects(ctx, t, n, run)
		if len(left) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("uninstall left objects of run %s:\n%s", run, strings.Join(left, "\n"))
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// runObjects lists every object of a run left in the cluster (found by its
// kmt.dev/run label), in the namespaces the charts use.
func runObjects(ctx context.Context, t *testing.T, n *Node, run string) []string {
	t.Helper()
	sel := metav1.ListOptions{LabelSelector: clusterrun.LabelRun + "=" + run}
	var left []string
	for _, ns := range []string{sourceNS, targetNS, kafkaNS} {
		cs := n.Clientset
		add := func(kind string, names []string, err error) {
			if err != nil {
				t.Errorf("listing %s in %s: %v", kind, ns, err)
			}
			for _, name := range names {
				left = append(left, kind+" "+ns+"/"+name)
			}
		}
		cms, err := cs.CoreV1().ConfigMaps(ns).List(ctx, sel)
		add("ConfigMap", names(cms, err), err)
		pods, err := cs.CoreV1().Pods(ns).List(ctx, sel)
		add("Pod", names(pods, err), err)
		jobs, err := cs.BatchV1().Jobs(ns).List(ctx, sel)
		add("Job", names(jobs, err), err)
		svcs, err := cs.CoreV1().Services(ns).List(ctx, sel)
		add("Service", names(svcs, err), err)
		sas, err := cs.CoreV1().ServiceAccounts(ns).List(ctx, sel)
		add("ServiceAccount", names(sas, err), err)
		roles, err := cs.RbacV1().Roles(ns).List(ctx, sel)
		add("Role", names(roles, err), err)
		secrets, err := cs.CoreV1().Secrets(ns).List(ctx, sel)
		add("Secret", names(secrets, err), err)
	}
	return left
}

// names are the names of a list's items.
func names(list runtime.Object, err error) []string {
	if err != nil {
		return nil
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return []string{"(" + err.Error() + ")"}
	}
	var out []string
	for _, i := range items {
		if m, err := meta.Accessor(i); err == nil {
			out = append(out, m.GetName())
		}
	}
	return out
}

// runLocally runs the same scenario with kmt's own processes on this
// machine against the same Kafkas and mirror (loadgen and validate, as the
// chart's pods run them), and returns the report. Each process runs in a
// HostCgroup weighted as the chart weighs its pod, so it waits for a CPU
// as the pod does (as plain host processes they measured a p99 latency
// 4-5 times the pods' on this shared machine: see HostCgroup). The
// validator serves its metrics at HostMetricsAddr, where the Prometheus in
// the cluster scrapes them, and evaluates the scenario's PromQL assertions
// there, as the in-cluster validator does.
func runLocally(t *testing.T, n *Node, p mirrorPair, scenario, run string) *report.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	loadCG, validateCG := hostCgroups(t, scenario, run)
	dir := t.TempDir()
	reportDir := filepath.Join(dir, "report")
	validate := validateCG.Command(ctx, n.KmtBinary(), "validate", "--scenario", scenario,
		"--source-bootstrap", p.sourceBootstrap(), "--target-bootstrap", p.targetBootstrap(),
		"--run-id", run, "--ledger-topic", "__kmt_ledger", "--report-dir", reportDir,
		"--metrics-addr", HostMetricsAddr, "--prometheus-url", prometheusFromHost(t, n))
	var vout bytes.Buffer
	validate.Stdout, validate.Stderr = &vout, &vout
	validate.Dir = dir
	if err := validate.Start(); err != nil {
		t.Fatal(err)
	}
	loadErr := runLocalLoad(ctx, t, n, p, scenario, run, dir, loadCG)
	if loadErr != nil {
		// Nothing to judge: the validator writes an incomplete report at
		// once instead of waiting for a load that will not come.
		_ = validate.Process.Signal(syscall.SIGTERM)
	}
	valErr := validate.Wait()
	t.Logf("local run %s: validate (%v):\n%s", run, valErr, tail(vout.String(), 3000))
	if loadErr != nil {
		t.Fatalf("the local loadgen could not run: %v", loadErr)
	}
	data, err := os.ReadFile(filepath.Join(reportDir, reportKey))
	if err != nil {
		t.Fatalf("local run wrote no report: %v", err)
	}
	var r report.Report
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

// inClusterLatencyRatio bounds the one difference between the two runs
// that remains with the local processes weighted as the pods (HostCgroup):
// the in-cluster run's latency is the higher, by up to this factor. On
// this shared 2-core machine (load average 10-70) the steady p99 measured
// 0.58, 0.67, 0.67, 0.73, 1.13 and 1.24 s in the cluster and 0.21, 0.27,
// 0.31 and 0.33 s locally, minutes apart on the same Kafkas and mirror
// (pairs of one run: 0.58/0.27, 0.67/0.21); per second the in-cluster
// p50 was 0.3-0.96 s for the first 13 s (its four kmt pods starting beside
// the load) and 0.01-0.5 s after, the local one 0.006-0.12 s throughout.
// As plain host processes the local p99 was 2.0-3.2 s, above the
// cluster's: that the direction alone refuses.
const inClusterLatencyRatio = 4.0

// compareVerdicts fails unless the in-cluster and local reports judge
// alike: the same assertions with the same outcomes, so the same verdict.
// The one exception is a latency assertion (histogram_quantile) judged
// differently where the in-cluster value is the higher by at most
// inClusterLatencyRatio; every other assertion must still agree, and
// neither run may be incomplete. The anomaly counts are compared exactly
// by the caller.
func compareVerdicts(in, local *report.Report, logf func(string, ...any)) error {
	mismatch := func(reason string) error {
		return fmt.Errorf("in-cluster verdict %s (%v), local verdict %s (%v): %s; the same scenario on the same Kafka must be judged alike", in.Verdict, in.Reasons, local.Verdict, local.Reasons, reason)
	}
	inVerdict, localVerdict := comparableVerdict(in), comparableVerdict(local)
	if inVerdict == report.Incomplete || localVerdict == report.Incomplete {
		return mismatch("a run is incomplete")
	}
	if len(in.Assertions) != len(local.Assertions) {
		return mismatch(fmt.Sprintf("%d assertions in the cluster, %d locally", len(in.Assertions), len(local.Assertions)))
	}
	localByName := map[string]report.Assertion{}
	for _, a := range local.Assertions {
		localByName[a.Name] = a
	}
	for _, a := range in.Assertions {
		l, ok := localByName[a.Name]
		switch {
		case !ok:
			return mismatch("assertion " + a.Name + " was not evaluated locally")
		case a.Pass == l.Pass:
		case inClusterSlower(a, l):
			logf("latency assertion %s judged differently, the in-cluster run the slower within %gx: in the cluster %v (pass %t), locally %v (pass %t)", a.Name, inClusterLatencyRatio, a.Observed, a.Pass, l.Observed, l.Pass)
		default:
			return mismatch(fmt.Sprintf("assertion %s: in the cluster %v (pass %t), locally %v (pass %t)", a.Name, a.Observed, a.Pass, l.Observed, l.Pass))
		}
	}
	if inVerdict != localVerdict {
		logf("verdicts differ only by a latency assertion the in-cluster run missed within %gx of the local value: in the cluster %s, locally %s", inClusterLatencyRatio, in.Verdict, local.Verdict)
	}
	return nil
}

// saturatedPrefix starts the reason of a failed timing assertion that kmt
// marked incomplete because kmt itself was saturated (internal/runner's
// judgeHarness), and saturatedWhy the reason it adds to the report.
const (
	saturatedPrefix = "incomplete (kmt itself was saturated"
	saturatedWhy    = "kmt itself was saturated: "
)

// comparableVerdict is r's verdict for the comparison. A run that failed
// only on timing assertions while kmt itself was saturated is reported
// incomplete (judgeHarness: its latency measured kmt's queueing too); it
// is compared as the failure it was, assertion by assertion. Any other
// incomplete run (a load that did not finish, a drain cut short, an
// assertion not evaluated) stays incomplete and cannot be compared.
func comparableVerdict(r *report.Report) string {
	if r.Verdict != report.Incomplete || r.Harness == nil || !r.Harness.Saturated {
		return r.Verdict
	}
	saturated := map[string]bool{}
	for _, a := range r.Assertions {
		if !a.Pass && strings.HasPrefix(a.Reason, saturatedPrefix) {
			saturated["assertion "+a.Name+" failed: "] = true
		}
	}
	if len(saturated) == 0 {
		return r.Verdict
	}
	for _, why := range r.Reasons {
		name, _, found := strings.Cut(why, "failed: ")
		if !strings.HasPrefix(why, saturatedWhy) && !(found && saturated[name+"failed: "]) {
			return r.Verdict
		}
	}
	return report.Fail
}

// inClusterSlower says in and local are one latency assertion whose
// in-cluster value is at least the local one and at most
// inClusterLatencyRatio times it.
func inClusterSlower(in, local report.Assertion) bool {
	if !strings.Contains(in.Expr, "histogram_quantile") || len(in.Observed) != 1 || len(local.Observed) != 1 || local.Observed[0] <= 0 {
		return false
	}
	return in.Observed[0] >= local.Observed[0] && in.Observed[0] <= inClusterLatencyRatio*local.Observed[0]
}

// hostCgroups creates the HostCgroups of a local run of scenario: one for
// the loadgen and one for the validator, each with the CPU request the
// scenario's chart gives that pod (chartCPURequests), removed when the
// test ends.
func hostCgroups(t *testing.T, scenario, run string) (loadgen, validator *HostCgroup) {
	t.Helper()
	req, err := chartCPURequests(scenario)
	if err != nil {
		t.Fatal(err)
	}
	cgroup := func(component string) *HostCgroup {
		cg, err := NewHostCgroup("kmt-local-"+run+"-"+component, req[component])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := cg.Remove(); err != nil {
				t.Error(err)
			}
		})
		return cg
	}
	return cgroup("loadgen"), cgroup("validator")
}

// chartCPURequests reads the CPU requests (millicores) of the loadgen and
// validator pods from the scenario chart's values.yaml
// (<component>.resources.requests.cpu).
func chartCPURequests(scenario string) (map[string]int64, error) {
	root, err := moduleRoot(context.Background())
	if err != nil {
		return nil, err
	}
	path := filepath.Join(root, "charts", scenario, "values.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	type pod struct {
		Resources corev1.ResourceRequirements `json:"resources"`
	}
	var values struct {
		Loadgen   pod `json:"loadgen"`
		Validator pod `json:"validator"`
	}
	if err := yaml.Unmarshal(data, &values); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	out := map[string]int64{}
	for component, p := range map[string]pod{"loadgen": values.Loadgen, "validator": values.Validator} {
		cpu, ok := p.Resources.Requests[corev1.ResourceCPU]
		if !ok {
			return nil, fmt.Errorf("%s gives %s no CPU request (%s.resources.requests.cpu)", path, component, component)
		}
		out[component] = cpu.MilliValue()
	}
	return out, nil
}

// TestChartCPURequests: the baseline chart's loadgen and validator request
// 100m each (values.yaml), which a local run's HostCgroups get as
// cpu.shares 102, as the kubelet gives their pods.
func TestChartCPURequests(t *testing.T) {
	req, err := chartCPURequests("baseline")
	if err != nil {
		t.Fatal(err)
	}
	if req["loadgen"] != 100 || req["validator"] != 100 {
		t.Errorf("CPU requests %v, want loadgen 100 and validator 100 millicores", req)
	}
	if s := milliCPUToShares(req["validator"]); s != 102 {
		t.Errorf("100m gives cpu.shares %d, want 102 (the kubelet's MilliCPUToShares)", s)
	}
	if w := sharesToWeight(102); w != 4 {
		t.Errorf("cpu.shares 102 gives cpu.weight %d, want 4 (runc's conversion)", w)
	}
}

// runLocalLoad runs `kmt loadgen` for run on this machine, again (up to
// three times) when it could not start (exit 3 before producing: on this
// shared 2-core machine its 10 s metadata deadline to the source was
// missed once while the validator beside it had connected).
func runLocalLoad(ctx context.Context, t *testing.T, n *Node, p mirrorPair, scenario, run, dir string, cg *HostCgroup) error {
	t.Helper()
	var err error
	for attempt := 1; attempt <= 3; attempt++ {
		load := cg.Command(ctx, n.KmtBinary(), "loadgen", "--scenario", scenario,
			"--bootstrap", p.sourceBootstrap(), "--run-id", run, "--ledger-topic", "__kmt_ledger", "--create-topics")
		var out bytes.Buffer
		load.Stdout, load.Stderr, load.Dir = &out, &out, dir
		err = load.Run()
		t.Logf("local run %s: loadgen attempt %d (%v):\n%s", run, attempt, err, tail(out.String(), 2000))
		var ee *exec.ExitError
		if err == nil || !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(out.String(), `"sent":0,`) {
			return err
		}
		time.Sleep(5 * time.Second)
	}
	return err
}

// testBaseline runs the baseline chart end to end with `kmt cluster run`
// (loadgen pod producing to the source Kafka, MirrorMaker 2 copying, the
// validator Job judging, with the scenario's PromQL assertions evaluated
// by the Prometheus in the cluster at promURL, and writing the report
// ConfigMap), checks the printed verdict, that uninstall left nothing of
// the run, and that the same scenario run by local processes on the same
// Kafkas reaches the same verdict with the same anomaly counts (and acked
// counts the load rate explains).
func testBaseline(t *testing.T, n *Node, p mirrorPair, promURL string) {
	run := "node-baseline-" + time.Now().UTC().Format("150405")
	warmUp(t, n, p, run+"-warmup")
	start := time.Now()
	res := runClusterScenario(t, n, p, "baseline", run, chartValues(promURL)...)
	t.Logf("baseline in the cluster: %s", time.Since(start).Round(time.Second))
	if res.report == nil {
		t.Fatalf("the validator wrote no report ConfigMap in %s", targetNS)
	}
	in := res.report
	checkAssertionsEvaluated(t, in)
	if !strings.Contains(res.stdout, "== kmt verdict: "+strings.ToUpper(in.Verdict)+" ==") {
		t.Errorf("kmt cluster run did not print the verdict %q of the report ConfigMap", in.Verdict)
	}
	want := 3
	switch in.Verdict {
	case report.Pass:
		want = 0
	case report.Fail:
		want = 1
	}
	if res.exit != want {
		t.Errorf("kmt cluster run exited %d with verdict %s, want %d", res.exit, in.Verdict, want)
	}
	checkRunRemoved(t, n, run)

	start = time.Now()
	local := runLocally(t, n, p, "baseline", run+"-local")
	t.Logf("baseline run locally: %s", time.Since(start).Round(time.Second))
	t.Logf("verdicts: in-cluster %s %+v; local %s %+v", in.Verdict, in.Counts, local.Verdict, local.Counts)
	logLatency(t, "in-cluster", in)
	logLatency(t, "local", local)
	if err := compareVerdicts(in, local, t.Logf); err != nil {
		t.Error(err)
	}
	ic, lc := in.Counts, local.Counts
	for name, pair := range map[string][2]uint64{
		"lost": {ic.Lost, lc.Lost}, "duplicate": {ic.Duplicate, lc.Duplicate}, "reordered": {ic.Reordered, lc.Reordered},
		"corrupt": {ic.Corrupt, lc.Corrupt}, "source_lost": {ic.SourceLost, lc.SourceLost}, "unseen": {ic.Unseen, lc.Unseen},
	} {
		if pair[0] != pair[1] {
			t.Errorf("%s: in-cluster %d, local %d", name, pair[0], pair[1])
		}
	}
	// Both loads run the scenario's rate for its duration: the acked counts
	// may differ from rate x duration by what pacing on a busy machine
	// explains (10%), not more.
	sc, err := scenarios.Read("baseline")
	if err != nil {
		t.Fatal(err)
	}
	target := sc.Spec.Load.Rate * time.Duration(sc.Spec.Load.Duration).Seconds()
	for side, c := range map[string]report.Counts{"in-cluster": ic, "local": lc} {
		if c.Acked == 0 || c.Received != c.Acked {
			t.Errorf("%s: acked %d, received %d: want every acked record received", side, c.Acked, c.Received)
		}
		if float64(c.Acked) < 0.9*target || float64(c.Acked) > 1.1*target {
			t.Errorf("%s: acked %d, the load's rate x duration is %.0f (within 10%%)", side, c.Acked, target)
		}
	}
}

// warmUp sends 30 s of the baseline's load through the pair and waits
// until MirrorMaker 2 has copied it, so the runs compared after it meet
// JVMs that have already compiled their hot paths, as a mirror that runs
// all the time has (the in-cluster run, first through freshly started
// JVMs, was the slower by up to 17 times, most in its first 20 s). The
// validators judge their own run ids and count these records as other
// runs.
func warmUp(t *testing.T, n *Node, p mirrorPair, run string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	out, err := exec.CommandContext(ctx, n.KmtBinary(), "loadgen", "--scenario", "baseline", "--duration", "30s",
		"--bootstrap", p.sourceBootstrap(), "--run-id", run, "--ledger-topic", "__kmt_ledger").CombinedOutput()
	if err != nil {
		t.Fatalf("warm-up load %s: %v\n%s", run, err, tail(string(out), 2000))
	}
	ends := func(bootstrap string) int64 {
		adm, err := kadm.NewOptClient(kgo.SeedBrokers(bootstrap))
		if err != nil {
			t.Fatal(err)
		}
		defer adm.Close()
		o, err := adm.ListEndOffsets(ctx, scenarioTopic)
		if err != nil {
			return -1
		}
		var sum int64
		o.Each(func(e kadm.ListedOffset) { sum += e.Offset })
		return sum
	}
	want := ends(p.sourceBootstrap())
	for ends(p.targetBootstrap()) < want {
		select {
		case <-ctx.Done():
			t.Fatalf("MirrorMaker 2 did not copy the warm-up load (%d records on the source) to the target: %v", want, ctx.Err())
		case <-time.After(time.Second):
		}
	}
	t.Logf("warm-up: 30 s of load copied in %s", time.Since(start).Round(time.Second))
}

// logLatency logs what a run's latency was made of: the validator's own
// quantiles, its harness health, and per second the arrivals, latency,
// produced and acked records and the lag, so two runs' latencies can be
// compared second by second.
func logLatency(t *testing.T, side string, r *report.Report) {
	t.Helper()
	l := r.LatencySeconds
	var b strings.Builder
	fmt.Fprintf(&b, "%s latency: p50 %.3f p95 %.3f p99 %.3f max %.3f (%d records); load %+v\n", side, l.P50, l.P95, l.P99, l.Max, l.Count, r.Load)
	if r.Harness != nil {
		fmt.Fprintf(&b, "  harness: %+v\n", *r.Harness)
	}
	for _, a := range r.Assertions {
		fmt.Fprintf(&b, "  assertion %s: observed %v pass %t\n", a.Name, a.Observed, a.Pass)
	}
	for _, s := range r.Timeline {
		fmt.Fprintf(&b, "  t=%3d arr %5d p50 %.3f p99 %.3f max %.3f prod %5d acked %5d lag %6d\n", s.T, s.Arrivals, s.LatencyP50, s.LatencyP99, s.LatencyMax, s.Produced, s.Acked, s.Lag)
	}
	t.Log(b.String())
}

// TestCompareVerdicts: reports that judge every assertion alike are
// alike; a latency assertion judged differently is accepted only where the
// in-cluster value is the higher within inClusterLatencyRatio (measured
// 1.24 s against 0.31 s), not where the local one is (the 3.02 s plain
// host processes measured against 0.49 s) nor beyond the ratio; any other
// assertion judged differently, or an incomplete run, is a mismatch.
func TestCompareVerdicts(t *testing.T) {
	rep := func(verdict string, p99 float64, lossPass bool) *report.Report {
		return &report.Report{Verdict: verdict, Assertions: []report.Assertion{
			{Name: "no-loss", Expr: `sum(kmt_validator_missing_records{category="lost"})`, Threshold: []float64{0}, Observed: []float64{0}, Pass: lossPass},
			{Name: "p99-latency-steady", Expr: `histogram_quantile(0.99, sum by (le) (increase(kmt_validator_latency_seconds_bucket[55s])))`,
				Threshold: []float64{0.5}, Observed: []float64{p99}, Pass: p99 < 0.5},
		}}
	}
	// saturated is judgeHarness's relabelling of a run that failed only on
	// its latency assertion while kmt itself was saturated.
	saturated := func(r *report.Report) *report.Report {
		a := &r.Assertions[1]
		r.Reasons = []string{"assertion " + a.Name + " failed: observed 0.67, expected < 0.5", saturatedWhy + "kmt's validator fell 5.3 s behind the target log (limit 1.0 s)"}
		a.Reason = saturatedPrefix + ": ...): observed 0.67, expected < 0.5"
		r.Verdict, r.Harness = report.Incomplete, &health.Report{Assessment: health.Assessment{Saturated: true}}
		return r
	}
	withReason := func(r *report.Report, why string) *report.Report {
		r.Reasons = append(r.Reasons, why)
		return r
	}
	for _, tc := range []struct {
		name      string
		in, local *report.Report
		alike     bool
	}{
		{"same verdict", rep(report.Pass, 0.3, true), rep(report.Pass, 0.4, true), true},
		{"both fail on latency far apart", rep(report.Fail, 0.73, true), rep(report.Fail, 3.17, true), true},
		{"in-cluster latency higher within the ratio", rep(report.Fail, 1.24, true), rep(report.Pass, 0.31, true), true},
		{"in-cluster latency higher beyond the ratio", rep(report.Fail, 1.3, true), rep(report.Pass, 0.3, true), false},
		{"local latency higher", rep(report.Pass, 0.49, true), rep(report.Fail, 3.02, true), false},
		{"local latency slightly higher", rep(report.Pass, 0.45, true), rep(report.Fail, 0.55, true), false},
		{"loss differs", rep(report.Pass, 0.3, true), rep(report.Fail, 0.3, false), false},
		{"loss and latency differ", rep(report.Pass, 0.3, true), rep(report.Fail, 0.6, false), false},
		{"local incomplete", rep(report.Pass, 0.3, true), rep(report.Incomplete, 0.3, true), false},
		{"in-cluster incomplete only by kmt's saturation", saturated(rep(report.Fail, 0.67, true)), rep(report.Pass, 0.21, true), true},
		{"in-cluster incomplete by saturation and more", withReason(saturated(rep(report.Fail, 0.67, true)), "the load did not finish"), rep(report.Pass, 0.21, true), false},
		{"in-cluster saturated, local latency higher", saturated(rep(report.Fail, 0.67, true)), rep(report.Fail, 3.0, true), true},
	} {
		err := compareVerdicts(tc.in, tc.local, t.Logf)
		if (err == nil) != tc.alike {
			t.Errorf("%s: compareVerdicts = %v, want alike %t", tc.name, err, tc.alike)
		}
	}
}
