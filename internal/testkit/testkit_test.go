package testkit

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// MetricSum adds counters, gauges and histogram counts, filtered by labels;
// MustMetricSum tells an absent family from a zero one.
func TestMetricSum(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c_total", Help: "h"}, []string{"role", "topic"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "h_seconds", Help: "h"})
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "g", Help: "h"})
	reg.MustRegister(c, h, g)
	c.WithLabelValues("a", "x").Add(2)
	c.WithLabelValues("a", "y").Add(3)
	c.WithLabelValues("b", "x").Add(5)
	h.Observe(1)
	h.Observe(2)
	g.Set(-4)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"c_total", nil, 10},
		{"c_total", map[string]string{"role": "a"}, 5},
		{"c_total", map[string]string{"role": "a", "topic": "x"}, 2},
		{"c_total", map[string]string{"role": "z"}, 0},
		{"h_seconds", nil, 2},
		{"g", nil, -4},
		{"absent_total", nil, 0},
	} {
		if got := MetricSum(t, reg, tc.name, tc.labels); got != tc.want {
			t.Errorf("MetricSum(%s, %v) = %g, want %g", tc.name, tc.labels, got, tc.want)
		}
	}
	if got := MustMetricSum(t, reg, "c_total", nil); got != 10 {
		t.Errorf("MustMetricSum(c_total) = %g, want 10", got)
	}
	ft := &fatalRecorder{TB: t}
	func() {
		defer func() { _ = recover() }()
		MustMetricSum(ft, reg, "absent_total", nil)
	}()
	if !ft.failed {
		t.Error("MustMetricSum of an absent family did not fail the test")
	}
}

// fatalRecorder records Fatalf instead of ending the test.
type fatalRecorder struct {
	testing.TB
	failed bool
}

func (f *fatalRecorder) Fatalf(string, ...any) { f.failed = true; panic("fatal") }
func (f *fatalRecorder) Helper()               {}
