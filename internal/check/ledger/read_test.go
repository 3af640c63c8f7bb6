package ledger

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// writeEpoch publishes a ledger of one loadgen instance (epoch) with acked
// and failed sequences of stream 0 of "orders", and its Done entry.
func writeEpoch(t *testing.T, bs, run string, epoch uint32, acked, failed int, done bool) *Ledger {
	t.Helper()
	ctx := ctxT(t, 15*time.Second)
	l := New()
	k := StreamKey{Topic: "orders", Stream: 0, Epoch: epoch}
	for q := range acked + failed {
		if q < acked {
			l.Ack(k, uint64(q))
		} else {
			l.Fail(k, uint64(q))
		}
	}
	w, err := NewTopicWriter(ctx, TopicWriterConfig{Bootstrap: bs, RunID: run, Epoch: epoch, Ledger: l, Interval: time.Hour, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if done {
		l.MarkDone()
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
	} else {
		if err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close(context.Background()) })
	}
	return l
}

// TestReadTopicDoesNotStopAtTheFirstDone: a run id used by two loadgen
// instances (epochs 1 and 2) is read whole: both epochs' streams, with
// their exact counts; while the second instance has no Done entry yet the
// reader keeps waiting (it would have returned at epoch 1's Done before).
func TestReadTopicDoesNotStopAtTheFirstDone(t *testing.T) {
	bs := newCluster(t)
	writeEpoch(t, bs, "twice", 1, 10, 0, true)
	writeEpoch(t, bs, "twice", 2, 5, 2, false)
	early := New()
	if err := ReadTopic(ctxT(t, 1500*time.Millisecond), bs, nil, "", "twice", early); err == nil || !strings.Contains(err.Error(), "1 of 2 loadgen instances done") {
		t.Fatalf("err %v, want a timeout saying 1 of 2 instances are done", err)
	}
	if early.Done() {
		t.Fatal("ledger marked done while epoch 2 has no done entry")
	}

	bs2 := newCluster(t)
	writeEpoch(t, bs2, "twice", 1, 10, 0, true)
	writeEpoch(t, bs2, "twice", 2, 5, 2, true)
	got := New()
	if err := ReadTopic(ctxT(t, 15*time.Second), bs2, nil, "", "twice", got); err != nil {
		t.Fatal(err)
	}
	want := map[uint32][2]uint64{1: {10, 0}, 2: {5, 2}}
	n := 0
	got.View(func(k StreamKey, s *Stream) {
		n++
		if w := want[k.Epoch]; s.Acked.Len() != w[0] || s.Failed.Len() != w[1] {
			t.Errorf("%+v: acked %d failed %d, want %d %d", k, s.Acked.Len(), s.Failed.Len(), w[0], w[1])
		}
	})
	if n != 2 || len(got.Problems()) != 0 {
		t.Fatalf("%d streams (want 2), problems %q (want none)", n, got.Problems())
	}
}

// TestReadTopicLedgerThatDoesNotAddUp: entries written by hand; exactly the
// inconsistent ledgers get problems, each naming what differs.
func TestReadTopicLedgerThatDoesNotAddUp(t *testing.T) {
	data := func(n uint64, lo, hi uint64) Entry {
		return Entry{V: EntryVersion, Run: "r", Epoch: 7, N: n, Topic: "orders", Stream: 0, Acked: rs(lo, hi)}
	}
	done := func(entries, acked uint64) Entry {
		return Entry{V: EntryVersion, Run: "r", Epoch: 7, N: entries, Done: true, Entries: entries,
			Totals: []StreamTotal{{Topic: "orders", Stream: 0, Acked: acked}}}
	}
	cases := []struct {
		name    string
		entries []Entry
		want    []string // one substring per expected problem
	}{
		{"adds up", []Entry{data(0, 0, 9), data(1, 10, 19), done(2, 20)}, nil},
		{"a retried entry written twice", []Entry{data(0, 0, 9), data(0, 0, 9), data(1, 10, 19), done(2, 20)}, nil},
		{"an entry missing", []Entry{data(0, 0, 9), data(2, 20, 29), done(3, 30)}, []string{"counts 3 data entries, the topic holds 2", "says 30 acked, 0 failed and 0 aborted, the entries add up to 20 acked"}},
		// totals and count add up, but entry 1 is missing and a stray
		// index 3 took its place
		{"an entry missing, a stray index in its place", []Entry{data(0, 0, 9), data(2, 10, 19), data(3, 20, 29), done(3, 30)},
			[]string{"counts 3 data entries, the topic holds 3 (indices [0 2-3])"}},
		{"a total that differs", []Entry{data(0, 0, 9), done(1, 11)}, []string{"says 11 acked, 0 failed and 0 aborted, the entries add up to 10 acked"}},
		// transactional load: aborted sequences are carried and counted
		{"aborted ranges add up", []Entry{data(0, 0, 9), {V: EntryVersion, Run: "r", Epoch: 7, N: 1, Topic: "orders", Stream: 0, Aborted: rs(10, 14)},
			{V: EntryVersion, Run: "r", Epoch: 7, N: 2, Done: true, Entries: 2, Totals: []StreamTotal{{Topic: "orders", Stream: 0, Acked: 10, Aborted: 5}}}}, nil},
		{"an aborted entry missing", []Entry{data(0, 0, 9),
			{V: EntryVersion, Run: "r", Epoch: 7, N: 1, Done: true, Entries: 1, Totals: []StreamTotal{{Topic: "orders", Stream: 0, Acked: 10, Aborted: 5}}}},
			[]string{"says 10 acked, 0 failed and 5 aborted, the entries add up to 10 acked, 0 failed and 0 aborted"}},
		{"a stream the done entry does not know", []Entry{data(0, 0, 9), {V: EntryVersion, Run: "r", Epoch: 7, N: 1, Topic: "orders", Stream: 3, Acked: rs(0, 0)}, done(2, 10)},
			[]string{"stream orders/3 (loadgen epoch 7): its done entry says 0 acked"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bs := newCluster(t, kfake.SeedTopics(1, DefaultTopic))
			produceEntries(t, bs, tc.entries)
			got := New()
			if err := ReadTopic(ctxT(t, 15*time.Second), bs, nil, "", "r", got); err != nil {
				t.Fatal(err)
			}
			ps := got.Problems()
			if len(ps) != len(tc.want) {
				t.Fatalf("problems %q, want %d", ps, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(ps[i], w) {
					t.Errorf("problem %d = %q, want it to contain %q", i, ps[i], w)
				}
			}
		})
	}
}

func produceEntries(t *testing.T, bs string, es []Entry) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bs))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, e := range es {
		b, _ := json.Marshal(e)
		if err := cl.ProduceSync(ctxT(t, 10*time.Second), &kgo.Record{Topic: DefaultTopic, Key: []byte(e.Run), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRunExists: no topic, another run's entries, then this run's.
func TestRunExists(t *testing.T) {
	bs := newCluster(t)
	ctx := ctxT(t, 20*time.Second)
	check := func(run string, want bool) {
		t.Helper()
		got, err := RunExists(ctx, bs, nil, "", run)
		if err != nil || got != want {
			t.Fatalf("RunExists(%q) = %v, %v; want %v", run, got, err, want)
		}
	}
	check("a", false) // no ledger topic yet
	writeEpoch(t, bs, "other", 1, 3, 0, true)
	check("a", false)
	writeEpoch(t, bs, "a", 1, 3, 0, false)
	check("a", true)
}
