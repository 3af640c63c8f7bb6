package loadgen

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/testkit"
)

// cpuTime is this process's user+system CPU time. The embedded brokers run
// in the same process, so it includes their work; compare the figure of the
// loadgen with the bare producer's from the same run (same brokers, same
// records) to see the loadgen's own cost.
var cpuTime = testkit.ProcessCPU

// bareFranz produces n records of size bytes to topic as fast as the cluster
// acknowledges, the way a plain performance tool does (Apache Kafka's
// ProducerPerformance sends one random payload over and over): acks=all, no
// idempotence, no compression (the loadgen compresses nothing either, so the
// broker gets as many bytes from both), no linger, keys round-robin over
// streams. With encode, every value is a kmt record instead (what the
// loadgen must build per record), which isolates the client's own cost. It
// returns the wall time from the first produce to the last ack and the
// process CPU time spent.
func bareFranz(b *testing.B, bs, topic string, n, size, streams int, encode bool) (time.Duration, time.Duration) {
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
	var failed atomic.Int64
	wg.Add(n)
	value := make([]byte, size)
	for i := range value {
		value[i] = 'a' + byte(i%26)
	}
	cpu0, start := cpuTime(), time.Now()
	for i := range n {
		v := value
		if encode {
			r := wire.Record{RunID: "franz", Topic: topic, Epoch: 1, Stream: uint32(i % streams), Seq: uint64(i / streams), ProducedAt: time.Now()}
			r.Padding = Padding(size, r)
			v = wire.Append(make([]byte, 0, size), r)
		}
		cl.Produce(context.Background(), &kgo.Record{Key: keys[i%streams], Value: v}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
			}
			wg.Done()
		})
	}
	wg.Wait()
	wall, cpu := time.Since(start), cpuTime()-cpu0
	if failed.Load() > 0 {
		b.Fatalf("bare franz-go producer: %d of %d records failed", failed.Load(), n)
	}
	return wall, cpu
}

func splitAddrs(bs string) []string { return strings.Split(bs, ",") }

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkLoadgenVsFranz measures, in one run on one 3-broker embedded
// cluster, the loadgen's highest acknowledged rate (acks=all) against a bare
// franz-go producer's (acks=all, no idempotence) with the same record size:
// once with a constant payload (the cluster's ceiling for a producer that
// builds nothing) and once with kmt records (the same bytes the loadgen
// sends, so the ratio is the client's own cost: pacing, ledger, metrics,
// idempotence). It also reports the process CPU nanoseconds per
// acknowledged record of each (the brokers run in the process, so compare
// the figures with each other) and the loadgen's rate error at half its
// measured ceiling. Each round runs the three back to back and its ratios
// are taken within the round; the table shows the median over the rounds,
// so a burst of load from elsewhere on a shared machine hurts one round, not
// the figure. b.N is the records per run.
//
//	go test -run '^$' -bench LoadgenVsFranz -benchtime 300000x ./loadgen
func BenchmarkLoadgenVsFranz(b *testing.B) {
	const rounds, streams = 3, 16
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			var topics []string
			for r := range rounds {
				topics = append(topics, fmt.Sprintf("lg%d", r), fmt.Sprintf("fr%d", r), fmt.Sprintf("fk%d", r))
			}
			_, bs := newCluster(b, 3, topics...)
			var lgRate, frRate, fkRate, vsFr, vsFk, lgCPU, frCPU, fkCPU []float64
			perRec := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
			for r := range rounds {
				wall, cpu := bareFranz(b, bs, fmt.Sprintf("fr%d", r), b.N, size, streams, false)
				fr := float64(b.N) / wall.Seconds()
				frRate, frCPU = append(frRate, fr), append(frCPU, perRec(cpu))
				wall, cpu = bareFranz(b, bs, fmt.Sprintf("fk%d", r), b.N, size, streams, true)
				fk := float64(b.N) / wall.Seconds()
				fkRate, fkCPU = append(fkRate, fk), append(fkCPU, perRec(cpu))
				cpu0, start := cpuTime(), time.Now()
				st, err := Run(context.Background(), Config{
					Bootstrap: bs, Topics: []string{fmt.Sprintf("lg%d", r)}, RunID: fmt.Sprintf("bench%d", r), MessageSize: size,
					Streams: streams, Count: int64(b.N), Ledger: ledger.New(), Logger: quiet(),
				})
				wall, cpu = time.Since(start), cpuTime()-cpu0
				if err != nil {
					b.Fatal(err)
				}
				if st.Acked != uint64(b.N) {
					b.Fatalf("loadgen acked %d of %d (failed %d)", st.Acked, b.N, st.Failed)
				}
				lg := float64(b.N) / wall.Seconds()
				lgRate, lgCPU = append(lgRate, lg), append(lgCPU, perRec(cpu))
				vsFr, vsFk = append(vsFr, lg/fr), append(vsFk, lg/fk)
			}
			// Rate accuracy at half the ceiling just measured: 2 s paced.
			half := median(lgRate) / 2
			st, err := Run(context.Background(), Config{
				Bootstrap: bs, Topics: []string{"lg0"}, RunID: "bench-half", MessageSize: size, Rate: half,
				Streams: streams, Duration: 2 * time.Second, Ledger: ledger.New(), Logger: quiet(),
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(100*(st.Rate()-half)/half, "rate_err_%_at_half_ceiling")
			b.ReportMetric(median(lgRate), "loadgen_msgs/s")
			b.ReportMetric(median(frRate), "franz_msgs/s")
			b.ReportMetric(median(fkRate), "franz_kmt_records_msgs/s")
			b.ReportMetric(median(vsFr), "loadgen/franz")
			b.ReportMetric(median(vsFk), "loadgen/franz_kmt_records")
			b.ReportMetric(median(lgCPU), "loadgen_cpu_ns/rec")
			b.ReportMetric(median(frCPU), "franz_cpu_ns/rec")
			b.ReportMetric(median(fkCPU), "franz_kmt_records_cpu_ns/rec")
		})
	}
}
