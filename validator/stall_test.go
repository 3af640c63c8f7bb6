package validator

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Each case feeds one partition's end offsets, one poll per second, and
// says exactly which stall events the watchdog must report.
func TestWatchdogStalls(t *testing.T) {
	type poll struct{ src, tgt int64 }
	type want struct {
		kind            string
		start, end      int // poll index (seconds); end -1: still open
		gained, tgtOffs int64
	}
	cases := []struct {
		name  string
		after time.Duration
		polls []poll
		want  []want
	}{
		{"target keeps up", 3 * time.Second,
			[]poll{{0, 0}, {10, 8}, {20, 18}, {30, 29}, {40, 39}, {50, 50}}, nil},
		{"both idle: nothing to copy is no stall", 2 * time.Second,
			[]poll{{5, 5}, {5, 5}, {5, 5}, {5, 5}, {5, 5}}, nil},
		{"target stops while source moves: stall, never recovered", 2 * time.Second,
			[]poll{{0, 0}, {10, 10}, {20, 10}, {30, 10}, {40, 10}, {50, 10}},
			[]want{{report.StallKind, 2, -1, 40, 10}}},
		{"shorter than the threshold: no stall", 3 * time.Second,
			[]poll{{0, 0}, {10, 10}, {20, 10}, {30, 10}, {40, 40}, {50, 50}}, nil},
		{"stall that recovers", 2 * time.Second,
			[]poll{{0, 0}, {10, 10}, {20, 10}, {30, 10}, {40, 10}, {50, 45}, {60, 60}},
			[]want{{report.StallKind, 2, 5, 30, 10}}},
		{"long idle source, then load with a dead target: the stall starts with the load", 2 * time.Second,
			[]poll{{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {10, 0}, {20, 0}, {30, 0}},
			[]want{{report.StallKind, 5, -1, 30, 0}}},
		{"source stops after the target stalled: still stalled", 2 * time.Second,
			[]poll{{0, 0}, {10, 0}, {20, 0}, {20, 0}, {20, 0}},
			[]want{{report.StallKind, 1, -1, 20, 0}}},
		{"target partition missing counts as not moving", 2 * time.Second,
			[]poll{{0, -1}, {10, -1}, {20, -1}, {30, -1}},
			[]want{{report.StallKind, 1, -1, 30, 0}}},
		{"two stalls", 1 * time.Second,
			[]poll{{0, 0}, {10, 0}, {20, 0}, {30, 30}, {40, 30}, {50, 30}, {60, 60}},
			[]want{{report.StallKind, 1, 3, 20, 0}, {report.StallKind, 4, 6, 20, 30}}},
		{"end offset going backwards is a rewind", 5 * time.Second,
			[]poll{{0, 0}, {10, 10}, {20, 20}, {30, 15}, {40, 40}},
			[]want{{report.RewindKind, 3, 3, 5, 15}}},
	}
	t0 := time.Unix(1_700_000_000, 0)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := NewWatchdog(c.after)
			for i, p := range c.polls {
				w.Observe(at(i), []Progress{{Topic: "t", SourceTopic: "s", Partition: 3, Source: p.src, Target: p.tgt}})
			}
			end := at(len(c.polls) - 1)
			got := w.Report(end).Events
			if len(got) != len(c.want) {
				t.Fatalf("%d events %+v, want %d", len(got), got, len(c.want))
			}
			open := 0
			for i, g := range got {
				wn := c.want[i]
				if g.Kind != wn.kind || !g.Start.Equal(at(wn.start)) || g.SourceGained != wn.gained || g.TargetOffset != wn.tgtOffs ||
					g.Partition != 3 || g.Topic != "t" || g.SourceTopic != "s" {
					t.Errorf("event %d = %+v, want %+v", i, g, wn)
				}
				if wn.end < 0 {
					open++
					if g.Recovered || !g.End.IsZero() || g.Seconds != end.Sub(g.Start).Seconds() {
						t.Errorf("event %d = %+v, want it open until the end", i, g)
					}
				} else if !g.Recovered || !g.End.Equal(at(wn.end)) || g.Seconds != at(wn.end).Sub(g.Start).Seconds() {
					t.Errorf("event %d = %+v, want recovered at poll %d", i, g, wn.end)
				}
			}
			if open != w.Stalled() {
				t.Errorf("Stalled() = %d, want %d", w.Stalled(), open)
			}
		})
	}
}

