package charts

import (
	"encoding/json"
	"fmt"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// dashboard builds the Grafana dashboard of a scenario: throughput,
// latency percentiles, lag, anomaly counters, with the fault windows and
// phases as annotations. Every query names metrics from internal/report/metrics
// and is filtered by the scenario and the $run variable.
func dashboard(s *scenarios.Scenario) ([]byte, error) {
	sel := fmt.Sprintf(`%s="%s",%s=~"$run"`, metrics.LabelScenario, s.Metadata.Name, metrics.LabelRun)
	type target struct {
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
		RefID        string `json:"refId"`
	}
	id := 0
	panel := func(title, unit string, x, y int, ts ...target) map[string]any {
		id++
		for i := range ts {
			ts[i].RefID = string(rune('A' + i))
		}
		return map[string]any{
			"id": id, "type": "timeseries", "title": title,
			"datasource":  map[string]any{"type": "prometheus", "uid": "${datasource}"},
			"gridPos":     map[string]any{"h": 8, "w": 12, "x": x, "y": y},
			"fieldConfig": map[string]any{"defaults": map[string]any{"unit": unit}, "overrides": []any{}},
			"targets":     ts,
		}
	}
	q := func(format string, args ...any) string { return fmt.Sprintf(format, args...) }
	lat := metrics.ValidatorLatency + "_bucket"
	panels := []any{
		panel("Throughput (records/s)", "ops", 0, 0,
			target{Expr: q(`sum(rate(%s{%s}[1m]))`, metrics.LoadgenAcked, sel), LegendFormat: "acked by source"},
			target{Expr: q(`sum(rate(%s{%s}[1m]))`, metrics.LoadgenFailed, sel), LegendFormat: "failed sends"},
			target{Expr: q(`sum(rate(%s{%s}[1m]))`, metrics.ValidatorReceived, sel), LegendFormat: "received at target"}),
		panel("End-to-end latency", "s", 12, 0,
			target{Expr: q(`histogram_quantile(0.5, sum by (le) (rate(%s{%s}[1m])))`, lat, sel), LegendFormat: "p50"},
			target{Expr: q(`histogram_quantile(0.99, sum by (le) (rate(%s{%s}[1m])))`, lat, sel), LegendFormat: "p99"},
			target{Expr: q(`histogram_quantile(0.999, sum by (le) (rate(%s{%s}[1m])))`, lat, sel), LegendFormat: "p99.9"}),
		panel("Mirror lag (records)", "short", 0, 8,
			target{Expr: q(`sum by (%s) (%s{%s})`, metrics.LabelTopic, metrics.ValidatorLag, sel), LegendFormat: "{{topic}}"}),
		panel("Anomalies", "short", 12, 8,
			target{Expr: q(`sum by (%s) (%s{%s})`, metrics.LabelCategory, metrics.ValidatorAnomaly, sel), LegendFormat: "{{category}}"},
			target{Expr: q(`sum by (%s) (%s{%s})`, metrics.LabelCategory, metrics.ValidatorMissing, sel), LegendFormat: "missing: {{category}}"}),
	}
	ann := func(name, expr, color, titleFormat string) map[string]any {
		return map[string]any{
			"name": name, "enable": true, "iconColor": color,
			"datasource": map[string]any{"type": "prometheus", "uid": "${datasource}"},
			"expr":       expr, "step": "5s", "titleFormat": titleFormat, "useValueForTime": false,
		}
	}
	var faults []any
	for _, f := range s.Spec.Timeline {
		faults = append(faults, map[string]any{"fault": f.Name, "kind": string(f.Kind), "at": f.At.String(), "duration": f.Duration.String()})
	}
	d := map[string]any{
		"title":         "kmt: " + s.Metadata.Name,
		"uid":           uid(s.Metadata.Name),
		"description":   s.Metadata.Description,
		"tags":          []string{"kmt", "kafka", "mirror"},
		"schemaVersion": 39,
		"time":          map[string]any{"from": "now-30m", "to": "now"},
		"refresh":       "10s",
		"editable":      true,
		"panels":        panels,
		"templating": map[string]any{"list": []any{
			map[string]any{"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
			map[string]any{
				"name": "run", "type": "query", "label": "Run", "includeAll": true, "allValue": ".*",
				"datasource": map[string]any{"type": "prometheus", "uid": "${datasource}"},
				"query":      q(`label_values(%s{%s="%s"}, %s)`, metrics.RunInfo, metrics.LabelScenario, s.Metadata.Name, metrics.LabelRun),
				"refresh":    2,
			},
		}},
		"annotations": map[string]any{"list": []any{
			ann("Fault windows", q(`max by (%s, %s) (%s{%s}) == 1`, metrics.LabelFault, metrics.LabelKind, metrics.FaultActive, sel), "red", "fault {{fault}} ({{kind}})"),
			ann("Phases", q(`max by (%s) (%s{%s}) == 1`, metrics.LabelPhase, metrics.Phase, sel), "blue", "{{phase}}"),
		}},
		// The planned timeline, for readers of the JSON.
		"kmtPlannedFaults": faults,
	}
	return json.MarshalIndent(d, "", "  ")
}

// uid is a Grafana dashboard uid (at most 40 characters).
func uid(name string) string {
	u := "kmt-" + name
	if len(u) > 40 {
		u = u[:40]
	}
	return u
}
