package runner

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
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
//
// CEILING_RATES (comma-separated msgs/s) replaces the rates tried, so one
// rate can be profiled alone: CEILING_RATES=20000 with -cpuprofile. Rates
// above scenarios.MaxLocalRate, which kmt refuses on the embedded setup,
// end the list. Each rate's line gives the cores the process used over
// the load (the harness's CPU average times the usable cores).
func BenchmarkEmbeddedBaselineCeiling(b *testing.B) {
	quiet := slog.New(slog.DiscardHandler)
	rates := []float64{2000, 5000, 10000, 20000, 40000, 60000, 80000, scenarios.MaxLocalRate}
	if env := os.Getenv("CEILING_RATES"); env != "" {
		rates = rates[:0]
		for _, f := range strings.Split(env, ",") {
			r, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
			if err != nil || r <= 0 {
				b.Fatalf("CEILING_RATES=%q: %q is not a positive rate; give msgs/s separated by commas, e.g. 20000,30000", env, f)
			}
			rates = append(rates, r)
		}
	}
	var best float64
	var bestP99 float64
	for _, rate := range rates {
		if rate > scenarios.MaxLocalRate {
			b.Logf("rate %6.0f: not tried, kmt refuses rates above scenarios.MaxLocalRate (%d) on the embedded setup", rate, scenarios.MaxLocalRate)
			break
		}
		rep, err := Run(context.Background(), Options{
			Scenario: "baseline", Short: true, Rate: rate, Duration: 10 * time.Second,
			ReportDir: b.TempDir(), Logger: quiet, Registry: prometheus.NewRegistry(),
		})
		if err != nil {
			b.Fatalf("rate %g: %v", rate, err)
		}
		p99 := rep.LatencySeconds.P99
		cores := 0.0
		if h := rep.Harness; h != nil {
			cores = h.CPU.Avg * float64(h.CPU.Cores)
		}
		b.Logf("rate %6.0f: verdict %s, p99 %.3fs, process %.2f cores, harness %+v, reasons %q", rate, rep.Verdict, p99, cores, rep.Harness, rep.Reasons)
		if rep.Verdict != report.Pass {
			break
		}
		best, bestP99 = rate, p99
	}
	b.ReportMetric(best, "max_passing_msgs/s")
	b.ReportMetric(bestP99*1000, "p99_ms_at_max")
}
