package mirror

import (
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/internal/testkit"
)

// BenchmarkReferenceBacklog measures how fast the healthy reference mirror
// copies a backlog: 150000 records (short values, one header) waiting in 6
// source partitions of one embedded 3-broker cluster, copied to another.
// Under a backlog every fetch/write/commit round is full, so the rate shows
// what a round costs; this bounded the embedded baseline ceiling
// (BenchmarkEmbeddedBaselineCeiling in internal/runner), which takes
// minutes where this takes seconds. It reports records per second from
// Start to the last record acknowledged by the target, and the process CPU
// per record (both clusters run in the process, so compare it between
// versions of the mirror, not with other benchmarks).
//
//	go test -run '^$' -bench ReferenceBacklog -benchtime 1x ./internal/mirror
func BenchmarkReferenceBacklog(b *testing.B) {
	const parts, per = 6, 25000
	const n = parts * per
	var wall, cpu time.Duration
	for range b.N {
		b.StopTimer()
		e := newEnv(b, parts)
		produce(b, e.src, srcTopic, []int{0, 1, 2, 3, 4, 5}, 0, per)
		m := e.mirror(b)
		b.StartTimer()
		t0, c0 := time.Now(), testkit.ProcessCPU()
		start(b, m)
		deadline := t0.Add(2 * time.Minute)
		for counter(b, e.reg, metrics.MirrorProduced) < n {
			if time.Now().After(deadline) {
				b.Fatalf("the mirror copied %v of %d records in 2 minutes", counter(b, e.reg, metrics.MirrorProduced), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		wall += time.Since(t0)
		cpu += testkit.ProcessCPU() - c0
		b.StopTimer()
		stop(b, m)
	}
	b.ReportMetric(float64(n*b.N)/wall.Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n*b.N), "cpu_ns/record")
}
