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

// TestNodeRunsPods starts the node, runs the kmt image twice to
// completion — `kmt list` (exit 0, the scenario catalogue in its log, read
// through the API server) and `kmt no-such-command` (exit 2, kmt's bad-usage
// code, as the pod's terminated state) — and a Kafka broker from the Kafka
// image, then tears the node down and checks that nothing is left.
func TestNodeRunsPods(t *testing.T) {
	needNode(t)
	n, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatalf("starting the node: %v", err)
	}
	dir := n.Dir
	t.Cleanup(func() { _ = n.Stop() })
	t.Logf("node start: %s", n.Took.Round(time.Millisecond))

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

	t.Run("services and dns", testServicesAndDNS)
	t.Run("kafka broker", func(t *testing.T) { testKafkaBroker(t, n) })
	var pair *mirrorPair
	t.Run("kafka pair and mirrormaker2", func(t *testing.T) {
		p := startMirrorPair(t, n)
		pair = &p
	})
	if pair != nil {
		t.Run("baseline chart", func(t *testing.T) { testBaseline(t, n, *pair) })
		promURL := ""
		t.Run("prometheus", func(t *testing.T) { promURL = startPrometheus(t, n) })
		if promURL != "" {
			t.Run("baseline chart with prometheus", func(t *testing.T) { testBaselineWithPrometheus(t, n, *pair, promURL) })
		}
		t.Run("mirror pod kill", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
			defer cancel()
			if err := n.StartChaosMesh(ctx); err != nil {
				t.Fatalf("chaos mesh: %v", err)
			}
			testMirrorPodKill(t, n, *pair, promURL)
		})
	}

	if err := n.Stop(); err != nil {
		t.Errorf("tearing down: %v", err)
	}
	if left := Leftovers(dir); len(left) > 0 {
		t.Errorf("the node left behind:\n%s", strings.Join(left, "\n"))
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
