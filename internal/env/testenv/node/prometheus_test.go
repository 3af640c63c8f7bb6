package node

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
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

// testBaselineWithPrometheus is the baseline chart again with the
// validator evaluating the scenario's PromQL assertions against the
// Prometheus in the cluster (through its Service name): every assertion
// gets an observed value, and the verdict is kmt's exit code.
func testBaselineWithPrometheus(t *testing.T, n *Node, p mirrorPair, promURL string) {
	run := "node-prom-" + time.Now().UTC().Format("150405")
	res := runClusterScenario(t, n, p, "baseline", run, chartValues(promURL)...)
	if res.report == nil {
		t.Fatalf("the validator wrote no report ConfigMap in %s", targetNS)
	}
	checkAssertionsEvaluated(t, res.report)
	checkRunRemoved(t, n, run)
	if res.report.Verdict != report.Pass || res.exit != 0 {
		t.Errorf("verdict %s (exit %d), want pass on a healthy mirror: %v", res.report.Verdict, res.exit, res.report.Reasons)
	}
}
