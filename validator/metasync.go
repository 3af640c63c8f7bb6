package validator

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// Metadata change kinds (report.SyncChange.Kind).
const (
	SyncConfig     = "config"
	SyncPartitions = "partitions"
	SyncTopic      = "topic"
)

// TopicState is what the target has of one topic at a poll.
type TopicState struct {
	Exists     bool
	Partitions int
	Configs    map[string]string // topic configs as DescribeConfigs gives them
}

// SyncWatch times metadata changes made to the source (a topic config
// set, partitions added, a topic created) until each appears on the
// target: a config when the target topic has the same value, partitions
// when the target topic has at least as many, a topic when it exists with
// at least its partitions. A change not seen within Within fails; a config
// the mirror never copies by design (NeverCopied) is watched and reported
// but not judged. Pure: the validator's watch loop polls the target.
type SyncWatch struct {
	within      time.Duration
	neverCopied func(name string) bool
	items       []*syncItem
}

type syncItem struct {
	row   report.SyncChange
	key   string // config name (kind config)
	value string // config value, normalised
	// later: values a later change set on the same key (normalised). A
	// mirror that syncs on an interval may skip a value overwritten before
	// its next sync; the later value on the target shows it synced the key.
	later []string
	count int // partitions wanted (partitions, topic)
}

// NewSyncWatch returns a watch with the window within; neverCopied may be nil.
func NewSyncWatch(within time.Duration, neverCopied func(string) bool) *SyncWatch {
	if neverCopied == nil {
		neverCopied = func(string) bool { return false }
	}
	return &SyncWatch{within: within, neverCopied: neverCopied}
}

// AddConfig watches each of configs (set on sourceTopic at at) on targetTopic.
func (w *SyncWatch) AddConfig(fault, sourceTopic, targetTopic string, configs map[string]string, at time.Time) {
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		it := &syncItem{key: k, value: normConfig(configs[k])}
		for _, old := range w.items {
			if old.row.Kind == SyncConfig && old.row.TargetTopic == targetTopic && old.key == k {
				old.later = append(old.later, it.value)
			}
		}
		it.row = report.SyncChange{Fault: fault, Kind: SyncConfig, SourceTopic: sourceTopic, TargetTopic: targetTopic,
			What: k + "=" + configs[k], At: at, NeverCopied: w.neverCopied(k)}
		w.items = append(w.items, it)
	}
}

// AddPartitions watches targetTopic for at least total partitions.
func (w *SyncWatch) AddPartitions(fault, sourceTopic, targetTopic string, total int, at time.Time) {
	w.items = append(w.items, &syncItem{count: total, row: report.SyncChange{Fault: fault, Kind: SyncPartitions,
		SourceTopic: sourceTopic, TargetTopic: targetTopic, What: fmt.Sprintf("%d partitions", total), At: at}})
}

// AddTopic watches for targetTopic to exist with at least partitions.
func (w *SyncWatch) AddTopic(fault, sourceTopic, targetTopic string, partitions int, at time.Time) {
	w.items = append(w.items, &syncItem{count: partitions, row: report.SyncChange{Fault: fault, Kind: SyncTopic,
		SourceTopic: sourceTopic, TargetTopic: targetTopic, What: fmt.Sprintf("new topic, %d partitions", partitions), At: at}})
}

// Pending lists the target topics with a change not yet seen, sorted.
func (w *SyncWatch) Pending() []string {
	set := map[string]bool{}
	for _, it := range w.items {
		if !it.row.Synced && !it.row.Late {
			set[it.row.TargetTopic] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Observe takes the target's state of the pending topics at now and
// returns the changes first seen with it.
func (w *SyncWatch) Observe(now time.Time, state map[string]TopicState) []report.SyncChange {
	var seen []report.SyncChange
	for _, it := range w.items {
		r := &it.row
		if r.Synced || r.Late {
			continue
		}
		st, ok := state[r.TargetTopic]
		if !ok {
			continue // not polled this time
		}
		r.Observed = it.observed(st)
		if !it.applied(st) {
			continue
		}
		secs := now.Sub(r.At).Seconds()
		r.Seconds, r.Observed = &secs, ""
		if now.Sub(r.At) <= w.within {
			r.Synced = true
		} else {
			r.Late = true
		}
		seen = append(seen, *r)
	}
	return seen
}

func (it *syncItem) applied(st TopicState) bool {
	if !st.Exists {
		return false
	}
	switch it.row.Kind {
	case SyncConfig:
		v, ok := st.Configs[it.key]
		return ok && (normConfig(v) == it.value || slices.Contains(it.later, normConfig(v)))
	default:
		return st.Partitions >= it.count
	}
}

func (it *syncItem) observed(st TopicState) string {
	switch {
	case !st.Exists:
		return "no such topic on the target"
	case it.row.Kind == SyncConfig:
		if v, ok := st.Configs[it.key]; ok {
			return it.key + "=" + v
		}
		return it.key + " not set"
	}
	return fmt.Sprintf("%d partitions", st.Partitions)
}

// Settled reports whether nothing is left to wait for at now: every change
// the mirror should copy was seen, or its window passed. Settings never
// copied by design are not waited for.
func (w *SyncWatch) Settled(now time.Time) bool {
	for _, it := range w.items {
		r := it.row
		if !r.Synced && !r.Late && !r.NeverCopied && now.Sub(r.At) <= w.within {
			return false
		}
	}
	return true
}

// Empty reports whether no change was made.
func (w *SyncWatch) Empty() bool { return len(w.items) == 0 }

// Report is the metadata_sync section; neverCopied lists the settings the
// mirror by design does not copy.
func (w *SyncWatch) Report(neverCopied []string) *report.MetadataSync {
	out := &report.MetadataSync{WithinSeconds: w.within.Seconds(), NeverCopied: append([]string{}, neverCopied...), Changes: []report.SyncChange{}}
	for _, it := range w.items {
		out.Changes = append(out.Changes, it.row)
	}
	return out
}

// normConfig makes "compact, delete" and "compact,delete" equal.
func normConfig(v string) string { return strings.ReplaceAll(v, " ", "") }
