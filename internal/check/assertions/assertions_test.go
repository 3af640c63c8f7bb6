package assertions

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// world is a validator and a harness registry, an embedded Prometheus and
// a Collector on a simulated clock: tests set values, advance the clock and
// gather, with no sleeping.
type world struct {
	t        *testing.T
	local    *Local
	coll     *Collector
	now      time.Time
	t0       time.Time
	valReg   *prometheus.Registry
	anomaly  *prometheus.CounterVec
	missing  *prometheus.GaugeVec
	lag      prometheus.Gauge
	latency  prometheus.Histogram
	received *prometheus.CounterVec
	phase    *prometheus.GaugeVec
}

func newWorld(t *testing.T) *world {
	t.Helper()
	l, err := NewLocal(LocalOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	w := &world{t: t, local: l, t0: time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)}
	w.now = w.t0
	w.valReg = prometheus.NewRegistry()
	vr := metrics.Wrap(w.valReg, "unit", "r1", "validator")
	w.anomaly = prometheus.NewCounterVec(prometheus.CounterOpts{Name: metrics.ValidatorAnomaly, Help: "h"}, []string{metrics.LabelTopic, metrics.LabelCategory})
	w.missing = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metrics.ValidatorMissing, Help: "h"}, []string{metrics.LabelTopic, metrics.LabelCategory})
	w.lag = prometheus.NewGauge(prometheus.GaugeOpts{Name: metrics.ValidatorLag, Help: "h"})
	w.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: metrics.ValidatorLatency, Help: "h", Buckets: metrics.LatencyBuckets})
	w.received = prometheus.NewCounterVec(prometheus.CounterOpts{Name: metrics.ValidatorReceived, Help: "h"}, []string{metrics.LabelTopic})
	vr.MustRegister(w.anomaly, w.missing, w.lag, w.latency, w.received)
	hreg := prometheus.NewRegistry()
	w.phase = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metrics.Phase, Help: "h"}, []string{metrics.LabelPhase})
	metrics.Wrap(hreg, "unit", "r1", "harness").MustRegister(w.phase)
	w.coll = NewCollector(l, []Target{{Role: "validator", Gatherer: w.valReg}, {Role: "harness", Gatherer: hreg}},
		CollectorOptions{Now: func() time.Time { return w.now }})
	return w
}

// gather scrapes at the current simulated time.
func (w *world) gather() {
	w.t.Helper()
	if err := w.coll.GatherAt(w.now); err != nil {
		w.t.Fatal(err)
	}
}

// tick advances the clock by d and gathers.
func (w *world) tick(d time.Duration) {
	w.now = w.now.Add(d)
	w.gather()
}

func (w *world) at(d time.Duration) time.Time { return w.t0.Add(d) }

func TestCompare(t *testing.T) {
	nan := math.NaN()
	cases := []struct {
		op    string
		v     float64
		value float64
		rng   [2]float64
		want  bool
	}{
		{OpLT, 1, 2, [2]float64{}, true}, {OpLT, 2, 2, [2]float64{}, false},
		{OpLE, 2, 2, [2]float64{}, true}, {OpLE, 3, 2, [2]float64{}, false},
		{OpEQ, 2, 2, [2]float64{}, true}, {OpEQ, 2.0001, 2, [2]float64{}, false},
		{OpNE, 1, 2, [2]float64{}, true}, {OpNE, 2, 2, [2]float64{}, false},
		{OpGE, 2, 2, [2]float64{}, true}, {OpGE, 1, 2, [2]float64{}, false},
		{OpGT, 3, 2, [2]float64{}, true}, {OpGT, 2, 2, [2]float64{}, false},
		{OpBetween, 1, 0, [2]float64{1, 2}, true}, {OpBetween, 2, 0, [2]float64{1, 2}, true},
		{OpBetween, 0.99, 0, [2]float64{1, 2}, false}, {OpBetween, 2.01, 0, [2]float64{1, 2}, false},
		{OpNE, nan, 2, [2]float64{}, false}, {OpLT, nan, 2, [2]float64{}, false},
		{OpBetween, nan, 0, [2]float64{math.Inf(-1), math.Inf(1)}, false},
		{"=~", 1, 1, [2]float64{}, false},
	}
	for _, c := range cases {
		if got := Compare(c.op, c.v, c.value, c.rng); got != c.want {
			t.Errorf("Compare(%q, %g, %g, %v) = %v, want %v", c.op, c.v, c.value, c.rng, got, c.want)
		}
	}
}

