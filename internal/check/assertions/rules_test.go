package assertions

import (
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"sigs.k8s.io/yaml"
)

func TestRenderRules(t *testing.T) {
	s := parseScenario(t, unitScenario)
	out, err := RenderRules(s, "kmt")
	if err != nil {
		t.Fatal(err)
	}
	var pr monitoringv1.PrometheusRule
	if err := yaml.UnmarshalStrict(out, &pr); err != nil {
		t.Fatalf("rendered YAML does not read back: %v\n%s", err, out)
	}
	if pr.Kind != "PrometheusRule" || pr.APIVersion != "monitoring.coreos.com/v1" || pr.Namespace != "kmt" || pr.Name != "kmt-unit" {
		t.Fatalf("object header: %+v", pr.TypeMeta)
	}
	rules := pr.Spec.Groups[0].Rules
	if len(rules) != 7 {
		t.Fatalf("%d rules, want one per assertion (7)", len(rules))
	}
	want := map[string]struct{ expr, forD string }{
		"KmtNoLoss":              {`(sum(kmt_validator_missing_records{category="lost"})) != 0`, ""},
		"KmtMaxDuplicates":       {`(sum(kmt_validator_anomalies_total{category="duplicate"})) > 3`, ""},
		"KmtP99LatencySteady":    {`((histogram_quantile(0.99, sum by (le) (increase(kmt_validator_latency_seconds_bucket[5s])))) >= 0.25) and on() (max(kmt_phase{phase="steady"}) == 1)`, ""},
		"KmtRecoversWithinKill1": {`((sum(kmt_validator_lag_records)) >= 50) and on() (max(kmt_fault_active{fault="kill1"}) == 0)`, "5s"},
		"KmtReceived":            {`(sum(kmt_validator_received_total)) <= 10`, ""},
		"KmtLagBounded":          {`(((max(kmt_validator_lag_records)) < 0 or (max(kmt_validator_lag_records)) > 100)) and on() (max(kmt_phase{phase="steady"}) == 1)`, "2s"},
	}
	for _, r := range rules {
		if r.Labels["severity"] == "" || r.Labels["kmt_scenario"] != "unit" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("rule %s lacks labels/annotations: %+v", r.Alert, r)
		}
		if _, err := promParser.ParseExpr(r.Expr.String()); err != nil {
			t.Errorf("rule %s: %v", r.Alert, err)
		}
		w, ok := want[r.Alert]
		if !ok {
			continue
		}
		delete(want, r.Alert)
		gotFor := ""
		if r.For != nil {
			gotFor = string(*r.For)
		}
		if r.Expr.String() != w.expr || gotFor != w.forD {
			t.Errorf("%s: expr %q for %q, want %q for %q", r.Alert, r.Expr.String(), gotFor, w.expr, w.forD)
		}
	}
	if len(want) != 0 {
		t.Errorf("missing alerts: %v", want)
	}
}

// TestViolationInverts checks every op's inversion on the embedded engine:
// the alert expression returns a series exactly when the assertion fails.
func TestViolationInverts(t *testing.T) {
	w := newWorld(t)
	w.lag.Set(5)
	w.gather()
	ctx := t.Context()
	for _, op := range Ops {
		for _, th := range []float64{4, 5, 6} {
			a := Assertion{Name: "x", Expr: `sum(kmt_validator_lag_records)`, Op: op, Value: th, Range: [2]float64{th, th + 1}, Window: "run", Mode: ModeEnd}
			e, err := violationExpr(a)
			if err != nil {
				t.Fatal(err)
			}
			ss, err := w.local.Instant(ctx, e, w.at(0))
			if err != nil {
				t.Fatal(err)
			}
			if fires := len(ss) > 0; fires == a.Holds(5) {
				t.Errorf("op %s %g: alert fires=%v but assertion holds=%v (expr %s)", op, th, fires, a.Holds(5), e)
			}
		}
	}
	// A scalar expression is wrapped in vector() so the alert can fire.
	e, err := violationExpr(Assertion{Name: "s", Expr: `scalar(sum(kmt_validator_lag_records))`, Op: OpLT, Value: 1, Window: "run", Mode: ModeEnd})
	if err != nil || !strings.HasPrefix(e, "vector(") {
		t.Fatalf("scalar: %q %v", e, err)
	}
	if ss, err := w.local.Instant(ctx, e, w.at(0)); err != nil || len(ss) != 1 {
		t.Fatalf("scalar alert: %v %v", ss, err)
	}
}

func TestPromDurationAndAlertName(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Second: "1s", 90 * time.Second: "1m30s", 2 * time.Hour: "2h", 1500 * time.Millisecond: "1500ms", 0: "0s"} {
		if got := promDuration(d); got != want {
			t.Errorf("promDuration(%s) = %q, want %q", d, got, want)
		}
	}
	if got := alertName("p99-latency-fault:kill_1"); got != "KmtP99LatencyFaultKill1" {
		t.Errorf("alertName = %q", got)
	}
}
