package validator

import (
	"context"
	"log/slog"
	"runtime"
	"sort"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/testkit"
)

const (
	benchRun        = "bench"
	benchPartitions = 2
	benchStreams    = 16
	benchRecords    = 400_000 // total, spread over the streams
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
				batch = append(batch, kafka.Message{Key: wire.Key(s), Value: wire.Encode(wire.Record{RunID: benchRun, Topic: "t", Stream: s, Seq: uint64(q), ProducedAt: time.Now(), Padding: 100})})
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

// bareRead reads every partition of "t" to its end with a bare franz-go
// consumer at read_committed with the validator's own fetch settings
// (fetchOpts; no group, no decoding, no bookkeeping): it only counts each
// record and its bytes, as Apache Kafka's ConsumerPerformance does. It is
// the ceiling the validator is compared with, on the same topic in the same
// run. It returns the records read, the time from creating the client to
// the last record, and the process CPU time spent.
func bareRead(b *testing.B, addr string) (int, time.Duration, time.Duration) {
	cpu0, start := testkit.ProcessCPU(), time.Now()
	cl, err := kgo.NewClient(append(fetchOpts(kgo.ReadCommitted()), kgo.SeedBrokers(addr), kgo.ConsumeTopics("t"))...)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, bytes := 0, 0
	for n < benchRecords {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			b.Fatalf("bare reader read %d of %d records in a minute", n, benchRecords)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				n++
				bytes += len(r.Value)
			}
		})
	}
	if bytes == 0 {
		b.Fatal("bare reader read no bytes")
	}
	return n, time.Since(start), testkit.ProcessCPU() - cpu0
}

