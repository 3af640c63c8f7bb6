package ledger

import (
	"fmt"
	"sync"
	"testing"
)

func TestLedgerOperations(t *testing.T) {
	a := StreamKey{Topic: "orders", Stream: 1}
	b := StreamKey{Topic: "orders", Stream: 0}
	c := StreamKey{Topic: "alpha", Stream: 9}
	type op func(*Ledger)
	cases := []struct {
		name          string
		ops           []op
		acked, failed uint64
		view          string // View output in order
		lastA         string // LastAcked(a)
	}{
		{"empty", nil, 0, 0, "", "-"},
		{"acks merge into one range", []op{
			func(l *Ledger) { l.Ack(a, 0); l.Ack(a, 1); l.Ack(a, 2) },
		}, 3, 0, "orders/1 [0-2] []", "2"},
		{"fail and ack kept apart; duplicates count once", []op{
			func(l *Ledger) { l.Ack(a, 5); l.Ack(a, 5); l.Fail(a, 6); l.Fail(a, 6) },
		}, 1, 1, "orders/1 [5] [6]", "5"},
		{"a retried sequence is in both", []op{
			func(l *Ledger) { l.Fail(a, 3); l.Ack(a, 3) },
		}, 1, 1, "orders/1 [3] [3]", "3"},
		{"view sorted by topic then stream", []op{
			func(l *Ledger) { l.Ack(a, 1); l.Ack(b, 2); l.Ack(c, 3) },
		}, 3, 0, "alpha/9 [3] []|orders/0 [2] []|orders/1 [1] []", "1"},
		{"add ranges merges with acks", []op{
			func(l *Ledger) { l.Ack(a, 10) },
			func(l *Ledger) { l.AddRanges(a, rs(0, 9, 20, 29), rs(11, 11)) },
		}, 21, 1, "orders/1 [0-10 20-29] [11]", "29"},
		{"last acked absent for a failed-only stream", []op{
			func(l *Ledger) { l.Fail(a, 0) },
		}, 0, 1, "orders/1 [] [0]", "-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := New()
			for _, o := range tc.ops {
				o(l)
			}
			acked, failed := l.Totals()
			if acked != tc.acked || failed != tc.failed {
				t.Errorf("totals %d/%d, want %d/%d", acked, failed, tc.acked, tc.failed)
			}
			var view string
			l.View(func(k StreamKey, s *Stream) {
				if view != "" {
					view += "|"
				}
				view += fmt.Sprintf("%s/%d %s %s", k.Topic, k.Stream, s.Acked.String(), s.Failed.String())
			})
			if view != tc.view {
				t.Errorf("view %q, want %q", view, tc.view)
			}
			last := "-"
			if v, ok := l.LastAcked(a); ok {
				last = fmt.Sprint(v)
			}
			if last != tc.lastA {
				t.Errorf("LastAcked %s, want %s", last, tc.lastA)
			}
			if l.Done() {
				t.Error("done before MarkDone")
			}
			l.MarkDone()
			if !l.Done() {
				t.Error("not done after MarkDone")
			}
		})
	}
}

func TestLedgerAckedLookup(t *testing.T) {
	l := New()
	k := StreamKey{Topic: "t", Stream: 2}
	l.Ack(k, 4)
	l.Fail(k, 5)
	for _, tc := range []struct {
		k    StreamKey
		seq  uint64
		want bool
	}{{k, 4, true}, {k, 5, false}, {k, 3, false}, {StreamKey{Topic: "t", Stream: 3}, 4, false}, {StreamKey{Topic: "u", Stream: 2}, 4, false}} {
		if got := l.Acked(tc.k, tc.seq); got != tc.want {
			t.Errorf("Acked(%v, %d) = %v, want %v", tc.k, tc.seq, got, tc.want)
		}
	}
}

// Completions arrive from many producer goroutines at once; run with -race.
func TestLedgerConcurrentUse(t *testing.T) {
	l := New()
	const workers, per = 8, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := StreamKey{Topic: "t", Stream: uint32(w % 3)}
			for i := range per {
				seq := uint64(w*per + i)
				if i%10 == 0 {
					l.Fail(k, seq)
				} else {
					l.Ack(k, seq)
				}
				if i%50 == 0 {
					l.Totals()
					l.View(func(StreamKey, *Stream) {})
				}
			}
		}()
	}
	wg.Wait()
	acked, failed := l.Totals()
	if acked != workers*per*9/10 || failed != workers*per/10 {
		t.Fatalf("totals %d/%d, want %d/%d", acked, failed, workers*per*9/10, workers*per/10)
	}
}

// Sends never answered are failed, so every sent sequence has exactly one
// outcome: acked 0-2 and 5, failed 3, never answered 4 and 6-9.
func TestFailUnanswered(t *testing.T) {
	l := New()
	k := StreamKey{Topic: "t", Stream: 1, Epoch: 7}
	for _, q := range []uint64{0, 1, 2, 5} {
		l.Ack(k, q)
	}
	l.Fail(k, 3)
	if n := l.FailUnanswered(k, 10); n != 5 {
		t.Fatalf("FailUnanswered added %d, want 5 (4, 6, 7, 8, 9)", n)
	}
	var acked, failed uint64
	l.View(func(_ StreamKey, s *Stream) { acked, failed = s.Acked.Len(), s.Failed.Len() })
	if acked != 4 || failed != 6 {
		t.Fatalf("acked %d failed %d, want 4 and 6", acked, failed)
	}
	if n := l.FailUnanswered(k, 10); n != 0 {
		t.Fatalf("second call added %d, want 0", n)
	}
	if n := l.FailUnanswered(StreamKey{Topic: "t", Stream: 2}, 0); n != 0 {
		t.Fatalf("nothing sent: added %d", n)
	}
}

// TestHandleRecordsLikeTheLedger: acks and fails through Handles, from many
// goroutines and beside direct Ledger calls on the same streams, land in
// the same streams as Ledger.Ack/Fail; a handle that never recorded adds no
// stream.
func TestHandleRecordsLikeTheLedger(t *testing.T) {
	l := New()
	const workers, per = 6, 400
	handles := []*Handle{l.Handle(StreamKey{Topic: "t", Stream: 0}), l.Handle(StreamKey{Topic: "t", Stream: 1, Epoch: 2})}
	unused := l.Handle(StreamKey{Topic: "never", Stream: 9})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := handles[w%2]
			for i := range per {
				seq := uint64(w/2*per + i)
				switch {
				case i%10 == 0:
					h.Fail(seq)
				case i%7 == 0:
					l.Ack(h.k, seq) // the same stream, by key
				default:
					h.Ack(seq)
				}
			}
		}()
	}
	wg.Wait()
	_ = unused
	var got string
	l.View(func(k StreamKey, s *Stream) {
		got += fmt.Sprintf("%s/%d/%d %s %s; ", k.Topic, k.Stream, k.Epoch, s.Acked.String(), s.Failed.String())
	})
	// Per stream: 3 workers × 400 sequences, 0-1199; every tenth failed.
	acked, failed := l.Totals()
	if acked != 2*1200*9/10 || failed != 2*1200/10 {
		t.Fatalf("totals %d/%d, want %d/%d: %s", acked, failed, 2*1200*9/10, 2*1200/10, got)
	}
	n := 0
	l.View(func(StreamKey, *Stream) { n++ })
	if n != 2 {
		t.Fatalf("%d streams in the ledger, want 2 (an unused handle adds none): %s", n, got)
	}
}
