package validator

import (
	"fmt"
	"reflect"
	"sort"
	"time"
)

// resultOf is the part of the Result the tracker knows, from its final
// judgement j (the drain's fields are the caller's).
func (t *Tracker) resultOf(j Judgement) *Result {
	res := &Result{
		Counts:            j.Total,
		Truncated:         j.Truncated,
		OtherRuns:         j.OtherRuns,
		Examples:          t.Examples(),
		Latency:           t.Latency(),
		RedeliveryLatency: t.RedeliveryLatency(),
		Streams:           j.Streams,
		PerTopic:          j.PerTopic,
	}
	var most time.Duration
	res.NegativeLatency, most = t.NegativeLatency()
	res.MostNegativeSeconds = most.Seconds()
	res.FirstArrival, res.LastArrival = t.Arrival()
	return res
}

// Merge turns the states of every shard of one sharded validator (shards
// 0..M-1, each exactly once, in any order) into the Result a single
// validator reading every partition would have returned: the counts are
// judged once, over the union of what the shards read. The drain is
// complete when every shard's was; the source is checked when every
// shard's source partitions were read to their end.
//
// The MirrorMaker 2 families' sections (transactions, fidelity, stalls,
// metadata sync) are merged as mergemodes.go says.
//
// What may differ from a single validator, neither being wrong: which
// records are the examples (the first ones of each shard, in shard order),
// and, for a sequence that arrived intact in target partitions of two
// shards, which copy is its first arrival: both copies count in the
// latency figures, and each copy's partition is one the stream was
// delivered to (a single validator keeps only the copy it happened to read
// first there, so its own split figure then depends on its read timing).
func Merge(states []*ShardState) (*Result, error) {
	if len(states) == 0 {
		return nil, fmt.Errorf("validator: merge of no shard states: give the state of every shard")
	}
	byShard := append([]*ShardState(nil), states...)
	sort.Slice(byShard, func(i, j int) bool { return byShard[i].Shard < byShard[j].Shard })
	first := byShard[0]
	for i, s := range byShard {
		switch {
		case s.Version != StateVersion:
			return nil, fmt.Errorf("validator: shard %d's state has format version %d, this kmt reads %d: merge with the kmt that wrote it", s.Shard, s.Version, StateVersion)
		case s.RunID != first.RunID:
			return nil, fmt.Errorf("validator: shard %d judged run %q, shard %d run %q: merge states of one run", s.Shard, s.RunID, first.Shard, first.RunID)
		case s.Shards != len(states):
			return nil, fmt.Errorf("validator: shard %d is one of %d shards but %d states were given: give every shard's state once", s.Shard, s.Shards, len(states))
		case s.Shard != i:
			return nil, fmt.Errorf("validator: shard %d's state is missing (or another shard's was given twice): give every shard 0..%d once", i, len(states)-1)
		case s.SourceOrder != first.SourceOrder || s.Isolation != first.Isolation:
			return nil, fmt.Errorf("validator: shards 0 and %d ran with different settings (source reader, isolation): run every shard alike", s.Shard)
		}
	}
	t := NewTracker(first.RunID, first.Examples, time.Time{})
	if !first.SourceOrder {
		t.JudgeOrderBySequence()
	}
	res := &Result{DrainComplete: true, SourceChecked: true, Isolation: first.Isolation}
	var problems []string
	for _, s := range byShard {
		if err := t.absorb(s); err != nil {
			return nil, fmt.Errorf("validator: merging shard %d: %w", s.Shard, err)
		}
		res.DrainComplete = res.DrainComplete && s.DrainComplete
		res.DrainSeconds = max(res.DrainSeconds, s.DrainSeconds)
		res.TargetUnread = res.TargetUnread || s.TargetUnread
		res.SourceChecked = res.SourceChecked && s.SourceChecked
		if res.TargetMissing == "" {
			res.TargetMissing = s.TargetMissing
		}
		if res.SourceNote == "" && s.SourceNote != "" {
			res.SourceNote = fmt.Sprintf("shard %d: %s", s.Shard, s.SourceNote)
		}
		if !reflect.DeepEqual(s.Ledger.Streams, first.Ledger.Streams) || s.Ledger.Done != first.Ledger.Done {
			// Every shard reads the same ledger topic: one that read
			// another ledger judged against other acks.
			problems = append(problems, fmt.Sprintf("shard %d read another ledger than shard 0 (done %v vs %v, %d vs %d streams); merge states of finished shards of one run",
				s.Shard, s.Ledger.Done, first.Ledger.Done, len(s.Ledger.Streams), len(first.Ledger.Streams)))
		}
	}
	t.absorbModes(byShard)
	t.SetCompacted(first.Compacted) // every shard runs with the same topics
	led := first.Ledger.ledger()
	j := t.Judge(led, true, res.SourceChecked)
	txns, fid := t.TransactionsVerdict(led, j.Total), t.FidelityVerdict(led) // before resultOf copies the evidence
	out := t.resultOf(j)
	out.Transactions, out.Fidelity = txns, fid
	out.Stalls, out.MetadataSync = mergeStalls(byShard), first.MetadataSync
	attributeStalls(out.Stalls, j.MissingBySource)
	out.DrainComplete, out.DrainSeconds, out.TargetUnread, out.TargetMissing = res.DrainComplete, res.DrainSeconds, res.TargetUnread, res.TargetMissing
	out.SourceChecked, out.SourceNote, out.Isolation = res.SourceChecked, res.SourceNote, res.Isolation
	out.LedgerProblems = append(led.Problems(), problems...)
	return out, nil
}