// Partitions are watched apart: one stalled partition does not make its
// neighbours stalled, and Observe returns each event once when it begins
// and once when it ends.
func TestWatchdogPartitionsApart(t *testing.T) {
	w := NewWatchdog(time.Second)
	t0 := time.Unix(1_700_000_000, 0)
	var began, ended int
	for i := range 6 {
		src := int64(i * 10)
		var ps []Progress
		for p := range int32(3) {
			tgt := src
			if p == 1 && i >= 1 && i < 4 {
				tgt = 10 // partition 1 stands still at polls 1..3
			}
			ps = append(ps, Progress{Topic: "t", SourceTopic: "s", Partition: p, Source: src, Target: tgt})
		}
		for _, e := range w.Observe(t0.Add(time.Duration(i)*time.Second), ps) {
			if e.Recovered {
				ended++
			} else {
				began++
			}
		}
	}
	r := w.Report(t0.Add(5 * time.Second))
	if began != 1 || ended != 1 || len(r.Events) != 1 || r.Events[0].Partition != 1 || r.Partitions != 3 {
		t.Fatalf("began %d ended %d, report %+v; want one stall of partition 1 of 3 watched", began, ended, r)
	}
}

// TestJobStallWatchdogOff: a scenario with stallWatchdog: off gives the
// in-cluster validator no watchdog (threshold 0); before, any threshold
// not above 0 became the 30s default, so the watchdog could not be off.
func TestJobStallWatchdogOff(t *testing.T) {
	s, err := scenarios.Read("mirror-stall-watchdog")
	if err != nil {
		t.Fatal(err)
	}
	if got := (Job{Scenario: s}).stallAfter(); got != 2*time.Second {
		t.Fatalf("stallAfter 2s: threshold %s", got)
	}
	s.Spec.Validation.StallWatchdog = scenarios.StallWatchdogOff
	if got := (Job{Scenario: s}).stallAfter(); got != 0 {
		t.Errorf("stallWatchdog off: threshold %s, want 0 (no watchdog)", got)
	}
	if got := (Job{}).stallAfter(); got != scenarios.DefaultStallAfter {
		t.Errorf("no scenario: threshold %s, want the default %s", got, scenarios.DefaultStallAfter)
	}
}

// TestStallsAttributedToSourcePartitions: a run where stream 0 (source
// partition 0) lost seq 2 and never delivered 5..9 while stream 1 (source
// partition 1) arrived whole. The final judgement counts the 6 missing
// records in partition 0 and none in 1, and each open stall carries its
// partition's count: the stall of partition 1 (its source gained only,
// say, a commit marker) explains none of the loss and is not blamed. A
// recovered stall carries no count. Attributing by stream instead of by
// the partition the source reader read them in, or skipping unseen
// records, changes the counts.
func TestStallsAttributedToSourcePartitions(t *testing.T) {
	l := ledger.New()
	for s := uint32(0); s < 2; s++ {
		for q := uint64(0); q <= 9; q++ {
			l.Ack(ledger.StreamKey{Topic: "t", Stream: s}, q)
		}
	}
	tr := NewTracker(testRun, 10, t0)
	off := int64(0)
	for s := uint32(0); s < 2; s++ {
		for q := uint64(0); q <= 9; q++ {
			tr.ObserveSourceRecord("t", int(s), int64(q), wire.Key(s), rec(testRun, s, q), nil)
			if s == 0 && (q == 2 || q > 4) {
				continue
			}
			tr.Observe(Observation{Topic: "t", Partition: int(s), Offset: off, Key: wire.Key(s), Value: rec(testRun, s, q), ReadAt: t0.Add(time.Second), Timestamp: t0})
			off++
		}
	}
	j := tr.Judge(l, true, true)
	if j.Total.Lost != 1 || j.Total.Unseen != 5 {
		t.Fatalf("lost %d unseen %d, want 1 and 5", j.Total.Lost, j.Total.Unseen)
	}
	if want := map[SourcePartition]uint64{{"t", 0}: 6}; !reflect.DeepEqual(j.MissingBySource, want) {
		t.Errorf("missing by source partition %v, want %v", j.MissingBySource, want)
	}
	st := &report.Stalls{Events: []report.StallEvent{
		{Kind: report.StallKind, Topic: "t", SourceTopic: "t", Partition: 0},
		{Kind: report.StallKind, Topic: "t", SourceTopic: "t", Partition: 1},
		{Kind: report.StallKind, Topic: "t", SourceTopic: "t", Partition: 1, Recovered: true},
	}}
	attributeStalls(st, j.MissingBySource)
	var got []string
	for _, e := range st.Events {
		if e.MissingHere == nil {
			got = append(got, "unknown")
			continue
		}
		got = append(got, fmt.Sprint(*e.MissingHere))
	}
	if want := []string{"6", "0", "unknown"}; !reflect.DeepEqual(got, want) {
		t.Errorf("missing_here per stall %v, want %v", got, want)
	}
	// Without the source checked nothing is known.
	if j := tr.Judge(l, true, false); j.MissingBySource != nil {
		t.Errorf("source not checked: missing by source partition %v, want unknown (nil)", j.MissingBySource)
	}
}