const unitScenario = `apiVersion: kmt.dev/v1
kind: Scenario
metadata: {name: unit}
spec:
  topology: {topics: [{name: orders}]}
  load: {duration: 20s}
  warmup: 2s
  recovery: 5s
  drain: 10s
  timeline:
    - {name: kill1, kind: broker-kill, at: 5500ms, duration: 3s}
  assertions:
    noLoss: true
    maxDuplicates: 3
    ordered: true
    p99LatencyBelow: {phase: steady, value: 250ms}
    recoversWithin: {after: kill1, value: 5s, lagBelow: 50}
    custom:
      - {name: received, expr: 'sum(kmt_validator_received_total)', op: '>', value: 10}
      - {name: lag-bounded, expr: 'max(kmt_validator_lag_records)', op: between, range: [0, 100], mode: continuous, interval: 1s, tolerate: 1, window: steady}
`

func parseScenario(t *testing.T, src string) *scenarios.Scenario {
	t.Helper()
	s, err := scenarios.Parse("unit.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCompileBuiltins(t *testing.T) {
	s := parseScenario(t, unitScenario)
	as, err := Compile(s)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, expr, op, window, mode string
		value                        float64
	}{
		{NameNoLoss, `sum(kmt_validator_missing_records{category="lost"})`, "==", "run", "end", 0},
		{NameMaxDuplicates, `sum(kmt_validator_anomalies_total{category="duplicate"})`, "<=", "run", "end", 3},
		{NameOrdered, `sum(kmt_validator_anomalies_total{category="reordered"})`, "==", "run", "end", 0},
		// steady is [2s, 5.5s): 3.5s rounds up to 4s.
		{"p99-latency-steady", `histogram_quantile(0.99, sum by (le) (increase(kmt_validator_latency_seconds_bucket[5s])))`, "<", "steady", "end", 0.25},
		{"recovers-within-kill1", `sum(kmt_validator_lag_records)`, "<", "fault:kill1", "within", 50},
		{"received", `sum(kmt_validator_received_total)`, ">", "run", "end", 10},
		{"lag-bounded", `max(kmt_validator_lag_records)`, "between", "steady", "continuous", 0},
	}
	if len(as) != len(want) {
		t.Fatalf("got %d assertions, want %d: %+v", len(as), len(want), as)
	}
	for i, w := range want {
		a := as[i]
		if a.Name != w.name || a.Expr != w.expr || a.Op != w.op || a.Window != w.window || a.Mode != w.mode || a.Value != w.value {
			t.Errorf("assertion %d = %+v, want %+v", i, a, w)
		}
		if a.Description == "" {
			t.Errorf("assertion %s has no description", a.Name)
		}
		if a.Builtin != (i < 5) {
			t.Errorf("assertion %s: Builtin = %v", a.Name, a.Builtin)
		}
	}
	if as[4].Within != 5*time.Second || as[4].Interval != time.Second {
		t.Errorf("recoversWithin: within %s interval %s, want 5s and 1s", as[4].Within, as[4].Interval)
	}
	if as[6].Range != [2]float64{0, 100} || as[6].Tolerate != 1 || as[6].Interval != time.Second {
		t.Errorf("custom continuous: %+v", as[6])
	}
}

