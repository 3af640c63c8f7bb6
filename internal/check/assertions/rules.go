package assertions

import (
	"fmt"
	"strings"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/prometheus/promql/parser"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Severity of the exported alerts.
const RuleSeverity = "critical"

// RenderRules compiles the scenario's assertions and renders them as a
// prometheus-operator PrometheusRule: one alert per assertion that fires
// while the assertion is violated, so a game day shows breaches live in
// Alertmanager and Grafana. Windows and modes are approximations, since an
// alerting rule sees only "now":
//   - a phase window (warmup, steady, recovery, drain) gates the alert on
//     kmt_phase{phase="<window>"} == 1, a fault window on
//     kmt_fault_active{fault="<name>"} == 1; window run is not gated;
//   - mode continuous fires after the violation lasts (Tolerate+1) ×
//     Interval (`for:`), mode end fires at once, mode within (recovery)
//     fires when the comparison has not held for Within while the fault is
//     no longer active.
//
// An empty result does not fire (an absent() alert would fire before the
// run starts); the kmt verdict reports it.
func RenderRules(s *scenarios.Scenario, namespace string) ([]byte, error) {
	as, err := Compile(s)
	if err != nil {
		return nil, err
	}
	pr, err := PrometheusRule(s.Metadata.Name, namespace, as)
	if err != nil {
		return nil, err
	}
	out, err := yaml.Marshal(pr)
	if err != nil {
		return nil, fmt.Errorf("render PrometheusRule for scenario %s: %w", s.Metadata.Name, err)
	}
	return out, nil
}

// PrometheusRule builds the typed object RenderRules marshals.
func PrometheusRule(scenario, namespace string, as []Assertion) (*monitoringv1.PrometheusRule, error) {
	rules := make([]monitoringv1.Rule, 0, len(as))
	for _, a := range as {
		expr, err := violationExpr(a)
		if err != nil {
			return nil, err
		}
		r := monitoringv1.Rule{
			Alert: alertName(a.Name),
			Expr:  intstr.FromString(expr),
			Labels: map[string]string{
				"severity":      RuleSeverity,
				"kmt_scenario":  scenario,
				"kmt_assertion": a.Name,
			},
			Annotations: map[string]string{
				"summary": fmt.Sprintf("kmt scenario %s: assertion %s violated (%s %s, window %s, mode %s)",
					scenario, a.Name, a.Expr, a.Threshold(), a.Window, a.Mode),
				"description": a.Description + ". Current value: {{ $value }}.",
			},
		}
		if d := forDuration(a); d > 0 {
			fd := monitoringv1.Duration(promDuration(d))
			r.For = &fd
		}
		rules = append(rules, r)
	}
	return &monitoringv1.PrometheusRule{
		TypeMeta: metav1.TypeMeta{APIVersion: monitoringv1.SchemeGroupVersion.String(), Kind: monitoringv1.PrometheusRuleKind},
		ObjectMeta: metav1.ObjectMeta{
			Name:      "kmt-" + scenario,
			Namespace: namespace,
			Labels: map[string]string{
				"app.kubernetes.io/name":    "kmt",
				"app.kubernetes.io/part-of": "kmt",
				"kmt.dev/scenario":          scenario,
			},
		},
		Spec: monitoringv1.PrometheusRuleSpec{Groups: []monitoringv1.RuleGroup{{
			Name:  "kmt-" + scenario,
			Rules: rules,
		}}},
	}, nil
}

// violationExpr is the PromQL that returns a series while a is violated.
func violationExpr(a Assertion) (string, error) {
	node, err := promParser.ParseExpr(a.Expr)
	if err != nil {
		return "", &ExprError{Assertion: a.Name, Expr: a.Expr, Line: 1, Col: 1, Msg: "PromQL syntax error: " + err.Error()}
	}
	e := "(" + a.Expr + ")"
	if node.Type() == parser.ValueTypeScalar {
		// An alert needs a vector.
		e = "vector(" + a.Expr + ")"
	}
	var v string
	switch a.Op {
	case OpBetween:
		v = fmt.Sprintf("(%s < %s or %s > %s)", e, fmtFloat(a.Range[0]), e, fmtFloat(a.Range[1]))
	default:
		inv, ok := map[string]string{OpLT: OpGE, OpLE: OpGT, OpEQ: OpNE, OpNE: OpEQ, OpGE: OpLT, OpGT: OpLE}[a.Op]
		if !ok {
			return "", fmt.Errorf("assertion %q: unknown comparison %q", a.Name, a.Op)
		}
		v = fmt.Sprintf("%s %s %s", e, inv, fmtFloat(a.Value))
	}
	gate := ""
	switch {
	case a.Mode == ModeWithin:
		if name, ok := strings.CutPrefix(a.Window, "fault:"); ok {
			gate = fmt.Sprintf(`max(%s{%s=%q}) == 0`, metrics.FaultActive, metrics.LabelFault, name)
		}
	case a.Window == "run":
	case strings.HasPrefix(a.Window, "fault:"):
		gate = fmt.Sprintf(`max(%s{%s=%q}) == 1`, metrics.FaultActive, metrics.LabelFault, strings.TrimPrefix(a.Window, "fault:"))
	default:
		gate = fmt.Sprintf(`max(%s{%s=%q}) == 1`, metrics.Phase, metrics.LabelPhase, a.Window)
	}
	if gate != "" {
		v = fmt.Sprintf("(%s) and on() (%s)", v, gate)
	}
	// The rendered rule must parse, or the operator rejects the whole object.
	if _, err := promParser.ParseExpr(v); err != nil {
		return "", fmt.Errorf("assertion %q: rendered alert expression %q does not parse: %w", a.Name, v, err)
	}
	return v, nil
}

func forDuration(a Assertion) time.Duration {
	switch a.Mode {
	case ModeContinuous:
		return time.Duration(a.Tolerate+1) * a.Interval
	case ModeWithin:
		return a.Within
	}
	return 0
}

// promDuration formats d as a Prometheus duration ("1m30s", "500ms").
func promDuration(d time.Duration) string {
	if d%time.Second != 0 {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	s := int64(d / time.Second)
	var b strings.Builder
	if h := s / 3600; h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m := s % 3600 / 60; m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	if sec := s % 60; sec > 0 || b.Len() == 0 {
		fmt.Fprintf(&b, "%ds", sec)
	}
	return b.String()
}

// alertName turns "p99-latency-steady" into "KmtP99LatencySteady".
func alertName(name string) string {
	var b strings.Builder
	b.WriteString("Kmt")
	up := true
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !ok {
			up = true
			continue
		}
		if up && r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		up = false
		b.WriteRune(r)
	}
	return b.String()
}
