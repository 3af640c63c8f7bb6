// Package failover is the failover drill: a consumer group of kmt's reads
// the source topics and commits offsets while the load runs; at the
// failover point it stops there and starts again on the target from the
// offsets the mirror provides (MirrorMaker 2's synced group offsets, or its
// checkpoints translated as RemoteClusterUtils does), and reads on. The
// judge (this file, no Kafka) says per partition what the group skipped,
// read twice, and where the mirror's translation went backwards or was
// missing; drill.go is the Kafka side.
package failover

import (
	"fmt"
	"sort"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// ID is one record of the run: its stream and sequence.
type ID struct {
	Key ledger.StreamKey // Topic is the source topic
	Seq uint64
}

// Read is one record the group read (or, in the target log, one record the
// target holds) at Partition/Offset of its topic.
type Read struct {
	ID        ID
	Partition int32
	Offset    int64
}

// TP is a source topic's partition; the mirrors kmt drives keep partition
// numbers, so it is also the target partition.
type TP struct {
	Topic     string
	Partition int32
}

// Partition is what the drill saw of one partition apart from the reads.
type Partition struct {
	TargetTopic     string
	SourceCommitted int64 // -1: the group never committed here on the source
	Translated      int64 // -1: the mirror gave no offset on the target
	TranslatedFrom  string
	// Backwards counts drops of the translated offset seen while watching;
	// BackwardsBy is the largest.
	Backwards   uint64
	BackwardsBy int64
}

// Observed is everything the judge needs.
type Observed struct {
	Acked func(k ledger.StreamKey, seq uint64) bool
	// SourceReads and TargetReads are the group's reads, in order.
	SourceReads, TargetReads []Read
	// TargetLog is every record of the run on the target (in offset order
	// per partition): a record there the group read nowhere was skipped.
	TargetLog  []Read
	Partitions map[TP]*Partition
	// Bound is the re-reads per partition allowed (the mirror's documented
	// precision); BoundFrom says where it comes from.
	Bound     int64
	BoundFrom string
}

type tally struct {
	readSource, readTarget, skipped, reread, dups uint64
	resumed                                       int64
	firstSkipped                                  *int64
}

// Judge counts and decides. The section's Verdict is pass or fail.
func Judge(o Observed, out *report.Failover) {
	per := map[TP]*tally{}
	get := func(tp TP) *tally {
		t := per[tp]
		if t == nil {
			t = &tally{resumed: -1}
			per[tp] = t
		}
		return t
	}
	onSource := make(map[ID]bool, len(o.SourceReads))
	for _, r := range o.SourceReads {
		onSource[r.ID] = true
		get(TP{r.ID.Key.Topic, r.Partition}).readSource++
	}
	onTarget := make(map[ID]bool, len(o.TargetReads))
	for _, r := range o.TargetReads {
		t := get(TP{r.ID.Key.Topic, r.Partition})
		t.readTarget++
		if t.resumed < 0 {
			t.resumed = r.Offset
		}
		switch {
		case onTarget[r.ID]:
			t.dups++ // a second copy on the target, read again
		case onSource[r.ID]:
			t.reread++
		}
		onTarget[r.ID] = true
	}
	seen := map[ID]bool{}
	for _, r := range o.TargetLog {
		if seen[r.ID] {
			continue // judged at its first copy
		}
		seen[r.ID] = true
		if onSource[r.ID] || onTarget[r.ID] || o.Acked == nil || !o.Acked(r.ID.Key, r.ID.Seq) {
			continue
		}
		t := get(TP{r.ID.Key.Topic, r.Partition})
		t.skipped++
		if t.firstSkipped == nil {
			off := r.Offset
			t.firstSkipped = &off
		}
	}
	for tp := range o.Partitions {
		get(tp)
	}
	tps := make([]TP, 0, len(per))
	for tp := range per {
		tps = append(tps, tp)
	}
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
	out.RereadBound, out.BoundFrom = o.Bound, o.BoundFrom
	out.Partitions = out.Partitions[:0]
	for _, tp := range tps {
		out.Partitions = append(out.Partitions, partitionResult(tp, per[tp], o.Partitions[tp], o.Bound))
	}
	decide(out)
}

func partitionResult(tp TP, t *tally, p *Partition, bound int64) report.FailoverPartition {
	if p == nil {
		p = &Partition{SourceCommitted: -1, Translated: -1}
	}
	r := report.FailoverPartition{
		Topic: tp.Topic, TargetTopic: p.TargetTopic, Partition: tp.Partition,
		SourceCommitted: p.SourceCommitted, Translated: p.Translated, TranslatedFrom: p.TranslatedFrom,
		ResumedFrom: t.resumed, ReadOnSource: t.readSource, ReadOnTarget: t.readTarget,
		Skipped: t.skipped, Reread: t.reread, DuplicateReads: t.dups,
		Backwards: p.Backwards, BackwardsBy: p.BackwardsBy, FirstSkipped: t.firstSkipped,
	}
	r.Untranslated = p.SourceCommitted > 0 && p.Translated < 0
	r.OverBound = int64(t.reread) > bound
	return r
}

// decide sums the partitions and sets the verdict and its reasons.
func decide(out *report.Failover) {
	out.Skipped, out.Reread, out.DuplicateReads, out.Backwards, out.Untranslated = 0, 0, 0, 0, 0
	var over []string
	for _, p := range out.Partitions {
		out.Skipped += p.Skipped
		out.Reread += p.Reread
		out.DuplicateReads += p.DuplicateReads
		out.Backwards += p.Backwards
		if p.Untranslated {
			out.Untranslated++
		}
		if p.OverBound {
			over = append(over, fmt.Sprintf("%s[%d] %d", p.Topic, p.Partition, p.Reread))
		}
	}
	out.Reasons = []string{}
	if out.Skipped > 0 {
		out.Reasons = append(out.Reasons, fmt.Sprintf("%d records skipped: acknowledged, on the target, read by the group on neither side (the translated offsets were too far ahead)", out.Skipped))
	}
	if out.Backwards > 0 {
		out.Reasons = append(out.Reasons, fmt.Sprintf("%d times a translated offset went backwards (the group would read again from an older point)", out.Backwards))
	}
	if out.Untranslated > 0 {
		out.Reasons = append(out.Reasons, fmt.Sprintf("%d partitions the group had committed on the source have no offset on the target (the group starts there from its reset policy)", out.Untranslated))
	}
	if len(over) > 0 {
		out.Reasons = append(out.Reasons, fmt.Sprintf("re-reads over the bound of %d per partition (%s): %v", out.RereadBound, out.BoundFrom, over))
	}
	if out.Error == "" && !committedAny(out.Partitions) {
		// Seen on real Kafka with a source broker killed while the group
		// joined: the group read nothing, everything was "read on the
		// target", and the drill passed without translating one offset.
		out.Error = "the group committed no offset on the source before the failover point, so no offset was translated and the drill proves nothing " +
			"(did the group join the source in time? kmt.log has its log lines; move spec.failover.at later)"
	}
	switch {
	case out.Error != "":
		out.Verdict = report.Incomplete
		out.Reasons = append(out.Reasons, "the drill did not finish: "+out.Error)
	case len(out.Reasons) > 0:
		out.Verdict = report.Fail
	default:
		out.Verdict = report.Pass
	}
}

// committedAny reports whether the group committed an offset on the source
// in any partition.
func committedAny(ps []report.FailoverPartition) bool {
	for _, p := range ps {
		if p.SourceCommitted >= 0 {
			return true
		}
	}
	return false
}
