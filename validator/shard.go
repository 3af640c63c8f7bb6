package validator

// A sharded validator: M validators (shards) each read the partitions p with
// p % M == shard of every target topic and of every source topic, so no one
// of them reads the whole run; each hands its tracker's state (ShardState)
// to Merge, which produces the one verdict a single validator would have
// produced. Partitions, not streams, are what is split because reading is
// the cost that grows with the rate; every rule that spans partitions (a
// sequence delivered in two partitions, split, the source's order, purges,
// source_lost) is judged by the merge over the union of the shards' states.
//
// A shard needs the source reader: only the source tells it which streams'
// sequences it answers for (those its source partitions hold), so it knows
// when its part of the run has arrived.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/intervals"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
)

// sharded reports whether this validator is one shard of several.
func (v *Validator) sharded() bool { return v.cfg.Shards > 1 }

// checkShard validates Config.Shard and Config.Shards.
func checkShard(cfg Config) error {
	if cfg.Shards < 0 || cfg.Shard < 0 || cfg.Shards > 0 && cfg.Shard >= cfg.Shards || cfg.Shards == 0 && cfg.Shard != 0 {
		return fmt.Errorf("validator: shard %d of %d: give 0 <= shard < shards", cfg.Shard, cfg.Shards)
	}
	if cfg.Shards > 1 && cfg.SourceBootstrap == "" {
		return fmt.Errorf("validator: shard %d of %d needs the source reader (SourceBootstrap): a shard learns from the source which sequences it answers for", cfg.Shard, cfg.Shards)
	}
	return nil
}

// owns reports whether partition p is this shard's (every partition when
// not sharded).
func (v *Validator) owns(p int) bool {
	return !v.sharded() || p%v.cfg.Shards == v.cfg.Shard
}

// ownedParts drops another shard's partitions from a poll and stops the
// reader fetching them (the readers consume whole topics so partitions
// added during the run are found; another shard's are paused on first
// sight).
func (v *Validator) ownedParts(rd *reader, parts []kgo.FetchTopicPartition) []kgo.FetchTopicPartition {
	if !v.sharded() {
		return parts
	}
	keep := parts[:0]
	var pause map[string][]int32
	for _, p := range parts {
		if v.owns(int(p.Partition)) {
			keep = append(keep, p)
			continue
		}
		if pause == nil {
			pause = map[string][]int32{}
		}
		pause[p.Topic] = append(pause[p.Topic], p.Partition)
	}
	if pause != nil {
		rd.cl.PauseFetchPartitions(pause)
	}
	return keep
}

// pauseOthers stops rd fetching the partitions of its topics that exist now
// and belong to another shard, before its first fetch (otherwise the first
// fetch brings every partition's data; partitions added later are paused by
// ownedParts on first sight).
func (v *Validator) pauseOthers(rd *reader) {
	if !v.sharded() {
		return
	}
	ctx, cancel := context.WithTimeout(v.ctx, bootstrapTimeout)
	defer cancel()
	ends, err := rd.c.adm.ListEndOffsets(ctx, rd.topics...)
	if err != nil {
		return // the topics may not exist yet: ownedParts pauses on first sight
	}
	pause := map[string][]int32{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err == nil && !v.owns(int(o.Partition)) {
			pause[o.Topic] = append(pause[o.Topic], o.Partition)
		}
	})
	rd.cl.PauseFetchPartitions(pause)
}

// ownedTruncation keeps the partitions of a purge this shard reads.
func (v *Validator) ownedTruncation(logStart map[int]int64) map[int]int64 {
	if !v.sharded() {
		return logStart
	}
	out := map[int]int64{}
	for p, ls := range logStart {
		if v.owns(p) {
			out[p] = ls
		}
	}
	return out
}

// progress says whether everything the drain waits for arrived, and
// whether every stream's last one did. A shard answers only for the
// sequences its source partitions hold, so it knows them once the source was
// read to its end.
func (v *Validator) progress(sourceDone bool) (allArrived, allReachedLast bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.sharded() {
		j := v.tr.Judge(v.led, false, false)
		return j.AllArrived, j.AllReachedLast
	}
	if !sourceDone {
		return false, false
	}
	return v.tr.shardProgress(v.led)
}

