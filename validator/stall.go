package validator

import (
	"sort"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// Watchdog is Burrow's STALL/REWIND idea applied to a mirror: per target
// partition it compares, poll after poll, the target partition's end
// offset with its source partition's (same topic pair, same partition
// number: MirrorMaker 2 and the reference mirror keep partition numbers).
// A target partition that does not move for After while its source
// partition does is stalled: the mirror task copying it died or hangs,
// whatever its status says. The stall starts at the first poll that saw
// the source move after the target's last move, so a source idle for an
// hour before the load does not count; it ends when the target moves
// again. An end offset that goes backwards is a rewind (the target lost
// records it had acknowledged, or the topic was recreated).
//
// A mirror that re-partitions (records of source partition p land in other
// target partitions) does not fit this comparison: switch the watchdog off
// for it (spec.validation.stallWatchdog: off). A target partition that never moved at all is
// watched like any other, so a partition whose task never started (or one
// added on the source and never created on the target) is caught too.
//
// It is pure: no Kafka, no clock; the validator's watch loop feeds it.
type Watchdog struct {
	after  time.Duration
	parts  map[watchKey]*watchState
	events []report.StallEvent
}

type watchKey struct {
	topic     string // target topic
	partition int32
}

type watchState struct {
	target       int64
	sourceAtMove int64     // the source's end when the target last moved
	pendingSince time.Time // first poll that saw the source move past sourceAtMove; zero: none
	stall        int       // index of the open stall event; -1: none
}

// Progress is one partition's end offsets at a poll. Target is -1 when
// the target partition does not exist (yet): it counts as not moving.
type Progress struct {
	Topic       string // target topic
	SourceTopic string
	Partition   int32
	Source      int64
	Target      int64
}

// NewWatchdog returns a watchdog that calls a partition stalled after it
// stood still for after while its source moved.
func NewWatchdog(after time.Duration) *Watchdog {
	return &Watchdog{after: after, parts: map[watchKey]*watchState{}}
}

// After is the stall threshold.
func (w *Watchdog) After() time.Duration { return w.after }

// Observe takes one poll's offsets and returns the events that began or
// ended with it (a stall reported, a stall recovered, a rewind).
func (w *Watchdog) Observe(now time.Time, ps []Progress) []report.StallEvent {
	var changed []report.StallEvent
	for _, p := range ps {
		k := watchKey{p.Topic, p.Partition}
		tgt := max(p.Target, 0)
		st := w.parts[k]
		if st == nil {
			w.parts[k] = &watchState{target: tgt, sourceAtMove: p.Source, stall: -1}
			continue
		}
		switch {
		case tgt < st.target:
			changed = append(changed, w.rewind(now, p, st.target, tgt))
			w.moved(now, st, tgt, p.Source, &changed)
		case tgt > st.target:
			w.moved(now, st, tgt, p.Source, &changed)
		default:
			if st.pendingSince.IsZero() && p.Source > st.sourceAtMove {
				st.pendingSince = now
			}
			if st.stall >= 0 {
				w.events[st.stall].SourceGained = p.Source - st.sourceAtMove
			} else if !st.pendingSince.IsZero() && now.Sub(st.pendingSince) >= w.after {
				st.stall = len(w.events)
				w.events = append(w.events, report.StallEvent{
					Kind: report.StallKind, Topic: p.Topic, SourceTopic: p.SourceTopic, Partition: p.Partition,
					Start: st.pendingSince, SourceGained: p.Source - st.sourceAtMove, TargetOffset: tgt,
				})
				changed = append(changed, w.events[st.stall])
			}
		}
	}
	return changed
}

// moved records that the target partition moved to tgt: a pending or open
// stall ends.
func (w *Watchdog) moved(now time.Time, st *watchState, tgt, source int64, changed *[]report.StallEvent) {
	if st.stall >= 0 {
		e := &w.events[st.stall]
		e.End, e.Recovered = now, true
		e.Seconds = now.Sub(e.Start).Seconds()
		*changed = append(*changed, *e)
		st.stall = -1
	}
	st.target, st.sourceAtMove, st.pendingSince = tgt, source, time.Time{}
}

func (w *Watchdog) rewind(now time.Time, p Progress, from, to int64) report.StallEvent {
	e := report.StallEvent{Kind: report.RewindKind, Topic: p.Topic, SourceTopic: p.SourceTopic, Partition: p.Partition,
		Start: now, End: now, Recovered: true, TargetOffset: to, SourceGained: from - to}
	w.events = append(w.events, e)
	return e
}

// Stalled is how many partitions are stalled now.
func (w *Watchdog) Stalled() int {
	n := 0
	for _, st := range w.parts {
		if st.stall >= 0 {
			n++
		}
	}
	return n
}

// Report is the stalls section at now: open stalls last until now.
func (w *Watchdog) Report(now time.Time) *report.Stalls {
	out := &report.Stalls{AfterSeconds: w.after.Seconds(), Partitions: len(w.parts), Events: []report.StallEvent{}}
	for _, e := range w.events {
		if e.Kind == report.StallKind && !e.Recovered {
			e.Seconds = now.Sub(e.Start).Seconds()
		}
		out.Events = append(out.Events, e)
	}
	sort.SliceStable(out.Events, func(i, j int) bool { return out.Events[i].Start.Before(out.Events[j].Start) })
	return out
}

// attributeStalls sets each open stall's MissingHere from a final
// judgement's per-source-partition missing counts (a judgement that did
// not check the source leaves them unknown).
func attributeStalls(st *report.Stalls, missing map[SourcePartition]uint64) {
	if st == nil || missing == nil {
		return
	}
	for i := range st.Events {
		e := &st.Events[i]
		if e.Kind != report.StallKind || e.Recovered {
			continue
		}
		n := missing[SourcePartition{Topic: e.SourceTopic, Partition: int(e.Partition)}]
		e.MissingHere = &n
	}
}