func BenchmarkBareReader(b *testing.B) {
	addr, _ := filledTopic(b)
	b.ResetTimer()
	start := time.Now()
	n := 0
	for i := 0; i < b.N; i++ {
		m, _, _ := bareRead(b, addr)
		n += m
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkValidator verifies the pre-filled topic and reports records/s and
// the ratio to a bare read_committed franz-go consumer reading the same
// topic in the same process with the same fetch settings. Both are timed
// from creating their client to having taken in the last record (the
// validator: verified it), reading the whole topic. They run in
// BENCH_ROUNDS rounds (default 5), in alternating order, and the median of
// the rounds' ratios is reported, so a busy machine slows both alike. It
// also reports the process CPU nanoseconds per record of each over the same
// windows (the broker runs in the process: their difference is the
// validator's own cost of a checked record).
func BenchmarkValidator(b *testing.B) {
	addr, l := filledTopic(b)
	var bare, val, ratio, bareCPU, valCPU []float64
	perRec := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / benchRecords }
	rounds := testkit.BenchRounds()
	for range b.N {
		for r := range rounds {
			for k := range 2 {
				if (r+k)%2 == 0 {
					n, took, cpu := bareRead(b, addr)
					bare, bareCPU = append(bare, float64(n)/took.Seconds()), append(bareCPU, perRec(cpu))
				} else {
					took, cpu := validateOnce(b, addr, l)
					val, valCPU = append(val, benchRecords/took.Seconds()), append(valCPU, perRec(cpu))
				}
			}
			ratio = append(ratio, val[len(val)-1]/bare[len(bare)-1])
		}
	}
	b.Logf("load average %s: validator/bare per round %.3f", testkit.LoadAverage(), ratio)
	med := func(v []float64) float64 { sort.Float64s(v); return v[len(v)/2] }
	b.ReportMetric(med(val), "records/s")
	b.ReportMetric(med(bare), "bare_records/s")
	b.ReportMetric(med(ratio), "ratio_vs_bare")
	b.ReportMetric(med(valCPU), "validator_cpu_ns/rec")
	b.ReportMetric(med(bareCPU), "bare_cpu_ns/rec")
}

// validateOnce runs a validator over the filled topic and returns the time
// from New to the moment it had verified every record, and the process CPU
// time over that window; the drain and verdict come after (checked, not
// timed).
func validateOnce(b *testing.B, addr string, l *ledger.Ledger) (time.Duration, time.Duration) {
	cpu0, start := testkit.ProcessCPU(), time.Now()
	v, err := New(Config{TargetBootstrap: addr, Topics: []TopicPair{{Source: "t", Target: "t"}}, RunID: benchRun, Ledger: l, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := v.Start(ctx); err != nil {
		b.Fatal(err)
	}
	deadline := start.Add(time.Minute)
	for v.Live().Received < benchRecords {
		if time.Now().After(deadline) {
			b.Fatalf("validator verified %d of %d records in a minute", v.Live().Received, benchRecords)
		}
		time.Sleep(time.Millisecond)
	}
	took, cpu := time.Since(start), testkit.ProcessCPU()-cpu0
	res, err := v.Drain(ctx, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	if !res.DrainComplete || res.Counts.Received != benchRecords || res.Counts.Lost+res.Counts.Unseen != 0 {
		b.Fatalf("validator verdict on a clean topic: %+v complete %v", res.Counts, res.DrainComplete)
	}
	return took, cpu
}

// BenchmarkTrackerMemory feeds 10 million records (100 streams, in order,
// with a duplicate and a gap every 100k) straight to a Tracker, each read
// from the source log and from the target, and reports the heap it keeps per
// record: interval sets make it O(streams + anomalies), near zero per record.
func BenchmarkTrackerMemory(b *testing.B) {
	total := 10_000_000
	if testing.Short() {
		total = 1_000_000
	}
	const streams = 100
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		base := time.Now()
		tr := NewTracker(benchRun, 5, base)
		buf := make([]byte, 0, 256)
		var offs, srcOffs [4]int64 // per partition: offsets are contiguous there
		keys := make([][]byte, streams)
		for s := range keys {
			keys[s] = wire.Key(uint32(s))
		}
		for k := 0; k < total; k++ {
			s := uint32(k % streams)
			q := uint64(k / streams)
			if k%100_000 == 99_999 {
				continue // a gap
			}
			buf = wire.Append(buf[:0], wire.Record{RunID: benchRun, Topic: "t", Stream: s, Seq: q, ProducedAt: base, Padding: 64})
			p := s % 4
			tr.ObserveSource("t", int(p), srcOffs[p], buf)
			srcOffs[p]++
			tr.Observe(Observation{Topic: "t", Partition: int(p), Offset: offs[p], Key: keys[s], Value: buf, ReadAt: base.Add(time.Millisecond)})
			offs[p]++
			if k%100_000 == 50_000 { // a duplicate at a new offset
				tr.Observe(Observation{Topic: "t", Partition: int(p), Offset: offs[p], Key: keys[s], Value: buf, ReadAt: base.Add(time.Millisecond)})
				offs[p]++
			}
		}
		if lat := tr.Latency(); lat.Count == 0 {
			b.Fatal("tracker saw nothing")
		}
		// What the tracker keeps: the heap with it alive minus the heap
		// once it is released (robust to garbage left by others).
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(tr)
		tr = nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		kept := float64(after.HeapAlloc) - float64(before.HeapAlloc)
		b.ReportMetric(kept, "heap_bytes")
		b.ReportMetric(kept/float64(total), "heap_bytes/record")
	}
}

// BenchmarkVerifyRecord is the validator's CPU cost of one target record
// (decode, checksum, padding, identity, tracker), without Kafka: ns/op is
// what a user sizes the validator pod by.
func BenchmarkVerifyRecord(b *testing.B) {
	const streams = 64
	base := time.Now()
	vals := make([][]byte, 4096)
	// fill encodes the pass-th batch: every record a first arrival (the
	// common case), never a re-delivery of an earlier pass.
	fill := func(pass int) {
		for i := range vals {
			seq := uint64(pass*len(vals)/streams + i/streams)
			vals[i] = wire.Encode(wire.Record{RunID: benchRun, Topic: "t", Stream: uint32(i % streams), Seq: seq, ProducedAt: base, Padding: 100})
		}
	}
	fill(0)
	tr := NewTracker(benchRun, 5, base)
	var dec wire.Decoder
	keys := make([][]byte, streams)
	for s := range keys {
		keys[s] = wire.Key(uint32(s))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := i % len(vals)
		if k == 0 && i > 0 {
			b.StopTimer() // encoding is the loadgen's cost, not the validator's
			fill(i / len(vals))
			b.StartTimer()
		}
		o := Observation{Topic: "t", Partition: 0, Offset: int64(i), Key: keys[k%streams], Value: vals[k], ReadAt: base}
		rec, err := dec.Decode(o.Value)
		tr.ObserveDecoded(&o, &rec, err)
	}
}

// BenchmarkObserveTarget is the validator's CPU cost of one target record
// on its real path without Kafka: records as the reader gets them from a
// poll (one contiguous buffer, the kmt header on each), fed to observeTarget
// (decode, checksum, padding, identity, tracker, metrics) in polls of 4096.
// ns/op is the cost of one record; every record is a first arrival. b.N
// records are encoded before the timer starts.
func BenchmarkObserveTarget(b *testing.B) {
	const streams, poll = 16, 4096
	l := ledger.New()
	v, err := New(Config{TargetBootstrap: "127.0.0.1:1", Topics: []TopicPair{{Source: "t", Target: "t"}}, RunID: benchRun, Ledger: l, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	base := time.Now()
	v.tr = NewTracker(benchRun, 5, base)
	v.tr.JudgeOrderBySequence()
	keys := make([][]byte, streams)
	for s := range keys {
		keys[s] = wire.Key(uint32(s))
	}
	buf := make([]byte, 0, b.N*180)
	recs := make([]kgo.Record, b.N)
	ptrs := make([]*kgo.Record, b.N)
	for i := range recs {
		s := uint32(i % streams)
		at := len(buf)
		buf = wire.Append(buf, wire.Record{RunID: benchRun, Topic: "t", Stream: s, Seq: uint64(i / streams), ProducedAt: base, Padding: 100})
		val := buf[at:len(buf):len(buf)]
		recs[i] = kgo.Record{Key: keys[s], Value: val, Offset: int64(i), Timestamp: base,
			Headers: []kgo.RecordHeader{{Key: wire.HeaderKey, Value: wire.HeaderValue(val)}}}
		ptrs[i] = &recs[i]
	}
	var dec wire.Decoder
	now := base.Add(time.Millisecond)
	b.ReportAllocs()
	b.ResetTimer()
	for from := 0; from < b.N; from += poll {
		v.observeTarget(kgo.FetchTopicPartition{Topic: "t", FetchPartition: kgo.FetchPartition{Partition: 0, Records: ptrs[from:min(from+poll, b.N)]}}, &dec, now)
	}
	b.StopTimer()
	if got := v.tr.Judge(l, false, false).Total.Received; got != uint64(b.N) {
		b.Fatalf("tracker received %d of %d", got, b.N)
	}
}
