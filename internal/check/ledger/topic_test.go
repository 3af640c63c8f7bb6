package ledger

import (
	"context"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	bootlist "github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/intervals"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newCluster(t *testing.T, opts ...kfake.Opt) string {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(6, "orders")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// rawEntries reads the first n entries of topic, in partition order.
func rawEntries(t *testing.T, bs, topic string, n int) []Entry {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bs), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := ctxT(t, 15*time.Second)
	var out []Entry
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d entries", len(out), n)
		}
		fs.EachRecord(func(r *kgo.Record) {
			var e Entry
			if err := json.Unmarshal(r.Value, &e); err != nil {
				t.Fatalf("entry %q: %v", r.Value, err)
			}
			if string(r.Key) != e.Run {
				t.Errorf("entry of run %q keyed %q", e.Run, r.Key)
			}
			out = append(out, e)
		})
	}
	return out
}

func partitions(t *testing.T, bs, topic string) int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bs))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctxT(t, 10*time.Second), cl)
	if err != nil {
		t.Fatal(err)
	}
	return len(resp.Topics[0].Partitions)
}

func rs(pairs ...uint64) []intervals.Range {
	var out []intervals.Range
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, intervals.Range{Lo: pairs[i], Hi: pairs[i+1]})
	}
	return out
}

