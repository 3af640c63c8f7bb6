package htmlreport

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

func sample() *report.Report {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &report.Report{SchemaVersion: 1, Verdict: report.Fail, Scenario: "s", Run: "r-1", LoadStartedAt: &t0,
		StartedAt: t0.Add(-time.Second), EndedAt: t0.Add(20 * time.Second),
		Reasons: []string{"3 lost: acknowledged by the source, missing at the target below what arrived"},
		Counts:  report.Counts{Produced: 100, Acked: 100, Received: 97, Lost: 3},
		Phases: []report.Phase{{Name: "warmup", Start: t0, End: t0.Add(2 * time.Second)}, {Name: "steady", Start: t0.Add(2 * time.Second), End: t0.Add(10 * time.Second)},
			{Name: "fault:cut", Start: t0.Add(3 * time.Second), End: t0.Add(6 * time.Second)}},
		Faults: []report.Fault{
			{Name: "cut", Kind: "wan-partition", Start: t0.Add(3 * time.Second), End: t0.Add(6 * time.Second), Actions: []string{"WAN partitioned", "WAN healed"}},
			{Name: "slow", Kind: "wan-latency", Start: t0.Add(7 * time.Second), End: t0.Add(9 * time.Second)},
			{Name: "never", Kind: "broker-kill", Error: "refused: no broker 9"},
		},
		Assertions: []report.Assertion{
			{Name: "p99-latency-steady", Expr: "histogram_quantile(0.99, sum by (le) (increase(kmt_validator_latency_seconds_bucket[8s])))", Op: "<", Threshold: []float64{0.25}, Observed: []float64{0.01234}, Pass: true},
			{Name: "recovers-within-cut", Mode: "within", Op: "<=", Threshold: []float64{6}, Observed: []float64{2}, Pass: true},
		},
		MirrorMetrics: map[string]float64{"mm2_record_count": 1234},
		ExtraSeries:   []report.Series{{Name: "mm2 replication latency", Unit: "seconds", Points: []report.Point{{T: 1, V: 0.1}, {T: 2, V: 0.3}}}},
	}
	for s := 0; s < 12; s++ {
		sec := report.Second{T: s, Arrivals: 10, Produced: 10, Acked: 10, LatencyP50: 0.01, LatencyP99: 0.02, LatencyMax: 0.03}
		if s == 7 {
			sec.Anomalies = map[string]uint64{"lost": 3}
		}
		r.Timeline = append(r.Timeline, sec)
	}
	// An example as report.json carries it: each field a column.
	var ex report.Example
	json.Unmarshal([]byte(`{"topic":"orders","stream":4,"seq":17,"partition":-1,"offset":-1,"source_partition":2,"source_offset":88,"produced_at":"2026-01-01T00:00:04Z","fault":"cut","detail":"missing"}`), &ex)
	r.Examples = map[string][]report.Example{"lost": {ex}}
	return r
}

func TestRenderShowsEveryPart(t *testing.T) {
	var buf bytes.Buffer
	if err := Render(&buf, sample(), Options{Scenario: "spec: {}", Files: []string{"kmt.log", "report.json"}}); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		`class="verdict fail"`, "3 lost: acknowledged",
		"12.3 ms", "&lt; 250 ms", // rounded with units
		"<td class=\"n\">2 s</td>", "&lt;= 6 s",
		`data-plot="rates"`, `data-plot="lag"`, `data-plot="latency"`, `data-plot="anomalies"`, `data-plot="extra-0"`,
		`data-name="cut" data-start="3.000" data-end="6.000" data-kind="wan-partition"`,
		`data-name="slow" data-start="7.000" data-end="9.000"`,
		"applied at +3.0 s, reverted at +6.0 s\nWAN partitioned\nWAN healed",
		"refused: no broker 9",
		`<table class="evidence" data-category="lost">`, "<td>17</td>",
		`<a href="kmt.log">kmt.log</a>`, "spec: {}",
		`<td>mm2_record_count</td><td class="n">1234</td>`,
		`<th data-key="partition">target partition</th>`,
		"<td>2</td><td>88</td><td>–</td><td>–</td><td>&#43;4.0 s (00:00:04.000)</td><td>cut</td><td>missing</td>",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(page, `<g class="fault"`); n != 2 {
		t.Errorf("%d fault bands, want 2 (the fault never applied has none)", n)
	}
	// Self-contained: nothing fetched from anywhere.
	if m := regexp.MustCompile(`(?i)(src=|@import|url\(|<script|<link)`).FindString(page); m != "" {
		t.Errorf("the page loads something (%q): it must be self-contained", m)
	}
}

func TestFormat(t *testing.T) {
	for _, c := range []struct {
		v    float64
		u    string
		want string
	}{{0.0123456, "s", "12.3 ms"}, {2, "s", "2 s"}, {6.4, "s", "6.40 s"}, {179, "records", "179 records"}, {0.5, "", "0.500"}, {123.456, "", "123"}} {
		if got := num(c.v, c.u); got != c.want {
			t.Errorf("num(%v, %q) = %q, want %q", c.v, c.u, got, c.want)
		}
	}
}
