package node

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube/clusterrun"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// testMirrorPodKill runs the mirror-hard-kill chart: its Workflow,
// executed by Chaos Mesh's controller-manager, has the chaos-daemon kill
// the MirrorMaker 2 container mid-load with SIGKILL (PodChaos
// container-kill: a containerd task kill, no SIGTERM first); the kubelet
// restarts the container in the same pod, and MirrorMaker 2 copies on
// from the source offsets it last committed, so what it copied after that
// commit is copied twice. The story: the container ended by SIGKILL (exit
// 137), nothing lost, duplicates (the at-least-once tail), and every
// record on the target recounted by an independent consumer (kcat reading
// the target topic, counting the run's records and repeated (epoch,
// topic, stream, seq)) equal to the validator's received and duplicate
// counts. With promURL the chart's PromQL assertions are evaluated by
// that Prometheus.
//
// Why container-kill: the chart used to map mirror-kill to PodChaos
// pod-kill with grace period 0, and on a real node the kubelet stops a
// deleted pod's container with SIGTERM and SIGKILL only 2 s later
// (containerd's log: "StopContainer ... with timeout 2 (s)"); MirrorMaker
// 2 committed its source offsets in those 2 s, and two real runs copied
// nothing twice (90000 and 89988 acked, as many received, 0 duplicates):
// not the hard kill the story names.
func testMirrorPodKill(t *testing.T, n *Node, p mirrorPair, promURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	for _, ns := range []string{kafkaNS, targetNS} {
		patch := fmt.Sprintf(`{"metadata":{"labels":{%q:"allowed"}}}`, clusterrun.LabelChaos)
		if _, err := n.Clientset.CoreV1().Namespaces().Patch(ctx, ns, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	before := mirrorContainers(ctx, t, n)
	if len(before) != 1 {
		t.Fatalf("%d running MirrorMaker 2 pods before the run, want 1: %v", len(before), before)
	}
	run := "node-kill-" + time.Now().UTC().Format("150405")
	res := runClusterScenario(t, n, p, "mirror-hard-kill", run, chartValues(promURL)...)
	if res.report == nil {
		t.Fatalf("the validator wrote no report ConfigMap in %s", targetNS)
	}
	r := res.report
	checkRunRemoved(t, n, run)
	checkKilledBySIGKILL(t, before, mirrorContainers(ctx, t, n))
	var killed bool
	for _, f := range r.Faults {
		t.Logf("fault %s (%s): %s .. %s actions %v error %q", f.Name, f.Kind, f.Start, f.End, f.Actions, f.Error)
		if f.Name == "kill-mirror" && f.Error == "" {
			killed = true
		}
	}
	if !killed {
		t.Errorf("the report records no performed kill-mirror fault: %+v", r.Faults)
	}
	c := r.Counts
	t.Logf("acked %d, received %d, duplicates %d, lost %d after the SIGKILL", c.Acked, c.Received, c.Duplicate, c.Lost)
	if c.Lost != 0 || c.SourceLost != 0 || c.Corrupt != 0 {
		t.Errorf("lost %d, source_lost %d, corrupt %d: an at-least-once mirror killed mid-load must lose nothing", c.Lost, c.SourceLost, c.Corrupt)
	}
	if c.Duplicate == 0 {
		t.Errorf("no duplicates after a SIGKILL with %d records acked: MirrorMaker 2 re-copies from its last committed offsets, so a hard kill mid-load leaves a tail to copy twice (was the kill graceful after all?)", c.Acked)
	}
	total, distinct := kcatRecount(ctx, t, p, scenarioTopic, run)
	t.Logf("kcat recount of %s on the target: %d records of run %s, %d distinct, %d duplicates; validator: received %d, duplicate %d",
		scenarioTopic, total, run, distinct, total-distinct, c.Received, c.Duplicate)
	if uint64(total-distinct) != c.Duplicate || uint64(total) != c.Received {
		t.Errorf("kcat counts %d records, %d duplicates; the validator %d received, %d duplicates: they must agree exactly", total, total-distinct, c.Received, c.Duplicate)
	}
	if r.Verdict != report.Pass || res.exit != 0 {
		t.Errorf("verdict %s (exit %d), want pass: duplicates are allowed here, loss is not (%v)", r.Verdict, res.exit, r.Reasons)
	}
	if promURL != "" {
		checkAssertionsEvaluated(t, r)
	}
}

// mirrorContainer is the MirrorMaker 2 container of a running pod.
type mirrorContainer struct {
	restarts int32
	last     *corev1.ContainerStateTerminated
}

// mirrorContainers are the MirrorMaker 2 containers of the running pods
// now, by pod UID.
func mirrorContainers(ctx context.Context, t *testing.T, n *Node) map[types.UID]mirrorContainer {
	t.Helper()
	pods, err := n.Clientset.CoreV1().Pods(kafkaNS).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=" + MirrorMaker2Name})
	if err != nil {
		t.Fatal(err)
	}
	out := map[types.UID]mirrorContainer{}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning {
			continue
		}
		for _, cs := range p.Status.ContainerStatuses {
			if cs.Name == MirrorMaker2Name {
				out[p.UID] = mirrorContainer{restarts: cs.RestartCount, last: cs.LastTerminationState.Terminated}
			}
		}
	}
	return out
}

// checkKilledBySIGKILL: the pod is the same (container-kill kills the
// container, not the pod), its MirrorMaker 2 container restarted once,
// and the run it ended exited 137 (128 + SIGKILL) and not OOMKilled; a
// JVM stopped by SIGTERM exits 143.
func checkKilledBySIGKILL(t *testing.T, before, after map[types.UID]mirrorContainer) {
	t.Helper()
	for uid, b := range before {
		a, ok := after[uid]
		if !ok {
			t.Errorf("MirrorMaker 2 pod %s is gone: the fault replaced the pod instead of killing its container (%v)", uid, after)
			continue
		}
		if a.restarts != b.restarts+1 || a.last == nil {
			t.Errorf("MirrorMaker 2 container of pod %s restarted %d times during the run (last termination %+v), want once", uid, a.restarts-b.restarts, a.last)
			continue
		}
		t.Logf("MirrorMaker 2 container of pod %s: exit code %d, reason %s, at %s", uid, a.last.ExitCode, a.last.Reason, a.last.FinishedAt.UTC().Format(time.RFC3339))
		if a.last.ExitCode != 137 || a.last.Reason == "OOMKilled" {
			t.Errorf("MirrorMaker 2 container ended with exit code %d (%s), want 137: killed by SIGKILL, not stopped with SIGTERM (143) or out of memory", a.last.ExitCode, a.last.Reason)
		}
	}
}

// recordIdentity finds a kmt record's run, epoch, topic, stream and
// sequence in its value (the text header of wire format v3, which the
// loadgen writes: "kmt3 c=<crc> r=<run> e=<epoch> o=<topic> s=<stream> q=<seq> ...").
var recordIdentity = regexp.MustCompile(`^kmt3 c=[0-9a-f]{8} r=(\S+) e=(\d+) o=(\S+) s=(\d+) q=(\d+) `)

// kcatRecount reads every record of topic on the target with kcat (an
// independent consumer: librdkafka, not kmt's readers) and counts the
// records of run and how many distinct (epoch, topic, stream, seq) they
// hold.
func kcatRecount(ctx context.Context, t *testing.T, p mirrorPair, topic, run string) (total, distinct int) {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat not on PATH (scripts/install-deps.sh installs Debian's kcat): %v", err)
	}
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, kcat, "-C", "-b", p.targetBootstrap(), "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%s\n")
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat -C -t %s: %v\n%s", topic, err, errb.String())
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(&out)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		m := recordIdentity.FindStringSubmatch(sc.Text())
		if m == nil || m[1] != run {
			continue
		}
		total++
		seen[strings.Join(m[2:], " ")] = true
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total, len(seen)
}

