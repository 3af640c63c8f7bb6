package gameday

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/assertions/promtest"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startPrometheus runs Debian's prometheus scraping addr every second with
// one alerting rule, and returns its URL; it is stopped at the test's end.
func startPrometheus(t *testing.T, scrape, rule string) string {
	t.Helper()
	bin := promtest.EnsurePrometheus(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: kmt
    static_configs: [{targets: [%q]}]
`, filepath.Join(dir, "rules.yml"), scrape)
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644)
	os.WriteFile(filepath.Join(dir, "rules.yml"), []byte(rule), 0o644)
	listen := freeAddr(t)
	logf, _ := os.Create(filepath.Join(dir, "prometheus.log"))
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+listen, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		logf.Close()
	})
	url := "http://" + listen
	for deadline := time.Now().Add(30 * time.Second); ; {
		if resp, err := http.Get(url + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return url
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "prometheus.log"))
			t.Fatalf("prometheus not ready at %s within 30 s:\n%s", url, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestGameDayTimeToDetect: a real Prometheus scrapes the step and
// evaluates a lag alert. Pre-flight sees no alert firing; the PromQL
// steady-state check is answered by Prometheus; the alert fires after the
// WAN cut and its time to detect is reported; an alert that is never
// going to fire is a finding.
func TestGameDayTimeToDetect(t *testing.T) {
	if testing.Short() {
		t.Skip("two embedded runs and a Prometheus server")
	}
	metricsAddr := freeAddr(t)
	prom := startPrometheus(t, metricsAddr, `groups:
  - name: kmt
    rules:
      - alert: KmtMirrorLagHigh
        expr: sum(kmt_validator_lag_records) > 200
`)
	book := fmt.Sprintf(`apiVersion: kmt.dev/v1
kind: GameDay
metadata: {name: ttd, owner: ci@example.com, abortOwner: oncall@example.com}
clusters: {backend: embedded, metricsAddr: %q}
prometheus: {url: %q}
steps:
  - name: cut
    hypothesis: the lag alert fires within 30 s of a WAN cut
    scenario: baseline
    short: true
    load: {rate: 500, duration: 10s}
    faults:
      - {name: cut, kind: wan-partition, at: 3s, duration: 4s}
    steadyState:
      - {promql: "sum(kmt_validator_anomalies_total{category=\"corrupt\"}) or vector(0)", op: "==", value: 0}
    expectAlert: {name: KmtMirrorLagHigh, within: 30s}
  - name: unnoticed
    hypothesis: an alert nobody defined never fires (a finding)
    scenario: baseline
    short: true
    load: {rate: 500, duration: 6s}
    faults:
      - {name: slow, kind: wan-latency, at: 3s, duration: 1s, params: {latency: 10ms}}
    expectAlert: {name: NoSuchAlert, within: 2s}
`, metricsAddr, prom)
	b := readBook(t, book)
	dir := t.TempDir()
	var progress strings.Builder
	res, err := Run(context.Background(), b, Options{Dir: dir, Progress: &progress, Logger: quietLog()})
	t.Logf("progress:\n%s", progress.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Preflight) != 1 || !res.Preflight[0].Held {
		t.Errorf("pre-flight %+v: want the alerts check, held", res.Preflight)
	}
	cut := res.Steps[0]
	t.Logf("time to detect: %+v", cut.Alert)
	if cut.Status != Held {
		t.Errorf("step cut: %s (%s), want held", cut.Status, cut.Reason)
	}
	if a := cut.Alert; a == nil || !a.Fired || a.TimeToDetect <= 0 || a.TimeToDetect > a.Within {
		t.Errorf("alert %+v: want KmtMirrorLagHigh fired within 30 s of the cut", a)
	}
	var promChecks int
	for _, c := range cut.Checks {
		if strings.HasPrefix(c.Check, "sum(kmt_validator_anomalies_total") && c.Held && strings.Contains(c.Detail, "= 0") {
			promChecks++
		}
	}
	if promChecks < 3 {
		t.Errorf("PromQL steady-state checks %+v: want before, during and after, each answered by Prometheus", cut.Checks)
	}
	un := res.Steps[1]
	if un.Alert == nil || un.Alert.Fired || un.Alert.Error != "" || un.Status != NotHeld {
		t.Errorf("step unnoticed %s, alert %+v: want checked, never fired, the step not held", un.Status, un.Alert)
	}
	if res.Outcome != NotHeld {
		t.Errorf("outcome %s, want not-held (an expected alert never fired)", res.Outcome)
	}
	if !strings.Contains(strings.Join(res.Findings, "\n"), "[unnoticed] alert NoSuchAlert never fired") {
		t.Errorf("findings %q lack the alert that never fired", res.Findings)
	}
}
