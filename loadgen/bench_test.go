package loadgen

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/ledger"
)

// BenchmarkLoadgenMaxRate measures the highest acknowledged rate (acks=all)
// the loadgen reaches against a 3-broker kfake cluster on this machine, for
// a few message sizes. b.N is the message count of one run.
//
//	go test -run XXX -bench LoadgenMaxRate -benchtime 200000x ./loadgen
func BenchmarkLoadgenMaxRate(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			_, bs := newCluster(b, 3, "orders")
			led := ledger.New()
			b.ResetTimer()
			// Wall time around Run: Stats.Elapsed ends when sending stops,
			// before the last acks arrive.
			start := time.Now()
			st, err := Run(context.Background(), Config{
				Bootstrap: bs, Topics: []string{"orders"}, RunID: "bench", Rate: 0, MessageSize: size,
				Streams: 16, Count: int64(b.N), Ledger: led, Logger: quiet(),
			})
			wall := time.Since(start)
			b.StopTimer()
			if err != nil {
				b.Fatal(err)
			}
			if st.Acked != uint64(b.N) {
				b.Fatalf("acked %d of %d (failed %d)", st.Acked, b.N, st.Failed)
			}
			b.ReportMetric(float64(st.Acked)/wall.Seconds(), "acked_msgs/s")
			b.ReportMetric(float64(st.Acked)*float64(size)/wall.Seconds()/1e6, "acked_MB/s")
		})
	}
}

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
			for range b.N {
				led := ledger.New()
				st, err := Run(context.Background(), Config{
					Bootstrap: bs, Topics: []string{"orders"}, RunID: "acc", Rate: rate, MessageSize: 200,
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
