package loadgen

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
)

// BenchmarkLoadgenRateAccuracy runs at fixed target rates for 2 s and
// reports how far the achieved send rate is from the target (the goal is
// within 2% when the cluster keeps up). Printed, not asserted: this machine
// is shared and noisy.
//
//	go test -run XXX -bench LoadgenRateAccuracy -benchtime 1x ./loadgen
func BenchmarkLoadgenRateAccuracy(b *testing.B) {
	for _, rate := range []float64{100, 1000, 10000} {
		b.Run(fmt.Sprintf("rate=%g", rate), func(b *testing.B) {
			_, bs := newCluster(b, 3, "orders")
			var worst float64
			for i := range b.N {
				led := ledger.New()
				st, err := Run(context.Background(), Config{
					Bootstrap: bs, Topics: []string{"orders"}, RunID: fmt.Sprintf("acc-%d", i), Rate: rate, MessageSize: 200,
					Streams: 8, Duration: 2 * time.Second, Ledger: led, Logger: quiet(),
				})
				if err != nil {
					b.Fatal(err)
				}
				errPct := 100 * (st.Rate() - rate) / rate
				if math.Abs(errPct) > math.Abs(worst) {
					worst = errPct
				}
				if st.Skipped > 0 || st.Failed > 0 {
					b.Logf("rate %g: skipped %d, failed %d: the cluster did not keep up", rate, st.Skipped, st.Failed)
				}
			}
			b.ReportMetric(worst, "rate_err_%")
		})
	}
}
