package failover

import (
	"testing"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

func reads(topic string, stream uint32, part int32, seqs []uint64, offs []int64) []Read {
	out := make([]Read, len(seqs))
	for i := range seqs {
		out[i] = Read{ID: ID{ledger.StreamKey{Topic: topic, Stream: stream, Epoch: 1}, seqs[i]}, Partition: part, Offset: offs[i]}
	}
	return out
}

func seq(a, b uint64) (s []uint64, o []int64) {
	for i := a; i <= b; i++ {
		s, o = append(s, i), append(o, int64(i))
	}
	return s, o
}

// drillCase is one drill over four partitions of topic t (stream = partition
// + 1, target offset = sequence unless said otherwise):
//
//	p0: source read 0-4 (committed 5), translated 3: the group reads 3-9
//	    on the target -> 2 re-read (3, 4); the translation went back twice,
//	    10 at most
//	p1: source read 0-4, translated 7: reads 7-10 -> 5 and 6 skipped (10 is
//	    not acknowledged: never skipped)
//	p2: the mirror wrote 4 twice (offsets 4 and 5); source read 0-3,
//	    translated 4: reads both copies -> 1 duplicate read, no re-read
//	p3: committed 4 on the source, no translation: untranslated; the
//	    group read everything again from 0 -> 4 re-read
func drillCase() Observed {
	var o Observed
	o.Acked = func(k ledger.StreamKey, s uint64) bool { return s < 10 }
	for p := int32(0); p < 4; p++ {
		st := uint32(p + 1)
		var s []uint64
		var off []int64
		switch p {
		case 1:
			s, off = seq(0, 10)
		case 2:
			s, off = seq(0, 4)
			s, off = append(s, 4), append(off, 5)
		default:
			s, off = seq(0, 9)
		}
		o.TargetLog = append(o.TargetLog, reads("t", st, p, s, off)...)
	}
	s, off := seq(0, 4)
	o.SourceReads = append(o.SourceReads, reads("t", 1, 0, s, off)...)
	o.SourceReads = append(o.SourceReads, reads("t", 2, 1, s, off)...)
	s, off = seq(0, 3)
	o.SourceReads = append(o.SourceReads, reads("t", 3, 2, s, off)...)
	o.SourceReads = append(o.SourceReads, reads("t", 4, 3, s, off)...)
	s, off = seq(3, 9)
	o.TargetReads = append(o.TargetReads, reads("t", 1, 0, s, off)...)
	s, off = seq(7, 10)
	o.TargetReads = append(o.TargetReads, reads("t", 2, 1, s, off)...)
	o.TargetReads = append(o.TargetReads, reads("t", 3, 2, []uint64{4, 4}, []int64{4, 5})...)
	s, off = seq(0, 9)
	o.TargetReads = append(o.TargetReads, reads("t", 4, 3, s, off)...)
	o.Partitions = map[TP]*Partition{
		{"t", 0}: {TargetTopic: "source.t", SourceCommitted: 5, Translated: 3, TranslatedFrom: "checkpoint", Backwards: 2, BackwardsBy: 10},
		{"t", 1}: {TargetTopic: "source.t", SourceCommitted: 5, Translated: 7, TranslatedFrom: "synced"},
		{"t", 2}: {TargetTopic: "source.t", SourceCommitted: 4, Translated: 4, TranslatedFrom: "checkpoint"},
		{"t", 3}: {TargetTopic: "source.t", SourceCommitted: 4, Translated: -1},
	}
	o.Bound, o.BoundFrom = 3, "scenario"
	return o
}

// TestJudgeCountsEachRule: exact counts per partition for each rule.
// Proven by breaking each rule once: skipped never counted -> skipped 0 vs 2;
// no duplicate-read case -> duplicate_reads 0 vs 1; untranslated requiring
// Translated < -1 -> 0 vs 1; the bound compared as >= bound+5 -> p3 (4
// re-reads, bound 3) not over; backwards not summed -> 0 vs 2.
func TestJudgeCountsEachRule(t *testing.T) {
	var out report.Failover
	Judge(drillCase(), &out)
	type want struct {
		skipped, reread, dups, backwards uint64
		untranslated, over               bool
		resumed                          int64
	}
	wants := []want{
		{0, 2, 0, 2, false, false, 3},
		{2, 0, 0, 0, false, false, 7},
		{0, 0, 1, 0, false, false, 4},
		{0, 4, 0, 0, true, true, 0},
	}
	if len(out.Partitions) != 4 {
		t.Fatalf("%d partitions, want 4: %+v", len(out.Partitions), out.Partitions)
	}
	for i, w := range wants {
		p := out.Partitions[i]
		got := want{p.Skipped, p.Reread, p.DuplicateReads, p.Backwards, p.Untranslated, p.OverBound, p.ResumedFrom}
		if got != w {
			t.Errorf("partition %d: got %+v, want %+v", i, got, w)
		}
	}
	if p := out.Partitions[1]; p.FirstSkipped == nil || *p.FirstSkipped != 5 {
		t.Errorf("partition 1 first skipped = %v, want offset 5", p.FirstSkipped)
	}
	if out.Skipped != 2 || out.Reread != 6 || out.DuplicateReads != 1 || out.Backwards != 2 || out.Untranslated != 1 {
		t.Errorf("totals skipped %d reread %d dups %d backwards %d untranslated %d; want 2 6 1 2 1", out.Skipped, out.Reread, out.DuplicateReads, out.Backwards, out.Untranslated)
	}
	if out.Verdict != report.Fail || len(out.Reasons) != 4 {
		t.Errorf("verdict %s with %d reasons %q; want fail with 4 (skipped, backwards, untranslated, over bound)", out.Verdict, len(out.Reasons), out.Reasons)
	}
}

// TestJudgePassesAnExactFailover: translation exactly at the committed
// offset, nothing skipped or read twice.
func TestJudgePassesAnExactFailover(t *testing.T) {
	var o Observed
	o.Acked = func(ledger.StreamKey, uint64) bool { return true }
	s, off := seq(0, 9)
	o.TargetLog = reads("t", 1, 0, s, off)
	s, off = seq(0, 5)
	o.SourceReads = reads("t", 1, 0, s, off)
	s, off = seq(6, 9)
	o.TargetReads = reads("t", 1, 0, s, off)
	o.Partitions = map[TP]*Partition{{"t", 0}: {SourceCommitted: 6, Translated: 6, TranslatedFrom: "checkpoint"}}
	var out report.Failover
	Judge(o, &out)
	if out.Verdict != report.Pass || out.Skipped+out.Reread+out.DuplicateReads+out.Backwards+out.Untranslated != 0 {
		t.Errorf("exact failover: verdict %s, %+v", out.Verdict, out)
	}
	out.Error = "target unreachable"
	Judge(o, &out)
	if out.Verdict != report.Incomplete {
		t.Errorf("a drill with an error: verdict %s, want incomplete", out.Verdict)
	}
	rep := report.Report{Failover: &out}
	rep.Judge()
	if rep.Verdict != report.Incomplete {
		t.Errorf("run with an incomplete drill and nothing else wrong: %s, want incomplete", rep.Verdict)
	}
}

// TestJudgeNeedsASourceCommit: a group that committed nothing on the
// source (it read everything on the target, nothing skipped or re-read)
// translated no offset: the drill is incomplete, never a pass. Seen on
// real Kafka (failover-source-broker-down, the group read 0 records on the
// source and 8999 on the target: pass). Proven by breaking the rule
// (committedAny always true): verdict pass, want incomplete.
func TestJudgeNeedsASourceCommit(t *testing.T) {
	var o Observed
	o.Acked = func(ledger.StreamKey, uint64) bool { return true }
	s, off := seq(0, 9)
	o.TargetLog = reads("t", 1, 0, s, off)
	o.TargetReads = reads("t", 1, 0, s, off)
	o.Partitions = map[TP]*Partition{{"t", 0}: {SourceCommitted: -1, Translated: -1}}
	var out report.Failover
	Judge(o, &out)
	if out.Verdict != report.Incomplete || out.Skipped+out.Reread+out.Untranslated != 0 || out.Partitions[0].ReadOnTarget != 10 {
		t.Errorf("group that never committed on the source: verdict %s (%v), skipped %d reread %d untranslated %d, read on target %d; want incomplete, 0, 0, 0, 10",
			out.Verdict, out.Reasons, out.Skipped, out.Reread, out.Untranslated, out.Partitions[0].ReadOnTarget)
	}
}

// TestRunFailsWithTheDrill: a failed drill fails the run, with its reasons.
func TestRunFailsWithTheDrill(t *testing.T) {
	var out report.Failover
	Judge(drillCase(), &out)
	rep := report.Report{Failover: &out}
	rep.Judge()
	if rep.Verdict != report.Fail || len(rep.Reasons) != 4 {
		t.Errorf("run verdict %s, reasons %q; want fail with the drill's 4", rep.Verdict, rep.Reasons)
	}
}