// checkAssertionsEvaluated fails unless every assertion of the report was
// evaluated (an observed value from Prometheus).
func checkAssertionsEvaluated(t *testing.T, r *report.Report) {
	t.Helper()
	if len(r.Assertions) == 0 {
		t.Error("the report has no assertions: Prometheus evaluated nothing")
	}
	for _, a := range r.Assertions {
		t.Logf("assertion %s: %s %s %v observed %v pass %t %s", a.Name, a.Expr, a.Op, a.Threshold, a.Observed, a.Pass, a.Reason)
		if len(a.Observed) == 0 {
			t.Errorf("assertion %s has no observed value (%s): Prometheus did not evaluate it", a.Name, a.Reason)
		}
	}
}

// TestRecordIdentityReadsTheWireFormat: the kcat recount's pattern finds
// run, epoch, topic, stream and sequence in what the loadgen writes
// (wire.Append, the current version), so a format change cannot make the
// recount silently count nothing.
func TestRecordIdentityReadsTheWireFormat(t *testing.T) {
	v := wire.Append(nil, wire.Record{RunID: "node-kill-1", Topic: "orders", Epoch: 3, Stream: 7, Seq: 1234, ProducedAt: time.Unix(1764049200, 0), Padding: 20})
	m := recordIdentity.FindStringSubmatch(string(v))
	if m == nil {
		t.Fatalf("no match in %q", v)
	}
	if got := strings.Join(m[1:], " "); got != "node-kill-1 3 orders 7 1234" {
		t.Errorf("read %q from %q, want run, epoch, topic, stream, seq = node-kill-1 3 orders 7 1234", got, v)
	}
}