// shardProgress is progress for a shard: the acked sequences its source
// reader read (its source partitions only) against what arrived in its
// target partitions.
func (t *Tracker) shardProgress(l *ledger.Ledger) (allArrived, allReachedLast bool) {
	allArrived, allReachedLast = true, true
	l.View(func(k ledger.StreamKey, s *ledger.Stream) {
		st := t.streams[k]
		if st == nil || len(st.src) == 0 {
			return // none of its records are in this shard's source partitions
		}
		var src intervals.Set
		for _, set := range st.src {
			src.Union(set)
		}
		expected := intersect(&src, &s.Acked) // the source may also hold failed sends
		arrived := st.seen.Clone()
		arrived.Union(&st.bad)
		if trunc := t.truncated(k, st, false); trunc != nil {
			arrived.Union(trunc)
		}
		if last, ok := expected.Max(); ok && !arrived.Contains(last) {
			allReachedLast = false
		}
		expected.Minus(arrived, func(intervals.Range) bool { allArrived = false; return false })
	})
	return allArrived, allReachedLast
}

// liveLedger is the ledger the live gauges judge against (v.mu held): a
// shard's part of it only, the acked sequences its source partitions hold,
// so that summing a metric over the shards' pods gives the run's figure (a
// shard judging the whole ledger would report every other shard's records
// as unseen). Until the source reader read a record, it is nobody's lag.
func (v *Validator) liveLedger() *ledger.Ledger {
	if !v.sharded() {
		return v.led
	}
	out := ledger.New()
	v.led.View(func(k ledger.StreamKey, s *ledger.Stream) {
		st := v.tr.streams[k]
		if st == nil || len(st.src) == 0 {
			return
		}
		var src intervals.Set
		for _, set := range st.src {
			src.Union(set)
		}
		out.AddRanges(k, intersect(&src, &s.Acked).Ranges(), intersect(&src, &s.Failed).Ranges())
	})
	return out
}

// DrainShard is Drain for one shard: it waits like Drain (for this shard's
// part of the run), stops the readers and returns the shard's state for
// Merge instead of a verdict (a shard alone cannot judge what crosses
// partitions).
func (v *Validator) DrainShard(ctx context.Context, deadline time.Duration) (*ShardState, error) {
	if !v.started {
		return nil, errors.New("validator: DrainShard before Start")
	}
	begin := time.Now()
	d := v.drainLoop(ctx, begin.Add(deadline))
	stalls, msync := v.finishWatch(ctx, begin.Add(deadline))
	if v.cfg.Shard == 0 {
		// One scan of every partition (not one per shard): a snapshot of
		// the whole compacted topic, which Merge gives the judge.
		v.scanCompacted(ctx)
	}
	v.mu.Lock()
	j := v.tr.Judge(v.liveLedger(), false, false) // the shard's last gauges, as a live view
	s := v.tr.exportState()
	v.mu.Unlock()
	v.setGauges(j, false)
	s.Shard, s.Shards = v.cfg.Shard, max(v.cfg.Shards, 1)
	s.Isolation = v.cfg.Isolation
	s.DrainComplete, s.DrainSeconds = d.targetDone, time.Since(begin).Seconds()
	s.TargetUnread, s.TargetMissing = !d.targetRead, missingTopic(d.lastTargetErr)
	s.SourceChecked = v.source != nil && d.sourceDone
	s.SourceNote = v.sourceNote(d)
	s.Ledger = ledgerState(v.led)
	s.Stalls, s.MetadataSync = stalls, msync
	v.log.Info("shard drained", "shard", s.Shard, "shards", s.Shards, "complete", s.DrainComplete, "target_unread", s.TargetUnread,
		"source_checked", s.SourceChecked, "seconds", s.DrainSeconds)
	if err := ctx.Err(); err != nil {
		return s, fmt.Errorf("validator: shard drain interrupted: %w", err)
	}
	return s, nil
}

// sourceNote says why source_lost was not judged ("" when it was).
func (v *Validator) sourceNote(d drainState) string {
	switch {
	case v.source == nil:
		return "source reader disabled (no source bootstrap): source_lost not judged, order judged by sequence"
	case !d.sourceDone:
		return fmt.Sprintf("the source log could not be read to its end before the drain deadline (last error: %v): source_lost not judged", d.lastErr)
	}
	return ""
}

// intersect is a ∩ b.
func intersect(a, b *intervals.Set) *intervals.Set {
	var outside intervals.Set
	a.Minus(b, func(r intervals.Range) bool { outside.AddRange(r.Lo, r.Hi); return true })
	out := &intervals.Set{}
	a.Minus(&outside, func(r intervals.Range) bool { out.AddRange(r.Lo, r.Hi); return true })
	return out
}
