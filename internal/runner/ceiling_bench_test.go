package runner

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// BenchmarkEmbeddedBaselineCeiling finds the highest rate at which the whole
// embedded setup (two clusters, the reference mirror, load and validator in
// one process) still passes the baseline scenario (short form: no loss, no
// duplicates, order, p99 latency below 500 ms) on this machine. It tries
// rates in increasing order and stops at the first that does not pass,
// printing why and what kmt said about itself (the harness section).
//
//	go test -run '^$' -bench EmbeddedBaselineCeiling -benchtime 1x ./internal/runner
func BenchmarkEmbeddedBaselineCeiling(b *testing.B) {
	quiet := slog.New(slog.DiscardHandler)
	var best float64
	var bestP99 float64
	for _, rate := range []float64{2000, 5000, 10000, 20000, 30000, scenarios.MaxLocalRate} {
		rep, err := Run(context.Background(), Options{
			Scenario: "baseline", Short: true, Rate: rate, Duration: 10 * time.Second,
			ReportDir: b.TempDir(), Logger: quiet, Registry: prometheus.NewRegistry(),
		})
		if err != nil {
			b.Fatalf("rate %g: %v", rate, err)
		}
		p99 := rep.LatencySeconds.P99
		b.Logf("rate %6.0f: verdict %s, p99 %.3fs, harness %+v, reasons %q", rate, rep.Verdict, p99, rep.Harness, rep.Reasons)
		if rep.Verdict != report.Pass {
			break
		}
		best, bestP99 = rate, p99
	}
	b.ReportMetric(best, "max_passing_msgs/s")
	b.ReportMetric(bestP99*1000, "p99_ms_at_max")
}