func TestTopicWriterPublishesOnlyNewRangesThenDone(t *testing.T) {
	bs := newCluster(t)
	l := New()
	// A long interval: this test drives every flush itself.
	w, err := NewTopicWriter(ctxT(t, 15*time.Second), TopicWriterConfig{Bootstrap: bs, RunID: "r1", Ledger: l, Interval: time.Hour, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if n := partitions(t, bs, DefaultTopic); n != 1 {
		t.Fatalf("created ledger topic has %d partitions, want 1", n)
	}
	a := StreamKey{Topic: "orders", Stream: 0}
	b := StreamKey{Topic: "orders", Stream: 1}
	for q := uint64(0); q < 10; q++ {
		l.Ack(a, q)
	}
	ctx := ctxT(t, 15*time.Second)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for q := uint64(10); q < 20; q++ {
		l.Ack(a, q)
	}
	l.Fail(a, 25)
	l.Ack(b, 3)
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	before := w.Entries()
	if err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if w.Entries() != before {
		t.Fatalf("a flush with nothing new published %d entries", w.Entries()-before)
	}
	l.MarkDone()
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{V: 2, Run: "r1", N: 0, Topic: "orders", Stream: 0, Acked: rs(0, 9)},
		{V: 2, Run: "r1", N: 1, Topic: "orders", Stream: 0, Acked: rs(10, 19), Failed: rs(25, 25)},
		{V: 2, Run: "r1", N: 2, Topic: "orders", Stream: 1, Acked: rs(3, 3)},
		{V: 2, Run: "r1", N: 3, Done: true, Entries: 3, Totals: []StreamTotal{
			{Topic: "orders", Stream: 0, Acked: 20, Failed: 1}, {Topic: "orders", Stream: 1, Acked: 1}}},
	}
	if got := rawEntries(t, bs, DefaultTopic, len(want)); !reflect.DeepEqual(got, want) {
		t.Fatalf("entries\n got %+v\nwant %+v", got, want)
	}
	got := New()
	if err := ReadTopicWith(ctx, kafkaclient.Config{Brokers: bootlist.Split(bs)}, DefaultTopic, "r1", got); err != nil {
		t.Fatal(err)
	}
	if !got.Done() {
		t.Fatal("ReadTopic returned without marking the ledger done")
	}
	assertSameLedger(t, l, got)
}

func assertSameLedger(t *testing.T, want, got *Ledger) {
	t.Helper()
	type snap struct{ Acked, Failed string }
	take := func(l *Ledger) map[StreamKey]snap {
		m := map[StreamKey]snap{}
		l.View(func(k StreamKey, s *Stream) { m[k] = snap{s.Acked.String(), s.Failed.String()} })
		return m
	}
	if w, g := take(want), take(got); !reflect.DeepEqual(w, g) {
		t.Fatalf("ledger read back\n got %v\nwant %v", g, w)
	}
}

func TestReadTopicIgnoresOtherRunsAndReadsAllPartitions(t *testing.T) {
	// A pre-existing ledger topic with 3 partitions: the writer must use it
	// as is and the reader must find the run on whichever partition its key
	// hashes to.
	bs := newCluster(t, kfake.SeedTopics(3, DefaultTopic))
	ctx := ctxT(t, 20*time.Second)
	ledgers := map[string]*Ledger{}
	for i, run := range []string{"run-a", "run-b", "run-c"} {
		l := New()
		for q := uint64(0); q < uint64(10*(i+1)); q++ {
			l.Ack(StreamKey{Topic: "orders", Stream: uint32(i)}, q)
			l.Ack(StreamKey{Topic: "payments", Stream: 7}, q*2)
		}
		w, err := NewTopicWriter(ctx, TopicWriterConfig{Bootstrap: bs, RunID: run, Ledger: l, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		l.MarkDone()
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		ledgers[run] = l
	}
	if n := partitions(t, bs, DefaultTopic); n != 3 {
		t.Fatalf("existing ledger topic now has %d partitions, want 3 (untouched)", n)
	}
	for run, want := range ledgers {
		got := New()
		if err := ReadTopicWith(ctx, kafkaclient.Config{Brokers: bootlist.Split(bs)}, "", run, got); err != nil {
			t.Fatal(err)
		}
		assertSameLedger(t, want, got)
	}
}

func TestReadTopicWithoutDoneFailsWhenCtxEnds(t *testing.T) {
	bs := newCluster(t)
	l := New()
	l.Ack(StreamKey{Topic: "orders", Stream: 0}, 0)
	w, err := NewTopicWriter(ctxT(t, 10*time.Second), TopicWriterConfig{Bootstrap: bs, RunID: "live", Ledger: l, Interval: time.Hour, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close(context.Background()) })
	if err := w.Flush(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	got := New()
	err = ReadTopicWith(ctxT(t, 1500*time.Millisecond), kafkaclient.Config{Brokers: bootlist.Split(bs)}, DefaultTopic, "live", got)
	if err == nil || !strings.Contains(err.Error(), `"live"`) || !strings.Contains(err.Error(), "read 1 entries") {
		t.Fatalf("err %v, want a timeout naming the run and what was read", err)
	}
	if got.Done() {
		t.Fatal("ledger marked done without a done entry")
	}
	if !got.Acked(StreamKey{Topic: "orders", Stream: 0}, 0) {
		t.Fatal("entries read before the timeout were not merged")
	}
}

func TestTopicWriterFlushesPeriodicallyAndSplitsLargeEntries(t *testing.T) {
	bs := newCluster(t)
	l := New()
	k := StreamKey{Topic: "orders", Stream: 3}
	// Every other sequence: 2.5 entries' worth of ranges.
	const n = maxRangesPerEntry*5/2 + 1
	for q := uint64(0); q < n; q++ {
		l.Ack(k, 2*q)
		l.Fail(k, 2*q+1)
	}
	w, err := NewTopicWriter(ctxT(t, 10*time.Second), TopicWriterConfig{Bootstrap: bs, RunID: "big", Ledger: l, Interval: 20 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for w.Entries() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if w.Entries() == 0 {
		t.Fatal("the periodic flush never published anything")
	}
	l.MarkDone()
	ctx := ctxT(t, 15*time.Second)
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}
	es := rawEntries(t, bs, DefaultTopic, int(w.Entries()))
	for _, e := range es {
		if len(e.Acked)+len(e.Failed) > maxRangesPerEntry {
			t.Fatalf("entry with %d ranges, limit %d", len(e.Acked)+len(e.Failed), maxRangesPerEntry)
		}
	}
	if len(es) < 5 {
		t.Fatalf("%d entries for %d ranges, want them split", len(es), 2*n)
	}
	got := New()
	if err := ReadTopicWith(ctx, kafkaclient.Config{Brokers: bootlist.Split(bs)}, DefaultTopic, "big", got); err != nil {
		t.Fatal(err)
	}
	assertSameLedger(t, l, got)
}

func TestTopicWriterConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  TopicWriterConfig
		want string
	}{
		{"no ledger", TopicWriterConfig{Bootstrap: "127.0.0.1:1", RunID: "r"}, "Ledger is nil"},
		{"no run", TopicWriterConfig{Bootstrap: "127.0.0.1:1", Ledger: New()}, "RunID"},
		{"no bootstrap", TopicWriterConfig{Bootstrap: ",", RunID: "r", Ledger: New()}, "bootstrap"},
		{"unreachable", TopicWriterConfig{Bootstrap: "127.0.0.1:1", RunID: "r", Ledger: New()}, "127.0.0.1:1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewTopicWriter(ctxT(t, 12*time.Second), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