func TestCompileRejects(t *testing.T) {
	cases := []struct {
		name, custom, want string
	}{
		{"name taken by a built-in", `{name: no-loss, expr: 'sum(kmt_validator_lag_records)', op: '<', value: 1}`, "taken by a built-in"},
		{"unknown metric", `{name: typo, expr: 'sum(kmt_validator_lag_record)', op: '<', value: 1}`, "did you mean kmt_validator_lag_records"},
		{"syntax error", `{name: bad, expr: 'sum(kmt_validator_lag_records', op: '<', value: 1}`, "syntax error"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(unitScenario, "    custom:\n", "    custom:\n      - "+c.custom+"\n", 1)
			_, err := Compile(parseScenario(t, src))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Compile error = %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestCheckExprs(t *testing.T) {
	cases := []struct {
		name, expr   string
		ok           bool
		line, col    int
		metric, sugg string
		msg          string
	}{
		{name: "valid builtin", expr: `histogram_quantile(0.99, sum by (le) (increase(kmt_validator_latency_seconds_bucket[5s])))`, ok: true},
		{name: "valid scalar", expr: `scalar(sum(kmt_loadgen_acked_total)) - 5`, ok: true},
		{name: "valid name regexp", expr: `sum({__name__=~"kmt_loadgen_.*_total"})`, ok: true},
		{name: "unknown metric", expr: `sum(kmt_loadgen_ackd_total)`, line: 1, col: 5, metric: "kmt_loadgen_ackd_total", sugg: "kmt_loadgen_acked_total", msg: "unknown metric"},
		{name: "unknown metric line 2", expr: "sum(kmt_loadgen_acked_total)\n  - sum(kmt_mirror_producd_total)", line: 2, col: 9, metric: "kmt_mirror_producd_total", sugg: "kmt_mirror_produced_total"},
		{name: "unknown via __name__", expr: `sum({__name__="kmt_nope"})`, line: 1, col: 5, metric: "kmt_nope"},
		{name: "name regexp matching nothing", expr: `sum({__name__=~"node_.*"})`, line: 1, col: 5, metric: "node_.*", msg: "matches no metric"},
		{name: "not kmt at all", expr: `up`, line: 1, col: 1, metric: "up"},
		{name: "syntax error", expr: `sum(kmt_validator_lag_records`, line: 1, msg: "syntax error"},
		{name: "syntax error line 2", expr: "sum(kmt_validator_lag_records)\n > > 3", line: 2, msg: "syntax error"},
		{name: "range vector", expr: `kmt_validator_lag_records[5m]`, line: 1, col: 1, msg: "range vector"},
		{name: "empty", expr: ` `, line: 1, col: 1, msg: "empty"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckExprs([]Assertion{{Name: "a1", Expr: c.expr}})
			if c.ok {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			var ee *ExprError
			if !errors.As(err, &ee) {
				t.Fatalf("error %v is not an *ExprError", err)
			}
			if ee.Assertion != "a1" || ee.Expr != c.expr || ee.Line != c.line || (c.col != 0 && ee.Col != c.col) ||
				ee.Metric != c.metric || (c.sugg != "" && ee.Suggestion != c.sugg) || !strings.Contains(ee.Error(), c.msg) {
				t.Fatalf("got %+v (%v), want line %d col %d metric %q suggestion %q msg %q", ee, ee, c.line, c.col, c.metric, c.sugg, c.msg)
			}
			if !strings.Contains(ee.Error(), `"a1"`) {
				t.Errorf("error does not name the assertion: %v", ee)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "", 3}, {"kitten", "sitting", 3}, {"same", "same", 0}, {"ab", "ba", 2}} {
		if got := editDistance(c.a, c.b); got != c.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.d)
		}
	}
	if got := closest("zzzzzzzzzzzzzzzzzzzzzzzzzzzz"); got != "" {
		t.Errorf("closest of nonsense = %q, want none", got)
	}
}

// TestEvaluateEndOps runs every comparison op against a counter the
// validator's registry exported, at the end of a window.
func TestEvaluateEndOps(t *testing.T) {
	w := newWorld(t)
	w.anomaly.WithLabelValues("orders", "duplicate").Add(1)
	w.anomaly.WithLabelValues("orders", "reordered")
	w.gather()
	w.tick(time.Second)
	w.anomaly.WithLabelValues("orders", "duplicate").Add(2) // 3 at +2s
	w.tick(time.Second)
	wins := Windows{"run": {w.at(0), w.at(2 * time.Second)}, "warmup": {w.at(0), w.at(time.Second)}}
	expr := `sum(kmt_validator_anomalies_total{category="duplicate"})`
	cases := []struct {
		op    string
		value float64
		rng   [2]float64
		pass  bool
	}{
		{OpLT, 3, [2]float64{}, false}, {OpLT, 4, [2]float64{}, true},
		{OpLE, 3, [2]float64{}, true}, {OpLE, 2, [2]float64{}, false},
		{OpEQ, 3, [2]float64{}, true}, {OpEQ, 0, [2]float64{}, false},
		{OpNE, 0, [2]float64{}, true}, {OpNE, 3, [2]float64{}, false},
		{OpGE, 3, [2]float64{}, true}, {OpGE, 4, [2]float64{}, false},
		{OpGT, 2, [2]float64{}, true}, {OpGT, 3, [2]float64{}, false},
		{OpBetween, 0, [2]float64{3, 3}, true}, {OpBetween, 0, [2]float64{0, 2}, false},
	}
	for _, c := range cases {
		a := Assertion{Name: "dups", Expr: expr, Op: c.op, Value: c.value, Range: c.rng, Window: "run", Mode: ModeEnd}
		r := Evaluate(context.Background(), w.local, a, wins)
		if r.Pass != c.pass || len(r.Observed) != 1 || r.Observed[0] != 3 {
			t.Errorf("%s %g %v: pass %v observed %v (%s), want pass %v observed [3]", c.op, c.value, c.rng, r.Pass, r.Observed, r.Reason, c.pass)
		}
	}
	// The same expression at the end of an earlier window sees the older value.
	a := Assertion{Name: "dups", Expr: expr, Op: OpEQ, Value: 1, Window: "warmup", Mode: ModeEnd}
	if r := Evaluate(context.Background(), w.local, a, wins); !r.Pass || r.Observed[0] != 1 {
		t.Errorf("at the early window's end: %+v", r)
	}
}

func TestEvaluateContinuousTolerate(t *testing.T) {
	w := newWorld(t)
	// Lag over 10 one-second scrapes; two of them above 100.
	lags := []float64{10, 20, 150, 30, 40, 200, 50, 60, 70, 80}
	for i, v := range lags {
		w.lag.Set(v)
		if i == 0 {
			w.gather()
		} else {
			w.tick(time.Second)
		}
	}
	wins := Windows{"steady": {w.at(0), w.at(9 * time.Second)}}
	for _, c := range []struct {
		tolerate int
		pass     bool
	}{{0, false}, {1, false}, {2, true}, {5, true}} {
		a := Assertion{Name: "lag", Expr: `max(kmt_validator_lag_records)`, Op: OpLE, Value: 100,
			Window: "steady", Mode: ModeContinuous, Interval: time.Second, Tolerate: c.tolerate}
		r := Evaluate(context.Background(), w.local, a, wins)
		if r.Pass != c.pass || r.Failures != 2 || r.Evaluations != 10 || len(r.Observed) != 10 {
			t.Errorf("tolerate %d: pass %v failures %d evaluations %d observed %v; want pass %v, 2 failures of 10 (%s)",
				c.tolerate, r.Pass, r.Failures, r.Evaluations, r.Observed, c.pass, r.Reason)
		}
		if !strings.Contains(r.Reason, "+2s: observed 150") {
			t.Errorf("reason does not say which evaluation failed: %s", r.Reason)
		}
	}
	// A step of 2s evaluates 5 times and sees both spikes? 150 at +2s and
	// 200 at +5s: only +2s is on the 2s grid.
	a := Assertion{Name: "lag", Expr: `max(kmt_validator_lag_records)`, Op: OpLE, Value: 100,
		Window: "steady", Mode: ModeContinuous, Interval: 2 * time.Second}
	r := Evaluate(context.Background(), w.local, a, wins)
	if r.Evaluations != 5 || r.Failures != 1 {
		t.Errorf("interval 2s: %d evaluations, %d failures, want 5 and 1 (%s)", r.Evaluations, r.Failures, r.Reason)
	}
}

func TestEvaluateWithin(t *testing.T) {
	w := newWorld(t)
	// Fault [0, 4s): lag climbs; after it ends lag falls 400, 300, 200, 90, 0.
	for i, v := range []float64{0, 100, 200, 300, 400, 300, 200, 90, 0, 0} {
		w.lag.Set(v)
		if i == 0 {
			w.gather()
		} else {
			w.tick(time.Second)
		}
	}
	wins := Windows{"fault:kill1": {w.at(0), w.at(4 * time.Second)}}
	cases := []struct {
		lagBelow float64
		within   time.Duration
		pass     bool
		observed float64
	}{
		{100, 5 * time.Second, true, 3}, // 90 at +7s = fault end + 3s
		{100, 3 * time.Second, true, 3}, // the window end itself counts
		{100, 2 * time.Second, false, 0},
		{350, 5 * time.Second, true, 1},
		{1, 5 * time.Second, true, 4},
	}
	for _, c := range cases {
		a := Assertion{Name: "rec", Expr: `sum(kmt_validator_lag_records)`, Op: OpLT, Value: c.lagBelow,
			Window: "fault:kill1", Mode: ModeWithin, Within: c.within, Interval: time.Second}
		r := Evaluate(context.Background(), w.local, a, wins)
		if r.Pass != c.pass || (c.pass && (len(r.Observed) != 1 || r.Observed[0] != c.observed)) || (!c.pass && len(r.Observed) != 0) {
			t.Errorf("lag < %g within %s: pass %v observed %v (%s), want pass %v observed %g", c.lagBelow, c.within, r.Pass, r.Observed, r.Reason, c.pass, c.observed)
		}
		if !c.pass && !strings.Contains(r.Reason, "never held") {
			t.Errorf("reason %q does not say it never held", r.Reason)
		}
	}
}

// TestEvaluateBadResults: empty, several series, NaN, a query error and an
// unknown window are failed results with the reason, never a panic.
func TestEvaluateBadResults(t *testing.T) {
	w := newWorld(t)
	w.anomaly.WithLabelValues("orders", "duplicate").Add(1)
	w.anomaly.WithLabelValues("payments", "duplicate").Add(1)
	w.gather()
	w.tick(time.Second)
	wins := Windows{"run": {w.at(0), w.at(time.Second)}}
	cases := []struct {
		name, expr, mode, window string
		want                     string
	}{
		{"empty", `sum(kmt_loadgen_acked_total)`, ModeEnd, "run", ReasonNoSeries},
		{"empty continuous", `sum(kmt_loadgen_acked_total)`, ModeContinuous, "run", "no series"},
		{"empty within", `sum(kmt_loadgen_acked_total)`, ModeWithin, "run", ReasonNoSeries},
		{"several series", `kmt_validator_anomalies_total`, ModeEnd, "run", `2 series where one was expected`},
		{"several series labels", `sum by (topic) (kmt_validator_anomalies_total)`, ModeEnd, "run", `{topic="payments"}`},
		{"NaN quantile without observations", `histogram_quantile(0.99, sum by (le) (increase(kmt_validator_latency_seconds_bucket[5s])))`, ModeEnd, "run", ReasonNaN},
		{"NaN division", `sum(kmt_validator_lag_records) / 0 * 0`, ModeEnd, "run", ReasonNaN},
		{"query error", `sum(kmt_validator_lag_records) + on(x) group_left kmt_validator_anomalies_total`, ModeEnd, "run", "query failed"},
		{"range query error", `no_such_function(kmt_validator_lag_records)`, ModeContinuous, "run", "range query failed"},
		{"unknown window", `sum(kmt_validator_lag_records)`, ModeEnd, "steady", `no "steady" window`},
		{"bad mode", `sum(kmt_validator_lag_records)`, "sometimes", "run", "unknown mode"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := Assertion{Name: c.name, Expr: c.expr, Op: OpGE, Value: 0, Window: c.window, Mode: c.mode, Interval: time.Second, Within: time.Second}
			r := Evaluate(context.Background(), w.local, a, wins)
			if r.Pass || !strings.Contains(r.Reason, c.want) {
				t.Fatalf("pass %v reason %q, want a failure with %q", r.Pass, r.Reason, c.want)
			}
			for _, v := range r.Observed {
				if math.IsNaN(v) {
					t.Fatalf("NaN stored in Observed: %v", r.Observed)
				}
			}
		})
	}
}

// TestStaleness: a series that disappears from the registry is marked
// stale, so it is gone at once instead of lingering for the 5m lookback.
func TestStaleness(t *testing.T) {
	w := newWorld(t)
	w.phase.WithLabelValues("warmup").Set(1)
	w.gather()
	w.phase.DeleteLabelValues("warmup")
	w.phase.WithLabelValues("steady").Set(1)
	w.tick(time.Second)
	ctx := context.Background()
	ss, err := w.local.Instant(ctx, `kmt_phase`, w.at(1500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].Labels["phase"] != "steady" {
		t.Fatalf("after warmup was deleted: %v, want only phase=steady", ss)
	}
	// Before the stale marker, warmup was there.
	ss, err = w.local.Instant(ctx, `kmt_phase{phase="warmup"}`, w.at(500*time.Millisecond))
	if err != nil || len(ss) != 1 {
		t.Fatalf("warmup before deletion: %v %v", ss, err)
	}
	// Scrape labels as a Prometheus server attaches them.
	l := ss[0].Labels
	if l["job"] != "kmt-harness" || l["instance"] != "local" || l["role"] != "harness" || l["scenario"] != "unit" || l["run"] != "r1" {
		t.Fatalf("labels %v lack job/instance or the constant labels", l)
	}
}

// TestFailedGatherMarksStale: a target whose Gather fails goes stale, as a
// failed scrape does in Prometheus.
func TestFailedGatherMarksStale(t *testing.T) {
	l, err := NewLocal(LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: metrics.ValidatorLag, Help: "h"})
	reg.MustRegister(g)
	broken := &failing{reg: reg}
	t0 := time.Unix(1_900_000_000, 0)
	c := NewCollector(l, []Target{{Role: "validator", Gatherer: broken}}, CollectorOptions{})
	if err := c.GatherAt(t0); err != nil {
		t.Fatal(err)
	}
	broken.fail = true
	if err := c.GatherAt(t0.Add(time.Second)); err == nil || !strings.Contains(err.Error(), "kmt-validator") {
		t.Fatalf("failed gather error = %v, want one naming the job", err)
	}
	ss, err := l.Instant(context.Background(), `kmt_validator_lag_records`, t0.Add(2*time.Second))
	if err != nil || len(ss) != 0 {
		t.Fatalf("after a failed scrape: %v %v, want no series", ss, err)
	}
}

type failing struct {
	reg  *prometheus.Registry
	fail bool
}

func (f *failing) Gather() ([]*dto.MetricFamily, error) {
	if f.fail {
		return nil, errors.New("boom")
	}
	return f.reg.Gather()
}

func TestHistogramQuantileAndLabelClash(t *testing.T) {
	w := newWorld(t)
	w.gather()
	// 100 observations: 98 at 3ms, 2 at 0.4s: p99 lies in the bucket of 0.4s.
	for i := 0; i < 98; i++ {
		w.latency.Observe(0.003)
	}
	w.latency.Observe(0.4)
	w.latency.Observe(0.4)
	w.tick(time.Second)
	w.tick(time.Second)
	wins := Windows{"steady": {w.at(0), w.at(2 * time.Second)}}
	a := Assertion{Name: "p99", Expr: `histogram_quantile(0.99, sum by (le) (increase(kmt_validator_latency_seconds_bucket[3s])))`,
		Op: OpLT, Value: 0.25, Window: "steady", Mode: ModeEnd}
	r := Evaluate(context.Background(), w.local, a, wins)
	if r.Pass || len(r.Observed) != 1 || r.Observed[0] < 0.3 || r.Observed[0] > 0.5 {
		t.Fatalf("p99 = %v pass %v (%s), want between 0.3 and 0.5 and a failure", r.Observed, r.Pass, r.Reason)
	}
	a.Expr = `histogram_quantile(0.5, sum by (le) (increase(kmt_validator_latency_seconds_bucket[3s])))`
	r = Evaluate(context.Background(), w.local, a, wins)
	if !r.Pass || r.Observed[0] < 0.002 || r.Observed[0] > 0.003 {
		t.Fatalf("p50 = %v (%s), want in the 3ms bucket", r.Observed, r.Reason)
	}
	// _count and the +Inf bucket agree.
	ss, err := w.local.Instant(context.Background(), `sum(kmt_validator_latency_seconds_bucket{le="+Inf"}) - sum(kmt_validator_latency_seconds_count)`, w.at(2*time.Second))
	if err != nil || len(ss) != 1 || ss[0].Value != 0 {
		t.Fatalf("+Inf bucket vs count: %v %v", ss, err)
	}

	// A metric with its own job label keeps it as exported_job.
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metrics.MirrorRunning, Help: "h"}, []string{"job"})
	g.WithLabelValues("mm2").Set(1)
	reg.MustRegister(g)
	c := NewCollector(w.local, []Target{{Role: "mirror", Gatherer: reg}}, CollectorOptions{})
	if err := c.GatherAt(w.at(3 * time.Second)); err != nil {
		t.Fatal(err)
	}
	ss, err = w.local.Instant(context.Background(), `kmt_mirror_up`, w.at(3*time.Second))
	if err != nil || len(ss) != 1 || ss[0].Labels["job"] != "kmt-mirror" || ss[0].Labels["exported_job"] != "mm2" {
		t.Fatalf("label clash: %v %v", ss, err)
	}
}

