package node

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const monitoringNS = "monitoring"

// startPrometheus runs Debian's Prometheus in the cluster, scraping the
// charts' namespaces, and returns the URL the validator reaches it at.
func startPrometheus(t *testing.T, n *Node) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	spec, err := PrometheusImageSpec()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.ImportImage(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Clientset.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: monitoringNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := DeployPrometheus(ctx, n.Clientset, monitoringNS, []string{sourceNS, targetNS}); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitDeploymentReady(ctx, monitoringNS, "prometheus", 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	return PrometheusURL(monitoringNS)
}

// prometheusFromHost is the Prometheus of startPrometheus as this machine
// reaches it: at its pod's IP (the machine does not use the cluster DNS).
func prometheusFromHost(t *testing.T, n *Node) string {
	t.Helper()
	pods, err := n.Clientset.CoreV1().Pods(monitoringNS).List(context.Background(), metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=prometheus"})
	if err != nil || len(pods.Items) != 1 || pods.Items[0].Status.PodIP == "" {
		t.Fatalf("finding the Prometheus pod in %s: %v (%d pods)", monitoringNS, err, len(pods.Items))
	}
	return "http://" + pods.Items[0].Status.PodIP + ":9090"
}

// TestPrometheusConfigLoads checks the scrape configuration with Debian's
// promtool, the same 2.42 build the image carries (it rejects the
// kubernetes_sd_configs an earlier version of this file used: "field
// kubernetes_sd_configs not found in type config.ScrapeConfig"), and that
// it asks the cluster DNS for MetricsService's SRV records in each scraped
// namespace.
func TestPrometheusConfigLoads(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skipf("promtool not on PATH (scripts/install-deps.sh installs Debian's prometheus): %v", err)
	}
	cfg := prometheusConfig([]string{sourceNS, targetNS})
	for _, ns := range []string{sourceNS, targetNS} {
		if want := `"_metrics._tcp.` + MetricsService + "." + ns + `.svc.cluster.local"`; !strings.Contains(cfg, want) {
			t.Errorf("the configuration does not ask for %s:\n%s", want, cfg)
		}
	}
	if !strings.Contains(cfg, `"`+HostMetricsAddr+`"`) {
		t.Errorf("the configuration does not scrape %s (the local validator):\n%s", HostMetricsAddr, cfg)
	}
	path := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "config", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check config: %v\n%s\n%s", err, out, cfg)
	}
}
