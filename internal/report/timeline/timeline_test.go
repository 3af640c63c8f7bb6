package timeline

import (
	"sync"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// Step turns running totals into one second: deltas, lag at its end, new
// anomalies only (a total that went down is nothing new).
func TestStep(t *testing.T) {
	prev := Sample{Produced: 100, Counts: report.Counts{Acked: 90, Received: 80, Duplicate: 2, Lost: 5, Reordered: 1}}
	cur := Sample{Produced: 250, Counts: report.Counts{Acked: 230, Received: 200, Duplicate: 5, Lost: 3, Reordered: 1, Corrupt: 1}}
	s := Step(7, prev, cur)
	if s.T != 7 || s.Produced != 150 || s.Acked != 140 || s.Lag != 230-(200-5) {
		t.Fatalf("step %+v, want t 7 produced 150 acked 140 lag 35", s)
	}
	want := map[string]uint64{"duplicate": 3, "corrupt": 1}
	if len(s.Anomalies) != len(want) {
		t.Fatalf("anomalies %v, want %v", s.Anomalies, want)
	}
	for k, v := range want {
		if s.Anomalies[k] != v {
			t.Errorf("anomalies[%s] = %d, want %d", k, s.Anomalies[k], v)
		}
	}
}

// A sampler records one second per started second since t0 (the seconds it
// fell behind on are filled at Finish), and Finish merges it into the arrivals
// timeline, the longer of the two.
func TestSamplerMerges(t *testing.T) {
	var mu sync.Mutex
	var n uint64
	t0 := time.Now().Add(-2500 * time.Millisecond)
	s := Start(t0, func() Sample {
		mu.Lock()
		defer mu.Unlock()
		n += 10
		return Sample{Produced: n, Counts: report.Counts{Acked: n}}
	})
	rep := &report.Report{Timeline: []report.Second{{T: 0, Arrivals: 5}}}
	// One second per started second since t0, whatever the machine's load:
	// the count is bounded by the time before and after Finish.
	ceilSec := func(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }
	lo := ceilSec(time.Since(t0))
	s.Finish(rep)
	hi := ceilSec(time.Since(t0))
	if rep.LoadStartedAt == nil || !rep.LoadStartedAt.Equal(t0) {
		t.Fatalf("load start %v, want %v", rep.LoadStartedAt, t0)
	}
	if len(rep.Timeline) < lo || len(rep.Timeline) > hi {
		t.Fatalf("timeline %+v: %d seconds, want %d..%d (every started second since t0)", rep.Timeline, len(rep.Timeline), lo, hi)
	}
	var prod, acked uint64
	for i, sec := range rep.Timeline {
		if sec.T != i {
			t.Errorf("second %d has t %d", i, sec.T)
		}
		prod += sec.Produced
		acked += sec.Acked
	}
	if prod != n || acked != n {
		t.Errorf("per-second produced %d acked %d add up to other than the last total %d", prod, acked, n)
	}
	if rep.Timeline[0].Arrivals != 5 {
		t.Errorf("arrivals lost in the merge: %+v", rep.Timeline[0])
	}
}
