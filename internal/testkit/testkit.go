// Package testkit holds the helpers kmt's tests share, so each exists once
// with one behaviour: reading metric values from a registry, a buffer
// that goroutines may write while a test reads it, a file written into the
// test's temporary folder, and the process's CPU time for benchmarks.
package testkit

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// MetricSum adds up every series of the metric family name in g whose
// labels include all of labels (nil: every series): a counter's or gauge's
// value, a histogram's sample count. It is 0 when no series matches (a
// labelled counter has no series before its first use).
func MetricSum(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	sum, _ := metricSum(t, g, name, labels)
	return sum
}

// MustMetricSum is MetricSum for a family that must be there: it fails t
// when g has no family of that name, so a misspelt name never reads as 0.
func MustMetricSum(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	sum, found := metricSum(t, g, name, labels)
	if !found {
		t.Fatalf("metric %s is not in the registry", name)
	}
	return sum
}

func metricSum(t testing.TB, g prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	var sum float64
	found := false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		found = true
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				sum += value(m)
			}
		}
	}
	return sum, found
}

func hasLabels(m *dto.Metric, labels map[string]string) bool {
	for k, want := range labels {
		ok := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == k && lp.GetValue() == want {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// SyncBuffer is a bytes.Buffer that goroutines may write (a run's logs, a
// signal handler's message) while the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ProcessCPU is this process's user + system CPU time, for benchmarks that
// report CPU nanoseconds per record. Embedded brokers run in the process,
// so compare figures measured in the same run with each other.
func ProcessCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// WriteTemp writes content to a file called name in t's temporary folder
// (removed when the test ends) and returns its path: a scenario or run
// book a test made up.
func WriteTemp(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatalf("writing %s: %v", p, err)
	}
	return p
}
