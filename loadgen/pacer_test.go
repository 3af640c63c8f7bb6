package loadgen

import (
	"testing"
	"time"
)

func TestPacerSteps(t *testing.T) {
	ms := time.Millisecond
	type call struct {
		elapsed     time.Duration
		sent, room  uint64
		want        Step
		wantSkipped uint64
	}
	cases := []struct {
		name     string
		rate     float64
		count    uint64
		duration time.Duration
		chunk    int
		calls    []call
	}{
		{"first record goes at t=0", 1000, 0, 0, 100, []call{{0, 0, 1000, Step{Send: 1}, 0}}},
		{"one second in: rate records due, chunked", 1000, 0, 0, 100, []call{{time.Second, 1, 1000, Step{Send: 100}, 0}}},
		{"ahead of schedule waits for the next record", 1000, 0, 0, 100, []call{{10 * ms, 11, 1000, Step{Wait: 1 * ms}, 0}}},
		{"room limits the send", 1000, 0, 0, 100, []call{{time.Second, 1, 7, Step{Send: 7}, 0}}},
		{"no room waits the most", 1000, 0, 0, 100, []call{{time.Second, 1, 0, Step{Wait: maxWait}, 0}}},
		{"more than a second behind gives up the excess", 100, 0, 0, 1000, []call{
			{5 * time.Second, 0, 1000, Step{Send: 100}, 401},
			// The schedule now counts the skipped: 501 due, 401 skipped,
			// 100 sent; record number 501 (from 0) is due at 5.01 s.
			{5 * time.Second, 100, 1000, Step{Wait: 10 * ms}, 401},
		}},
		{"unlimited rate sends a chunk", 0, 0, 0, 1000, []call{{0, 0, 5000, Step{Send: 1000}, 0}}},
		{"count caps the last step", 0, 10, 0, 1000, []call{{0, 8, 5000, Step{Send: 2}, 0}}},
		{"count reached stops", 0, 10, 0, 1000, []call{{0, 10, 5000, Step{Stop: true}, 0}}},
		{"duration reached stops", 1000, 0, time.Second, 100, []call{{time.Second, 5, 5000, Step{Stop: true}, 0}}},
		{"a wait never passes the duration", 1, 0, 1500 * ms, 100, []call{{1490 * ms, 2, 5000, Step{Wait: 10 * ms}, 0}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPacer(tc.rate, tc.count, tc.duration, tc.chunk)
			for i, c := range tc.calls {
				got := p.Next(c.elapsed, c.sent, c.room)
				if got != c.want || p.Skipped() != c.wantSkipped {
					t.Fatalf("call %d Next(%s, %d, %d) = %+v skipped %d; want %+v skipped %d", i, c.elapsed, c.sent, c.room, got, p.Skipped(), c.want, c.wantSkipped)
				}
			}
		})
	}
}

// TestPacerHoldsTheRate drives the pacer over a simulated 10 s at several
// rates with an instant producer: exactly rate*10 records are sent (those
// due at 0, 1/rate, ... up to but excluding 10 s).
func TestPacerHoldsTheRate(t *testing.T) {
	for _, rate := range []float64{1, 100, 3333, 50000} {
		p := NewPacer(rate, 0, 10*time.Second, 1000)
		var sent uint64
		el := time.Duration(0)
		for {
			s := p.Next(el, sent, 1<<40)
			if s.Stop {
				break
			}
			sent += s.Send
			if s.Send == 0 {
				el += max(s.Wait, time.Microsecond)
			}
		}
		if want := uint64(rate * 10); sent != want || p.Skipped() != 0 {
			t.Errorf("rate %g: sent %d in 10 s, want %d (skipped %d)", rate, sent, want, p.Skipped())
		}
	}
}
