package validator

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/intervals"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// TestCompactedAwayRule: on a compacted source topic, an acked record
// missing at the target is excused (counted truncated) only when the
// source log no longer holds it and holds a later record of its key; one
// the source still holds is lost, and on a topic not compacted nothing is
// excused. Stream 0 acked 0..9; the mirror delivered only seq 9; stream 1
// acked 0..9 (tombstones every 5th), the target got 0..3.
func TestCompactedAwayRule(t *testing.T) {
	fid := &scenarios.Fidelity{TombstoneEvery: 5, Compacted: true}
	build := func(compacted bool, held map[uint32][]uint64) (Judgement, *Tracker, *ledger.Ledger) {
		l := compactedLedger()
		tr := compactedTracker(fid, compacted, held, func(int) bool { return true }, true)
		return tr.Judge(l, true, true), tr, l
	}
	// The cleaner kept seq 5 and 9 of stream 0 (5 not yet cleaned) and
	// 8, 9 of stream 1.
	held := map[uint32][]uint64{0: {5, 9}, 1: {8, 9}}
	j, tr, l := build(true, held)
	// stream 0: 0..4, 6..8 compacted away (8), 5 lost; stream 1: 4..7
	// compacted away (4), 8 and 9 (above the highest seen, 3) unseen.
	if j.Truncated != 12 || j.Total.Lost != 1 || j.Total.Unseen != 2 || j.Total.SourceLost != 0 {
		t.Errorf("compacted: truncated %d lost %d unseen %d source_lost %d, want 12, 1, 2, 0", j.Truncated, j.Total.Lost, j.Total.Unseen, j.Total.SourceLost)
	}
	// Tombstones: 0:4 compacted, 0:9 arrived; 1:4 compacted, 1:9 missing.
	if tb := tr.FidelityVerdict(l).Tombstones; tb.Acked != 4 || tb.Missing != 1 {
		t.Errorf("tombstones %+v, want 4 acked, 1 missing (stream 1 seq 9)", tb)
	}
	if h := tr.FidelityVerdict(l).Compaction.SourceHeld; h == nil || *h != 4 {
		t.Errorf("source_held %v, want 4", h)
	}
	// Not compacted: nothing is excused.
	j, _, _ = build(false, held)
	if j.Truncated != 0 || j.Total.Lost != 9 || j.Total.Unseen != 6 {
		t.Errorf("not compacted: truncated %d lost %d unseen %d, want 0, 9, 6", j.Truncated, j.Total.Lost, j.Total.Unseen)
	}
}

// compactedLedger acks 0..9 of streams 0 and 1 (TestCompactedAwayRule).
func compactedLedger() *ledger.Ledger {
	l := ledger.New()
	ackRange(l, 0, 0, 9)
	ackRange(l, 1, 0, 9)
	return l
}

// compactedTracker feeds a tracker TestCompactedAwayRule's records of the
// partitions it owns (source partition = stream; every target record is in
// target partition 0) and, when scan, the final scan's held sequences.
func compactedTracker(fid *scenarios.Fidelity, compacted bool, held map[uint32][]uint64, owns func(part int) bool, scan bool) *Tracker {
	tr := NewTracker(testRun, 10, t0)
	tr.SetLoadModes(nil, fid)
	if compacted {
		tr.SetCompacted([]string{"t"})
	}
	// The source reader saw everything (it read before the cleaner).
	for s := uint32(0); s < 2; s++ {
		if !owns(int(s)) {
			continue
		}
		for q := uint64(0); q <= 9; q++ {
			o := modeObs(s, q, int64(q), "")
			if fid.IsTombstone(q) {
				o = tombObs(s, q, int64(q))
			}
			var hs []kgo.RecordHeader
			for _, h := range o.Extra {
				hs = append(hs, kgo.RecordHeader{Key: h.Key, Value: h.Value})
			}
			tr.ObserveSourceRecord("t", int(s), int64(q), o.Key, o.Value, hs)
		}
	}
	if owns(0) {
		tr.Observe(modeObs(0, 9, 0, ""))
		for q := uint64(0); q <= 3; q++ {
			tr.Observe(modeObs(1, q, int64(1+q), ""))
		}
	}
	if scan {
		final := map[ledger.StreamKey]*intervals.Set{}
		for s, seqs := range held {
			set := &intervals.Set{}
			for _, q := range seqs {
				set.Add(q)
			}
			final[ledger.StreamKey{Topic: "t", Stream: s}] = set
		}
		tr.SetSourceFinal("t", final)
	}
	return tr
}

// TestCompactedAwayRuleSharded: two shards merged judge the compacted
// topic exactly as one validator (12 truncated, 1 lost, 2 unseen): the
// merged judge knows the topic is compacted and takes shard 0's final scan
// of the whole topic. Before, the merge dropped both, so a sharded run
// excused nothing and blamed the mirror for every record the source's
// cleaner removed (lost 9, unseen 6). Breaking either the compacted topics
// or the scan in the shard state changes these counts.
func TestCompactedAwayRuleSharded(t *testing.T) {
	fid := &scenarios.Fidelity{TombstoneEvery: 5, Compacted: true}
	held := map[uint32][]uint64{0: {5, 9}, 1: {8, 9}}
	var trs []*Tracker
	for shard := 0; shard < 2; shard++ {
		// Only shard 0 scans, after its drain, every partition.
		trs = append(trs, compactedTracker(fid, true, held, func(p int) bool { return p%2 == shard }, shard == 0))
	}
	res := mergeTrackers(t, trs, compactedLedger(), true)
	if res.Truncated != 12 || res.Counts.Lost != 1 || res.Counts.Unseen != 2 || res.Counts.SourceLost != 0 {
		t.Errorf("merged: truncated %d lost %d unseen %d source_lost %d, want 12, 1, 2, 0 (as one validator)", res.Truncated, res.Counts.Lost, res.Counts.Unseen, res.Counts.SourceLost)
	}
}
