package node

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// EnvNodeTest turns on the tests that start a real node (minutes on a cold
// machine; `make test-node` sets it). Without it they skip and say so.
const EnvNodeTest = "KMT_TEST_NODE"

func needNode(t *testing.T) {
	t.Helper()
	if os.Getenv(EnvNodeTest) == "" {
		t.Skipf("starts a real Kubernetes node (containerd, kubelet, control plane): set %s=1 or run `make test-node`", EnvNodeTest)
	}
	if os.Geteuid() != 0 {
		t.Skip("a kubelet and containerd need root")
	}
}

// TestNodeRunsPods starts the node and runs, in order (each part a
// subtest; iterate on one with e.g. -run 'TestNodeRunsPods/(pair|prometheus|baseline)'
// since a part needs the parts it builds on):
//
//  1. the kmt image twice to completion: `kmt list` (exit 0, the scenario
//     catalogue in its log, read through the API server) and
//     `kmt no-such-command` (exit 2, kmt's bad-usage code);
//  2. dns: Services and the cluster DNS;
//  3. broker: a Kafka broker pod produced to and consumed from;
//  4. pair, prometheus, baseline: both Kafkas and MirrorMaker 2, the
//     Prometheus in the cluster, and the baseline chart end to end,
//     compared with the same scenario run locally;
//  5. wan: the WAN stories, refused with this node's reasons;
//     podkill: the mirror-hard-kill chart, Chaos Mesh's chaos-daemon
//     killing the mirror's container with SIGKILL.
//
// Then it tears the node down and checks that nothing is left, also when
// a part failed (the check runs in the test's cleanup).
func TestNodeRunsPods(t *testing.T) {
	needNode(t)
	suite := time.Now()
	n, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatalf("starting the node: %v", err)
	}
	dir := n.Dir
	t.Cleanup(func() {
		stop := time.Now()
		if err := n.Stop(); err != nil {
			t.Errorf("tearing down: %v", err)
		}
		if left := Leftovers(dir); len(left) > 0 {
			t.Errorf("the node left behind:\n%s", strings.Join(left, "\n"))
		}
		t.Logf("teardown %s; suite %s", time.Since(stop).Round(time.Millisecond), time.Since(suite).Round(time.Second))
	})
	t.Logf("node start: %s (of which waiting for another node: %s)", n.Took.Round(time.Millisecond), n.LockWait.Round(time.Millisecond))
	testKmtPods(t, n)

	part := func(name string, f func(t *testing.T)) {
		start, ran := time.Now(), false
		ok := t.Run(name, func(t *testing.T) { ran = true; f(t) })
		if ran {
			t.Logf("part %s: %s (passed: %t)", name, time.Since(start).Round(time.Second), ok)
		}
	}
	part("dns", testServicesAndDNS)
	part("broker", func(t *testing.T) { testKafkaBroker(t, n) })
	var pair *mirrorPair
	part("pair", func(t *testing.T) {
		p := startMirrorPair(t, n)
		pair = &p
	})
	promURL := ""
	part("prometheus", func(t *testing.T) { promURL = startPrometheus(t, n) })
	if pair != nil && promURL != "" {
		part("baseline", func(t *testing.T) { testBaseline(t, n, *pair, promURL) })
	}
	part("wan", testWANRefused)
	if pair != nil && promURL != "" {
		part("podkill", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
			defer cancel()
			if err := n.StartChaosMesh(ctx); err != nil {
				t.Fatalf("chaos mesh: %v", err)
			}
			testMirrorPodKill(t, n, *pair, promURL)
		})
	}
}

// testKmtPods runs the kmt image to completion twice: `kmt list` (exit 0,
// the scenario catalogue in its log, read through the API server) and
// `kmt no-such-command` (exit 2, kmt's bad-usage code, as the pod's
// terminated state).
func testKmtPods(t *testing.T, n *Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	podStart := time.Now()
	pod := runPod(ctx, t, n.Clientset, "kmt-list", "list")
	if pod.Status.Phase != corev1.PodSucceeded {
		t.Fatalf("pod kmt-list ended %s, want Succeeded: %s", pod.Status.Phase, describe(pod))
	}
	logs, err := n.Clientset.CoreV1().Pods("default").GetLogs("kmt-list", &corev1.PodLogOptions{}).DoRaw(ctx)
	if err != nil {
		t.Fatalf("reading kmt-list's log through the API server: %v", err)
	}
	for _, scenario := range []string{"baseline", "bad-day"} {
		if !strings.Contains(string(logs), scenario) {
			t.Errorf("kmt list's log does not name scenario %q:\n%s", scenario, logs)
		}
	}
	t.Logf("pod kmt-list: created to Succeeded and log read in %s", time.Since(podStart).Round(time.Millisecond))

	bad := runPod(ctx, t, n.Clientset, "kmt-bad-usage", "no-such-command")
	if bad.Status.Phase != corev1.PodFailed || exitCode(bad) != 2 {
		t.Errorf("pod kmt-bad-usage ended %s with exit code %d, want Failed with 2 (bad usage): %s", bad.Status.Phase, exitCode(bad), describe(bad))
	}
}

// testWANRefused: each WAN story is refused on this node with the reason
// (Refusal), which the test log shows; the stories that do run here are
// not.
func testWANRefused(t *testing.T) {
	netem := ProbeNetem()
	for _, name := range []string{"wan-latency", "wan-bandwidth", "wan-partition"} {
		sc, err := scenarios.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		err = Refusal(sc, netem)
		if err == nil {
			t.Errorf("%s would run on this node, whose chaos-daemon image has no tc or iptables to shape traffic", name)
			continue
		}
		t.Logf("refused: %v", err)
	}
}

// runPod runs the kmt image with args once and returns the pod when it has
// ended (Succeeded or Failed).
func runPod(ctx context.Context, t *testing.T, cs kubernetes.Interface, name string, args ...string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name:            "kmt",
				Image:           KmtImage,
				ImagePullPolicy: corev1.PullNever,
				Args:            args,
			}},
		},
	}
	if _, err := cs.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
	for {
		got, err := cs.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err == nil && (got.Status.Phase == corev1.PodSucceeded || got.Status.Phase == corev1.PodFailed) {
			return got
		}
		select {
		case <-ctx.Done():
			t.Fatalf("pod %s did not finish: %v (last: %v, %s)", name, ctx.Err(), err, describe(got))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func exitCode(p *corev1.Pod) int32 {
	for _, s := range p.Status.ContainerStatuses {
		if s.State.Terminated != nil {
			return s.State.Terminated.ExitCode
		}
	}
	return -1
}
