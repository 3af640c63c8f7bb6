package loadgen

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/wire"
)

// cpuTime is this process's user+system CPU time. The embedded brokers run
// in the same process, so it includes their work; compare the figure of the
// loadgen with the bare producer's from the same run (same brokers, same
// records) to see the loadgen's own cost.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bareFranz produces n records of size bytes to topic as fast as the cluster
// acknowledges, the way a plain performance tool does (Apache Kafka's
// ProducerPerformance sends one random payload over and over): acks=all, no
// idempotence, no compression (the loadgen compresses nothing either, so the
// broker gets as many bytes from both), no linger, keys round-robin over
// streams. It returns the wall time from the first produce to the last ack
// and the process CPU time spent.
func bareFranz(b *testing.B, bs, topic string, n, size, streams int) (time.Duration, time.Duration) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(splitAddrs(bs)...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(), kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(200000))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	keys := make([][]byte, streams)
	for s := range keys {
		keys[s] = wire.Key(uint32(s))
	}
	var wg sync.WaitGroup
	var failed int
	var mu sync.Mutex
	wg.Add(n)
	cpu0, start := cpuTime(), time.Now()
	value := make([]byte, size)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	for i := range n {
		cl.Produce(context.Background(), &kgo.Record{Key: keys[i%streams], Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				failed++
				mu.Unlock()
			}
			wg.Done()
		})
	}
	wg.Wait()
	wall, cpu := time.Since(start), cpuTime()-cpu0
	if failed > 0 {
		b.Fatalf("bare franz-go producer: %d of %d records failed", failed, n)
	}
	return wall, cpu
}

func splitAddrs(bs string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(bs); i++ {
		if i == len(bs) || bs[i] == ',' {
			if i > start {
				out = append(out, bs[start:i])
			}
			start = i + 1
		}
	}
	return out
}

// BenchmarkLoadgenVsFranz measures, in one run on one 3-broker embedded
// cluster, the loadgen's highest acknowledged rate (acks=all) against a bare
// franz-go producer's (acks=all, no idempotence) with the same record size,
// and the process CPU nanoseconds per acknowledged record of each. Each side
// runs twice, interleaved, and the better run counts, so a burst of load
// from elsewhere on a shared machine hurts both alike. b.N is the records
// per run.
//
//	go test -run '^$' -bench LoadgenVsFranz -benchtime 300000x ./loadgen
func BenchmarkLoadgenVsFranz(b *testing.B) {
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			_, bs := newCluster(b, 3, "lg1", "lg2", "fr1", "fr2")
			const streams = 16
			var bestLG, bestFR float64
			var cpuLG, cpuFR float64
			for round, topics := range [][2]string{{"lg1", "fr1"}, {"lg2", "fr2"}} {
				wall, cpu := bareFranz(b, bs, topics[1], b.N, size, streams)
				if r := float64(b.N) / wall.Seconds(); r > bestFR {
					bestFR, cpuFR = r, float64(cpu.Nanoseconds())/float64(b.N)
				}
				cpu0, start := cpuTime(), time.Now()
				st, err := Run(context.Background(), Config{
					Bootstrap: bs, Topics: []string{topics[0]}, RunID: fmt.Sprintf("bench%d", round), MessageSize: size,
					Streams: streams, Count: int64(b.N), Ledger: ledger.New(), Logger: quiet(),
				})
				wall, cpu = time.Since(start), cpuTime()-cpu0
				if err != nil {
					b.Fatal(err)
				}
				if st.Acked != uint64(b.N) {
					b.Fatalf("loadgen acked %d of %d (failed %d)", st.Acked, b.N, st.Failed)
				}
				if r := float64(b.N) / wall.Seconds(); r > bestLG {
					bestLG, cpuLG = r, float64(cpu.Nanoseconds())/float64(b.N)
				}
			}
			// Rate accuracy at half the ceiling just measured: 2 s paced.
			half := bestLG / 2
			st, err := Run(context.Background(), Config{
				Bootstrap: bs, Topics: []string{"lg1"}, RunID: "bench-half", MessageSize: size, Rate: half,
				Streams: streams, Duration: 2 * time.Second, Ledger: ledger.New(), Logger: quiet(),
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(100*(st.Rate()-half)/half, "rate_err_%_at_half_ceiling")
			b.ReportMetric(bestLG, "loadgen_msgs/s")
			b.ReportMetric(bestFR, "franz_msgs/s")
			b.ReportMetric(bestLG/bestFR, "loadgen/franz")
			b.ReportMetric(cpuLG, "loadgen_cpu_ns/rec")
			b.ReportMetric(cpuFR, "franz_cpu_ns/rec")
		})
	}
}
