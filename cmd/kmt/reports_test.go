package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/testenv"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/htmlreport"
)

// TestReportHTMLInConfigMap: on a real kube-apiserver, the validator's
// report ConfigMap gets report.html beside report.json when both fit in a
// ConfigMap; a page too big is left out and the log gives the commands
// that rebuild it from the ConfigMap's report.json.
func TestReportHTMLInConfigMap(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real kube-apiserver (internal/env/testenv)")
	}
	e := testenv.Start(t, testenv.Options{})
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, e.Kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUBECONFIG", kc)
	t.Setenv("POD_NAMESPACE", "default")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))

	write := func(name string, page []byte) *corev1.ConfigMap {
		t.Helper()
		dir := t.TempDir()
		t0 := time.Now()
		rep := &report.Report{Verdict: report.Pass, Scenario: "s", Run: name, StartedAt: t0, EndedAt: t0.Add(time.Second), LoadStartedAt: &t0}
		if _, err := rep.WriteJSON(dir); err != nil {
			t.Fatal(err)
		}
		if page == nil {
			if _, err := htmlreport.WriteFile(dir, rep); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(filepath.Join(dir, "report.html"), page, 0o644); err != nil {
			t.Fatal(err)
		}
		cm, err := kube.NewReportWriter("kmt-report-"+name, name, "s")
		if err != nil {
			t.Fatal(err)
		}
		if err := cm.Report(ctx, rep); err != nil {
			t.Fatal(err)
		}
		putHTMLConfigMap(ctx, cm, "kmt-report-"+name, dir, log)
		got := &corev1.ConfigMap{}
		if err := e.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "kmt-report-" + name}, got); err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(filepath.Join(dir, "report.html"))
		if page == nil && got.Data["report.html"] != string(want) {
			t.Errorf("ConfigMap report.html has %d bytes, the file %d", len(got.Data["report.html"]), len(want))
		}
		return got
	}
	write("fits", nil)
	big := write("toobig", bytes.Repeat([]byte("x"), 1<<20))
	if _, ok := big.Data["report.html"]; ok || big.Data["report.json"] == "" {
		t.Errorf("a 1 MiB report.html went into the ConfigMap (keys %v); want report.json only", keys(big.Data))
	}
	if !strings.Contains(logs.String(), "does not fit the report ConfigMap") ||
		!strings.Contains(logs.String(), `kubectl -n default get configmap kmt-report-toobig -o jsonpath='{.data.report\\.json}' > report.json && kmt show report.json --html`) {
		t.Errorf("the log does not say report.html was left out:\n%s", logs.String())
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
