package validator

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
)

func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// write appends values to one partition, in order, exactly as given (a
// mirror's output, defects included).
func write(t *testing.T, addr, topic string, partition int, values ...[]byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, partition)
	if err != nil {
		t.Fatalf("dial leader %s[%d]: %v", topic, partition, err)
	}
	defer conn.Close()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Key: keyOf(v), Value: v} // the key a correct mirror keeps
	}
	if _, err := conn.WriteMessages(msgs...); err != nil {
		t.Fatalf("write %s[%d]: %v", topic, partition, err)
	}
}

func fresh(run string, stream uint32, seq uint64) []byte {
	return wire.Encode(wire.Record{RunID: run, Stream: stream, Seq: seq, ProducedAt: time.Now(), Padding: 16})
}

func counterSum(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for k, want := range labels {
				if !hasLabel(m, k, want) {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Histogram != nil:
				sum += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return sum
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == k && lp.GetValue() == v {
			return true
		}
	}
	return false
}

// TestValidatorAgainstKfake writes what a faulty mirror would write into a
// real (kfake) target topic and the source log into a source topic, and
// checks the validator's exact counts, evidence and metrics.
func TestValidatorAgainstKfake(t *testing.T) {
	const run = "it-run"
	src := newCluster(t, kfake.SeedTopics(2, "orders"))
	tgt := newCluster(t, kfake.SeedTopics(2, "orders.mirror"))
	srcAddr, tgtAddr := src.ListenAddrs()[0], tgt.ListenAddrs()[0]

	l := ledger.New()
	const streams, n = 4, 100
	for s := uint32(0); s < streams; s++ {
		for q := uint64(0); q < n; q++ {
			l.Ack(ledger.StreamKey{Topic: "orders", Stream: s}, q)
		}
	}
	l.Fail(ledger.StreamKey{Topic: "orders", Stream: 0}, n) // one failed send
	l.MarkDone()

	// Source log: everything but stream 3 seq 60 (the source lost it).
	var srcVals [2][][]byte
	for s := uint32(0); s < streams; s++ {
		for q := uint64(0); q < n; q++ {
			if s == 3 && q == 60 {
				continue
			}
			srcVals[s%2] = append(srcVals[s%2], fresh(run, s, q))
		}
	}
	write(t, srcAddr, "orders", 0, srcVals[0]...)
	write(t, srcAddr, "orders", 1, srcVals[1]...)

	// Target: the "mirror" drops stream 0 seq 10 (lost), never delivers
	// stream 1 seqs 95..99 (unseen), delivers stream 2 seq 20 twice
	// (duplicate), swaps stream 3 seqs 30/31 (reordered), corrupts stream 0
	// seq 50 (corrupt, and lost: a damaged record never counts as its
	// sequence's delivery), and the topic also holds a foreign record
	// and another run's record.
	var tv [2][][]byte
	for s := uint32(0); s < streams; s++ {
		p := s % 2
		for q := uint64(0); q < n; q++ {
			switch {
			case s == 0 && q == 10, s == 1 && q >= 95, s == 3 && q == 60:
				continue
			case s == 0 && q == 50:
				v := fresh(run, s, q)
				v[len(v)-1] ^= 1
				tv[p] = append(tv[p], v)
			case s == 2 && q == 20:
				tv[p] = append(tv[p], fresh(run, s, q), fresh(run, s, q))
			case s == 3 && q == 30:
				tv[p] = append(tv[p], fresh(run, s, 31), fresh(run, s, 30))
			case s == 3 && q == 31:
			default:
				tv[p] = append(tv[p], fresh(run, s, q))
			}
		}
	}
	tv[0] = append(tv[0], []byte("not ours at all"))
	tv[1] = append(tv[1], fresh("other-run", 1, 5))
	write(t, tgtAddr, "orders.mirror", 0, tv[0]...)
	write(t, tgtAddr, "orders.mirror", 1, tv[1]...)

	reg := prometheus.NewRegistry()
	v, err := New(Config{
		TargetBootstrap: tgtAddr, SourceBootstrap: srcAddr,
		Topics: []TopicPair{{Source: "orders", Target: "orders.mirror"}},
		RunID:  run, Ledger: l, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Stream 1 never completes, so the drain runs to its deadline.
	res, err := v.Drain(ctx, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := Counts{Produced: 401, Acked: 400, Received: 400 - 1 - 5 - 1 - 1 + 1, Lost: 2, Unseen: 5,
		Duplicate: 1, Reordered: 1, Corrupt: 1, Foreign: 1, SourceLost: 1}
	if res.Counts != want {
		t.Errorf("counts\n got %+v\nwant %+v", res.Counts, want)
	}
	if res.OtherRuns != 1 || res.Truncated != 0 || res.Streams != streams {
		t.Errorf("other runs %d truncated %d streams %d, want 1 0 %d", res.OtherRuns, res.Truncated, res.Streams, streams)
	}
	if res.DrainComplete {
		t.Errorf("drain complete although stream 1 never reached its last acked seq")
	}
	if !res.SourceChecked {
		t.Errorf("source not checked: %s", res.SourceNote)
	}
	if res.PerTopic["orders"] != want {
		t.Errorf("per topic %+v", res.PerTopic)
	}
	if e := res.Examples[CatLost]; len(e) != 2 || e[0].Stream != 0 || e[0].Seq != 10 || e[1].Seq != 50 {
		t.Errorf("lost evidence %+v, want stream 0 seq 10 and 50", e)
	}
	if e := res.Examples[CatSourceLost]; len(e) != 1 || e[0].Stream != 3 || e[0].Seq != 60 {
		t.Errorf("source_lost evidence %+v, want stream 3 seq 60", e)
	}
	if e := res.Examples[CatUnseen]; len(e) != 1 || e[0].Seq != 95 || e[0].SeqEnd != 99 {
		t.Errorf("unseen evidence %+v, want stream 1 seq 95..99", e)
	}
	// Mirror latency and the arrival timeline count first arrivals only:
	// the duplicate has its own latency figure.
	firsts := want.Received - want.Duplicate
	if res.Latency.Count != firsts || res.Latency.P50 <= 0 || res.RedeliveryLatency.Count != want.Duplicate {
		t.Errorf("latency %+v redelivery %+v, want %d and %d samples", res.Latency, res.RedeliveryLatency, firsts, want.Duplicate)
	}
	if res.FirstArrival.IsZero() || res.LastArrival.Before(res.FirstArrival) {
		t.Errorf("arrivals %v..%v", res.FirstArrival, res.LastArrival)
	}
	var arrived uint64
	for _, b := range v.Arrivals() {
		arrived += b.Count
	}
	if arrived != firsts {
		t.Errorf("arrival timeline holds %d records, want %d", arrived, firsts)
	}

	topic := map[string]string{metrics.LabelTopic: "orders"}
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{metrics.ValidatorReceived, topic, float64(want.Received)},
		{metrics.ValidatorAnomaly, map[string]string{metrics.LabelCategory: CatDuplicate}, 1},
		{metrics.ValidatorAnomaly, map[string]string{metrics.LabelCategory: CatReordered}, 1},
		{metrics.ValidatorAnomaly, map[string]string{metrics.LabelCategory: CatCorrupt}, 1},
		{metrics.ValidatorAnomaly, map[string]string{metrics.LabelCategory: CatForeign}, 1},
		{metrics.ValidatorMissing, map[string]string{metrics.LabelCategory: CatLost}, 2},
		{metrics.ValidatorMissing, map[string]string{metrics.LabelCategory: CatUnseen}, 5},
		{metrics.ValidatorMissing, map[string]string{metrics.LabelCategory: CatSourceLost}, 1},
		{metrics.ValidatorLatency, topic, float64(firsts)},
		{metrics.ValidatorLag, topic, 400 - float64(want.Received-1)},
	}
	for _, c := range checks {
		if got := counterSum(t, reg, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
}

// TestValidatorWaitsForTopicAndNewPartitions starts before the target topic
// exists, then the "mirror" creates it and later adds a partition.
func TestValidatorWaitsForTopicAndNewPartitions(t *testing.T) {
	const run = "grow-run"
	tgt := newCluster(t)
	addr := tgt.ListenAddrs()[0]
	l := ledger.New()
	for s := uint32(0); s < 2; s++ {
		for q := uint64(0); q < 20; q++ {
			l.Ack(ledger.StreamKey{Topic: "in", Stream: s}, q)
		}
	}
	l.MarkDone()
	v, err := New(Config{TargetBootstrap: addr, Topics: []TopicPair{{Source: "in", Target: "out"}}, RunID: run, Ledger: l})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cl := &kafka.Client{Addr: kafka.TCP(addr)}
	if _, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: "out", NumPartitions: 1, ReplicationFactor: 1}}}); err != nil {
		t.Fatal(err)
	}
	var first [][]byte
	for q := uint64(0); q < 10; q++ {
		first = append(first, fresh(run, 0, q), fresh(run, 1, q))
	}
	write(t, addr, "out", 0, first...)
	if _, err := cl.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: "out", Count: 2}}}); err != nil {
		t.Fatal(err)
	}
	// Keys moved: stream 1 continues in the new partition, and is read
	// there before partition 0's tail; that is not reordering.
	var p1 [][]byte
	for q := uint64(10); q < 20; q++ {
		p1 = append(p1, fresh(run, 1, q))
	}
	write(t, addr, "out", 1, p1...)
	var p0 [][]byte
	for q := uint64(10); q < 20; q++ {
		p0 = append(p0, fresh(run, 0, q))
	}
	write(t, addr, "out", 0, p0...)

	res, err := v.Drain(ctx, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := Counts{Produced: 40, Acked: 40, Received: 40}
	if res.Counts != want || !res.DrainComplete {
		t.Fatalf("counts %+v complete %v, want %+v complete", res.Counts, res.DrainComplete, want)
	}
	if res.SourceChecked || res.SourceNote == "" {
		t.Errorf("source checked %v note %q: the source reader was disabled", res.SourceChecked, res.SourceNote)
	}
}

func TestValidatorUnreachableBootstrapNamesAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	v, err := New(Config{TargetBootstrap: addr, Topics: []TopicPair{{Source: "a", Target: "b"}}, RunID: "r", Ledger: ledger.New()})
	if err != nil {
		t.Fatal(err)
	}
	err = v.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Start against %s: %v, want an error naming the address", addr, err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	ok := Config{TargetBootstrap: "127.0.0.1:1", Topics: []TopicPair{{Source: "a", Target: "b"}}, RunID: "r", Ledger: ledger.New()}
	cases := []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"no topics", func(c *Config) { c.Topics = nil }, "no topics"},
		{"bad run id", func(c *Config) { c.RunID = "a b" }, "run id"},
		{"no bootstrap", func(c *Config) { c.TargetBootstrap = " " }, "target bootstrap"},
		{"no ledger", func(c *Config) { c.Ledger = nil }, "Ledger"},
		{"ledger topic without source", func(c *Config) { c.Ledger = nil; c.LedgerTopic = "__kmt_ledger" }, "SourceBootstrap"},
		{"half pair", func(c *Config) { c.Topics = []TopicPair{{Source: "a"}} }, "Target"},
		{"one target for two sources", func(c *Config) { c.Topics = []TopicPair{{Source: "a", Target: "x"}, {Source: "b", Target: "x"}} }, "mirrors two source topics"},
		{"one source into two targets", func(c *Config) { c.Topics = []TopicPair{{Source: "a", Target: "x"}, {Source: "a", Target: "y"}} }, "two target topics"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mut(&c)
			_, err := New(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestValidatorReadsLedgerTopic is the cluster-run path: the ledger comes
// from the ledger topic on the source cluster, written by ledger.TopicWriter.
func TestValidatorReadsLedgerTopic(t *testing.T) {
	const run = "lt-run"
	src := newCluster(t, kfake.SeedTopics(1, "s"))
	tgt := newCluster(t, kfake.SeedTopics(1, "m"))
	srcAddr, tgtAddr := src.ListenAddrs()[0], tgt.ListenAddrs()[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	produced := ledger.New()
	w, err := ledger.NewTopicWriter(ctx, ledger.TopicWriterConfig{Bootstrap: srcAddr, RunID: run, Ledger: produced, Interval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var vals, srcVals [][]byte
	for q := uint64(0); q < 30; q++ {
		produced.Ack(ledger.StreamKey{Topic: "s", Stream: 7}, q)
		srcVals = append(srcVals, fresh(run, 7, q))
		if q != 12 { // the mirror loses seq 12
			vals = append(vals, fresh(run, 7, q))
		}
	}
	write(t, srcAddr, "s", 0, srcVals...)
	produced.MarkDone()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	write(t, tgtAddr, "m", 0, vals...)

	v, err := New(Config{TargetBootstrap: tgtAddr, SourceBootstrap: srcAddr, LedgerTopic: ledger.DefaultTopic,
		Topics: []TopicPair{{Source: "s", Target: "m"}}, RunID: run})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := v.Drain(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := Counts{Produced: 30, Acked: 30, Received: 29, Lost: 1}
	if res.Counts != want || !res.DrainComplete {
		t.Fatalf("counts %+v complete %v, want %+v complete", res.Counts, res.DrainComplete, want)
	}
	if !res.SourceChecked {
		t.Errorf("source not checked: %s", res.SourceNote)
	}
	if e := res.Examples[CatLost]; len(e) != 1 || e[0].Stream != 7 || e[0].Seq != 12 {
		t.Errorf("lost evidence %+v, want stream 7 seq 12", e)
	}
}

// A target topic that never appears (a mirror writing <alias>.<topic>, or
// not running): the drain ends unread, the result names the missing topic,
// and the verdict is incomplete with what to check, not "raise the drain".
func TestMissingTargetTopicIsNamed(t *testing.T) {
	tgt := newCluster(t)
	l := ledger.New()
	l.Ack(ledger.StreamKey{Topic: "in", Stream: 0}, 0)
	l.MarkDone()
	v, err := New(Config{TargetBootstrap: tgt.ListenAddrs()[0], Topics: []TopicPair{{Source: "in", Target: "nowhere"}}, RunID: "miss", Ledger: l})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := v.Drain(ctx, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !res.TargetUnread || !strings.Contains(res.TargetMissing, `"nowhere" does not exist on the target cluster`) {
		t.Fatalf("unread %v, missing %q: want the missing topic named", res.TargetUnread, res.TargetMissing)
	}
	rep := &report.Report{}
	ApplyResult(rep, res)
	if rep.Verdict != report.Incomplete || !strings.Contains(rep.Error, "check the target topic name") {
		t.Fatalf("verdict %q error %q", rep.Verdict, rep.Error)
	}
}