// TestCollectorStartStop uses the wall clock: Stop's final gather must
// catch a value set just before it.
func TestCollectorStartStop(t *testing.T) {
	l, reg, c := newAckedLocal(t)
	coll := NewCollector(l, []Target{{Role: "loadgen", Gatherer: reg}}, CollectorOptions{Interval: 20 * time.Millisecond})
	coll.Start(context.Background())
	time.Sleep(50 * time.Millisecond)
	c.Add(42)
	if err := coll.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := coll.Stop(); err != nil { // idempotent
		t.Fatal(err)
	}
	ss, err := l.Instant(context.Background(), `sum(kmt_loadgen_acked_total)`, time.Now())
	if err != nil || len(ss) != 1 || ss[0].Value != 42 {
		t.Fatalf("after Stop: %v %v, want 42", ss, err)
	}
	ss, err = l.Instant(context.Background(), `count_over_time(kmt_loadgen_acked_total[1m])`, time.Now())
	if err != nil || len(ss) != 1 || ss[0].Value < 2 {
		t.Fatalf("samples gathered: %v %v, want at least 2", ss, err)
	}
}

func TestPlannedWindows(t *testing.T) {
	s := parseScenario(t, unitScenario)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	w := PlannedWindows(s, t0)
	for name, want := range map[string][2]time.Duration{
		"run": {0, 30 * time.Second}, "warmup": {0, 2 * time.Second}, "steady": {2 * time.Second, 5500 * time.Millisecond},
		"fault:kill1": {5500 * time.Millisecond, 8500 * time.Millisecond}, "recovery": {8500 * time.Millisecond, 20 * time.Second},
		"drain": {20 * time.Second, 30 * time.Second},
	} {
		got, err := w.Lookup(name)
		if err != nil || got.Start != t0.Add(want[0]) || got.End != t0.Add(want[1]) {
			t.Errorf("%s = %v %v, want %v", name, got, err, want)
		}
	}
	if _, err := w.Lookup("fault:nope"); err == nil || !strings.Contains(err.Error(), "recorded: drain") {
		t.Errorf("unknown window error: %v", err)
	}
}

