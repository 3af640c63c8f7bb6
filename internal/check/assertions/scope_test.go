package assertions

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// TestScopeToRunJudgesOneRunOfTwo: two validators (runs "clean" and
// "lossy") scraped by one Prometheus, as two scenario charts in one cluster
// are. Each run's verdict must see its own counts only: the clean run
// passes no-loss and max-duplicates 0 even though the lossy run lost 7 and
// duplicated 3, and the lossy run fails with exactly its own 7 and 3.
// Unscoped, the sums mix the runs (the bug this guards against): the clean
// run would fail with 7 lost.
func TestScopeToRunJudgesOneRunOfTwo(t *testing.T) {
	l, err := NewLocal(LocalOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	type counts struct{ lost, dups float64 }
	runs := map[string]counts{"clean": {0, 0}, "lossy": {7, 3}}
	var targets []Target
	for run, c := range runs {
		reg := prometheus.NewRegistry()
		missing := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metrics.ValidatorMissing, Help: "h"}, []string{metrics.LabelTopic, metrics.LabelCategory})
		anomaly := prometheus.NewCounterVec(prometheus.CounterOpts{Name: metrics.ValidatorAnomaly, Help: "h"}, []string{metrics.LabelTopic, metrics.LabelCategory})
		metrics.Wrap(reg, "unit", run, "validator").MustRegister(missing, anomaly)
		missing.WithLabelValues("orders", "lost").Set(c.lost)
		anomaly.WithLabelValues("orders", "duplicate").Add(c.dups)
		targets = append(targets, Target{Role: "validator-" + run, Gatherer: reg})
	}
	t0 := time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)
	coll := NewCollector(l, targets, CollectorOptions{Now: func() time.Time { return t0 }})
	if err := coll.GatherAt(t0); err != nil {
		t.Fatal(err)
	}
	noLoss, maxDup := true, int64(0)
	as, err := Compile(&scenarios.Scenario{Spec: scenarios.Spec{Assertions: scenarios.Assertions{NoLoss: &noLoss, MaxDuplicates: &maxDup}}})
	if err != nil {
		t.Fatal(err)
	}
	wins := Windows{"run": {t0.Add(-time.Second), t0}}
	judge := func(as []Assertion) map[string]Result {
		out := map[string]Result{}
		for _, r := range EvaluateAll(context.Background(), l, as, wins) {
			out[r.Name] = r
		}
		return out
	}
	for run, c := range runs {
		scoped, err := ScopeToRun(as, run)
		if err != nil {
			t.Fatal(err)
		}
		res := judge(scoped)
		for name, want := range map[string]float64{NameNoLoss: c.lost, NameMaxDuplicates: c.dups} {
			r := res[name]
			if len(r.Observed) != 1 || r.Observed[0] != want || r.Pass != (want == 0) {
				t.Errorf("run %s, %s: observed %v pass %v (%s); want exactly [%g], pass %v", run, name, r.Observed, r.Pass, r.Reason, want, want == 0)
			}
		}
	}
	// The unscoped sum is what the bug judged: both runs' 7 lost together.
	if r := judge(as)[NameNoLoss]; r.Pass || len(r.Observed) != 1 || r.Observed[0] != 7 {
		t.Errorf("unscoped no-loss: observed %v pass %v; want [7] and a failure (the two runs summed)", r.Observed, r.Pass)
	}
}

// TestScopeToRunRewrite: every selector of a built-in or hand-written
// expression gains run="<id>", inside functions, ranges, subqueries and
// binary operations; a run matcher the author wrote is kept.
func TestScopeToRunRewrite(t *testing.T) {
	cases := []struct{ in, want string }{
		{`sum(kmt_validator_missing_records{category="lost"})`, `sum(kmt_validator_missing_records{category="lost",run="r-1"})`},
		{`histogram_quantile(0.99, sum by (le) (increase(kmt_validator_latency_seconds_bucket[55s])))`,
			`histogram_quantile(0.99, sum by (le) (increase(kmt_validator_latency_seconds_bucket{run="r-1"}[55s])))`},
		{`max_over_time(kmt_validator_lag_records[1m:5s]) / sum(kmt_validator_received_total)`,
			`max_over_time(kmt_validator_lag_records{run="r-1"}[1m:5s]) / sum(kmt_validator_received_total{run="r-1"})`},
		{`sum(kmt_validator_received_total{run=~"a|b"})`, `sum(kmt_validator_received_total{run=~"a|b"})`},
	}
	for _, c := range cases {
		out, err := ScopeToRun([]Assertion{{Name: "x", Expr: c.in}}, "r-1")
		if err != nil {
			t.Fatalf("%s: %v", c.in, err)
		}
		if got := out[0].Expr; got != c.want {
			t.Errorf("ScopeToRun(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
	if _, err := ScopeToRun([]Assertion{{Name: "x", Expr: `sum(kmt_validator_received_total)`}}, ""); err == nil || !strings.Contains(err.Error(), "run id is empty") {
		t.Errorf("an empty run id must be refused, got %v", err)
	}
}
