package validator

import (
	"context"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kmt-dev/kafka-mirror-tester/internal/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/wire"
)

const (
	benchRun        = "bench"
	benchPartitions = 2
	benchStreams    = 16
	benchRecords    = 100_000 // total, spread over the streams
)

// filledTopic starts a kfake cluster holding benchRecords wire records in
// topic "t" (what a healthy mirror would have written) and the matching
// ledger.
func filledTopic(b *testing.B) (addr string, l *ledger.Ledger) {
	b.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(benchPartitions, "t"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	addr = c.ListenAddrs()[0]
	l = ledger.New()
	ctx := context.Background()
	per := benchRecords / benchStreams
	for p := 0; p < benchPartitions; p++ {
		conn, err := kafka.DialLeader(ctx, "tcp", addr, "t", p)
		if err != nil {
			b.Fatal(err)
		}
		var batch []kafka.Message
		for s := uint32(p); s < benchStreams; s += benchPartitions {
			for q := 0; q < per; q++ {
				batch = append(batch, kafka.Message{Value: wire.Encode(wire.Record{RunID: benchRun, Stream: s, Seq: uint64(q), ProducedAt: time.Now(), Padding: 100})})
				l.Ack(ledger.StreamKey{Topic: "t", Stream: s}, uint64(q))
				if len(batch) == 1000 {
					if _, err := conn.WriteMessages(batch...); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
		}
		if len(batch) > 0 {
			if _, err := conn.WriteMessages(batch...); err != nil {
				b.Fatal(err)
			}
		}
		conn.Close()
	}
	l.MarkDone()
	return addr, l
}

// bareRead reads every partition of "t" to its end with plain kafka-go
// readers (one per partition, no group): the ceiling the validator is
// compared with.
func bareRead(b *testing.B, addr string) int {
	var wg sync.WaitGroup
	counts := make([]int, benchPartitions)
	for p := 0; p < benchPartitions; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: []string{addr}, Topic: "t", Partition: p,
				MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 200 * time.Millisecond})
			defer r.Close()
			want := benchRecords / benchPartitions
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			for counts[p] < want {
				if _, err := r.ReadMessage(ctx); err != nil {
					b.Error(err)
					return
				}
				counts[p]++
			}
		}(p)
	}
	wg.Wait()
	return counts[0] + counts[1]
}

func BenchmarkBareReader(b *testing.B) {
	addr, _ := filledTopic(b)
	b.ResetTimer()
	start := time.Now()
	n := 0
	for i := 0; i < b.N; i++ {
		n += bareRead(b, addr)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkValidator verifies the pre-filled topic end to end (Start to
// Drain) and reports records/s and the ratio to a bare reader measured on
// the same topic in the same process.
func BenchmarkValidator(b *testing.B) {
	addr, l := filledTopic(b)
	bareStart := time.Now()
	bareN := bareRead(b, addr)
	bareRate := float64(bareN) / time.Since(bareStart).Seconds()
	b.ResetTimer()
	start := time.Now()
	var n uint64
	for i := 0; i < b.N; i++ {
		v, err := New(Config{TargetBootstrap: addr, Topics: []TopicPair{{Source: "t", Target: "t"}}, RunID: benchRun, Ledger: l, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		if err := v.Start(ctx); err != nil {
			b.Fatal(err)
		}
		res, err := v.Drain(ctx, time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if !res.DrainComplete || res.Counts.Received != benchRecords || res.Counts.Lost+res.Counts.Unseen != 0 {
			b.Fatalf("validator verdict on a clean topic: %+v complete %v", res.Counts, res.DrainComplete)
		}
		n += res.Counts.Received
	}
	rate := float64(n) / time.Since(start).Seconds()
	b.ReportMetric(rate, "records/s")
	b.ReportMetric(bareRate, "bare_records/s")
	b.ReportMetric(rate/bareRate, "ratio_vs_bare")
}

// BenchmarkTrackerMemory feeds 10 million records (100 streams, in order,
// with a duplicate and a gap every 100k) straight to a Tracker and reports
// the heap it keeps per record: interval sets make it near zero.
func BenchmarkTrackerMemory(b *testing.B) {
	total := 10_000_000
	if testing.Short() {
		total = 1_000_000
	}
	const streams = 100
	for i := 0; i < b.N; i++ {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		base := time.Now()
		tr := NewTracker(benchRun, 5, base)
		buf := make([]byte, 0, 256)
		var offs [4]int64 // per partition: offsets are contiguous there
		for k := 0; k < total; k++ {
			s := uint32(k % streams)
			q := uint64(k / streams)
			if k%100_000 == 99_999 {
				continue // a gap
			}
			buf = wire.Append(buf[:0], wire.Record{RunID: benchRun, Stream: s, Seq: q, ProducedAt: base, Padding: 64})
			p := s % 4
			tr.Observe(Observation{Topic: "t", Partition: int(p), Offset: offs[p], Value: buf, ReadAt: base.Add(time.Millisecond)})
			offs[p]++
			if k%100_000 == 50_000 { // a duplicate at a new offset
				tr.Observe(Observation{Topic: "t", Partition: int(p), Offset: offs[p], Value: buf, ReadAt: base.Add(time.Millisecond)})
				offs[p]++
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		kept := float64(after.HeapAlloc) - float64(before.HeapAlloc)
		if lat := tr.Latency(); lat.Count == 0 {
			b.Fatal("tracker saw nothing")
		}
		b.ReportMetric(kept, "heap_bytes")
		b.ReportMetric(kept/float64(total), "heap_bytes/record")
		runtime.KeepAlive(tr)
	}
}