func TestNewRemoteOptions(t *testing.T) {
	for _, c := range []struct {
		o    RemoteOptions
		want string
	}{
		{RemoteOptions{}, "empty"},
		{RemoteOptions{URL: "127.0.0.1:9090"}, "scheme"},
		{RemoteOptions{URL: "http://x", BearerToken: "a", BearerTokenFile: "/b"}, "not both"},
		{RemoteOptions{URL: "http://x", BearerTokenFile: "/nonexistent/token"}, "token file"},
		{RemoteOptions{URL: "http://x", CAFile: "/nonexistent/ca.pem"}, "CA file"},
	} {
		if _, err := NewRemote(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewRemote(%+v) = %v, want error with %q", c.o, err, c.want)
		}
	}
}

// TestGatherInTheSameMillisecond: Stop's final gather can land in the
// millisecond of the last tick. Its values are the run's final ones, so the
// scrape must be kept (stamped 1 ms later), not refused as a duplicate
// sample. Breaking the rule (stamping t as is) fails with "duplicate sample
// for timestamp" and the query sees 1, not 2.
func TestGatherInTheSameMillisecond(t *testing.T) {
	l, reg, c := newAckedLocal(t)
	t0 := time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)
	coll := NewCollector(l, []Target{{Role: "loadgen", Gatherer: reg}}, CollectorOptions{})
	c.Add(1)
	if err := coll.GatherAt(t0); err != nil {
		t.Fatal(err)
	}
	c.Add(1)
	if err := coll.GatherAt(t0.Add(300 * time.Microsecond)); err != nil {
		t.Fatalf("a second scrape in the same millisecond: %v", err)
	}
	ss, err := l.Instant(context.Background(), `sum(kmt_loadgen_acked_total)`, t0.Add(time.Second))
	if err != nil || len(ss) != 1 || ss[0].Value != 2 {
		t.Fatalf("after two scrapes in one millisecond: %v %v, want exactly 2", ss, err)
	}
}

// newAckedLocal is an embedded Prometheus and a registry holding the
// loadgen's acked counter, for the Collector tests.
func newAckedLocal(t *testing.T) (*Local, *prometheus.Registry, prometheus.Counter) {
	t.Helper()
	l, err := NewLocal(LocalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: metrics.LoadgenAcked, Help: "h"})
	reg.MustRegister(c)
	return l, reg, c
}
