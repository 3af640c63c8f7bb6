package report

import (
	"fmt"
	"time"
)

// report.json sections added within schema v1 (issue 12):
//
//	metadata_sync   {within_seconds, never_copied, changes:[{fault kind
//	                source_topic target_topic what at synced seconds late
//	                never_copied observed}]}: each metadata change the
//	                timeline made to the source (kind config: one row per
//	                setting; partitions; topic) and how long it took to
//	                appear on the target (seconds, when it did). A change not
//	                on the target within within_seconds fails the run
//	                (late: it came after the window); a setting the mirror
//	                never copies by design (never_copied, MirrorMaker 2's
//	                config.properties.exclude default) is reported, not judged.
//	stalls          {after_seconds, partitions, events:[{kind topic
//	                source_topic partition start end recovered seconds
//	                source_gained target_offset fault}]}: target partitions
//	                that did not move for after_seconds while their source
//	                partition did (kind stall), or whose end offset went
//	                backwards (kind rewind, informational). A stall still
//	                open when the run ended (recovered false) fails the run.

// MetadataSync is report.json metadata_sync.
type MetadataSync struct {
	WithinSeconds float64      `json:"within_seconds"`
	NeverCopied   []string     `json:"never_copied"`
	Changes       []SyncChange `json:"changes"`
}

// SyncChange is one metadata change of the source and its arrival.
type SyncChange struct {
	Fault       string    `json:"fault"`
	Kind        string    `json:"kind"` // config | partitions | topic
	SourceTopic string    `json:"source_topic"`
	TargetTopic string    `json:"target_topic"`
	What        string    `json:"what"` // "retention.ms=60000", "12 partitions", "new topic, 3 partitions"
	At          time.Time `json:"at"`
	Synced      bool      `json:"synced"`
	// Seconds from the change on the source to its first sight on the
	// target (the watch polls about once a second); nil when never seen.
	Seconds     *float64 `json:"seconds,omitempty"`
	Late        bool     `json:"late,omitempty"`
	NeverCopied bool     `json:"never_copied,omitempty"`
	// Observed is what the target had when the watch ended, for a change
	// never seen there.
	Observed string `json:"observed,omitempty"`
}

// Stalls is report.json stalls.
type Stalls struct {
	AfterSeconds float64      `json:"after_seconds"`
	Partitions   int          `json:"partitions"` // target partitions watched
	Events       []StallEvent `json:"events"`
}

// Stall event kinds.
const (
	StallKind  = "stall"
	RewindKind = "rewind"
)

// StallEvent is one stall (or rewind) of a target partition.
type StallEvent struct {
	Kind        string    `json:"kind"`
	Topic       string    `json:"topic"` // target topic
	SourceTopic string    `json:"source_topic"`
	Partition   int32     `json:"partition"`
	Start       time.Time `json:"start"` // the source first moved while the target stood still
	// End: the target moved again (zero while the stall lasts).
	End          time.Time `json:"end,omitzero"`
	Recovered    bool      `json:"recovered"`
	Seconds      float64   `json:"seconds"`       // how long it lasted (until the run ended, if not recovered)
	SourceGained int64     `json:"source_gained"` // records the source partition gained meanwhile
	TargetOffset int64     `json:"target_offset"` // the target's end offset while stalled (rewind: the new one)
	Fault        string    `json:"fault,omitempty"`
	// MissingHere (open stalls, when the source reader read every
	// partition) counts the lost and unseen records the source reader read
	// in this stall's source partition. 0: what the source gained here
	// after the target stopped holds no missing record (a transaction's
	// commit marker, records of an aborted transaction), so the stall
	// explains none of the run's losses. Absent: unknown.
	MissingHere *uint64 `json:"missing_here,omitempty"`
}

// syncReasons are the verdict reasons of the metadata_sync and stalls
// sections (called by Judge).
func (r *Report) syncReasons() []string {
	var out []string
	if ms := r.MetadataSync; ms != nil {
		for _, c := range ms.Changes {
			if c.Synced || c.NeverCopied {
				continue
			}
			why := "never appeared"
			if c.Late && c.Seconds != nil {
				why = fmt.Sprintf("appeared only after %.1fs", *c.Seconds)
			}
			out = append(out, fmt.Sprintf("metadata_sync: %s (%s) on source topic %s %s on target topic %s within %gs (fault %s)",
				c.What, c.Kind, c.SourceTopic, why, c.TargetTopic, ms.WithinSeconds, c.Fault))
		}
	}
	// An open stall fails the run only while acked records are missing
	// (of its own source partition, when that is known: MissingHere). When
	// none are, what the source gained after the target stopped is what a
	// correct mirror never copies (the records and marker of an aborted
	// last transaction, control records): the stall stays in the section,
	// reported, but blames nobody.
	if st := r.Stalls; st != nil && r.Counts.Lost+r.Counts.Unseen > 0 {
		for _, e := range st.Events {
			if e.MissingHere != nil && *e.MissingHere == 0 {
				continue
			}
			if e.Kind == StallKind && !e.Recovered {
				out = append(out, fmt.Sprintf("stalled: target %s partition %d stopped at offset %d from %s while its source gained %d records, and never moved again",
					e.Topic, e.Partition, e.TargetOffset, relTime(r.StartedAt, e.Start), e.SourceGained))
			}
		}
	}
	return out
}

// annotateStalls names the fault active when each stall started.
func (r *Report) annotateStalls() {
	if r.Stalls == nil {
		return
	}
	for i := range r.Stalls.Events {
		e := &r.Stalls.Events[i]
		if e.Fault != "" {
			continue
		}
		for _, f := range r.Faults {
			if !f.Start.IsZero() && !e.Start.Before(f.Start) && (f.End.IsZero() || !e.Start.After(f.End)) {
				e.Fault = f.Name
				break
			}
		}
	}
}

// writeSyncSummary adds the metadata_sync and stalls lines to the summary.
func (r *Report) writeSyncSummary(p func(format string, a ...any)) {
	if ms := r.MetadataSync; ms != nil {
		for _, c := range ms.Changes {
			took := "not seen"
			if c.Seconds != nil {
				took = fmt.Sprintf("after %.1fs", *c.Seconds)
			}
			status := map[bool]string{true: "ok", false: "NOT WITHIN " + fmt.Sprintf("%gs", ms.WithinSeconds)}[c.Synced]
			if c.NeverCopied && !c.Synced {
				status = "never copied by design"
			}
			if c.Observed != "" {
				took += " (target has " + c.Observed + ")"
			}
			p("sync      %-22s %-10s %s -> %s  %s  %s  %s\n", c.Fault, c.Kind, c.SourceTopic, c.TargetTopic, c.What, took, status)
		}
	}
	if st := r.Stalls; st != nil {
		for _, e := range st.Events {
			status := "recovered"
			if !e.Recovered {
				status = "NOT RECOVERED"
			}
			p("stall     %-6s %s[%d] from %s for %.1fs (source +%d, target at %d) %s %s\n", e.Kind, e.Topic, e.Partition,
				relTime(r.StartedAt, e.Start), e.Seconds, e.SourceGained, e.TargetOffset, status, e.Fault)
		}
	}
}
