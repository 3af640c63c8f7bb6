package report

import (
	"fmt"
	"strings"
	"time"
)

// Failover is report.json "failover" (added within schema v1): the failover
// drill's verdict. A consumer group read the source, stopped at the
// failover point and went on reading the target from the offsets the
// mirror provided. Judged per partition:
//
//	skipped        records on the target, acknowledged by the source, that
//	               the group read on neither side (fails the run)
//	reread         records the group read on the source and again on the
//	               target: judged against reread_bound per partition
//	               (over it fails the run)
//	duplicate_reads copies the mirror wrote twice that the group read again
//	               on the target (counted, not judged: the main verdict's
//	               duplicate)
//	backwards      times the translated offset of a partition went lower than
//	               one the mirror had given before (fails the run)
//	untranslated   partitions where the group had committed on the source but
//	               the mirror gave no offset on the target (fails the run)
type Failover struct {
	Group string `json:"group"`
	Lag   string `json:"lag"`
	// Offsets is where the drill took offsets from: auto, synced or checkpoints.
	Offsets          string    `json:"offsets"`
	CheckpointsTopic string    `json:"checkpoints_topic,omitempty"`
	StoppedAt        time.Time `json:"stopped_at"`           // the group left the source
	ResumedAt        time.Time `json:"resumed_at,omitempty"` // it joined on the target
	// RereadBound is the records per partition the group may read twice,
	// and BoundFrom where it comes from ("offset.lag.max=100", "scenario").
	RereadBound int64  `json:"reread_bound"`
	BoundFrom   string `json:"bound_from"`

	Partitions     []FailoverPartition `json:"partitions"`
	Skipped        uint64              `json:"skipped"`
	Reread         uint64              `json:"reread"`
	DuplicateReads uint64              `json:"duplicate_reads"`
	Backwards      uint64              `json:"backwards"`
	Untranslated   uint64              `json:"untranslated"`
	// BadCheckpoints are records of the checkpoints topic that did not
	// decode (skipped, as MirrorClient does).
	BadCheckpoints uint64 `json:"bad_checkpoints,omitempty"`
	// Verdict is pass or fail (incomplete when the drill could not finish);
	// Reasons say why it is not pass.
	Verdict string   `json:"verdict"`
	Reasons []string `json:"reasons"`
	Error   string   `json:"error,omitempty"`
}

// FailoverPartition is one partition of the drill.
type FailoverPartition struct {
	Topic       string `json:"topic"` // source topic
	TargetTopic string `json:"target_topic"`
	Partition   int32  `json:"partition"`
	// SourceCommitted: the group's committed offset on the source when it
	// stopped (-1: none). Translated: where the mirror said it resumes on
	// the target (-1: no offset), from "synced" or "checkpoint".
	SourceCommitted int64  `json:"source_committed"`
	Translated      int64  `json:"translated"`
	TranslatedFrom  string `json:"translated_from,omitempty"`
	// ResumedFrom: the first target offset the group read (-1: none).
	ResumedFrom    int64  `json:"resumed_from"`
	ReadOnSource   uint64 `json:"read_on_source"`
	ReadOnTarget   uint64 `json:"read_on_target"`
	Skipped        uint64 `json:"skipped"`
	Reread         uint64 `json:"reread"`
	DuplicateReads uint64 `json:"duplicate_reads"`
	Backwards      uint64 `json:"backwards"`
	// BackwardsBy is the largest drop of the translated offset.
	BackwardsBy  int64 `json:"backwards_by,omitempty"`
	Untranslated bool  `json:"untranslated,omitempty"`
	OverBound    bool  `json:"over_bound,omitempty"`
	// FirstSkipped is the target offset of the first skipped record.
	FirstSkipped *int64 `json:"first_skipped,omitempty"`
}

// failoverReasons are the drill's reasons, for the run's verdict.
func (r *Report) failoverReasons() []string {
	f := r.Failover
	if f == nil || f.Verdict != Fail {
		return nil
	}
	out := make([]string, 0, len(f.Reasons))
	for _, x := range f.Reasons {
		out = append(out, "failover: "+x)
	}
	return out
}

// summaryLine is the drill in the human summary.
func (f *Failover) summaryLine() string {
	l := fmt.Sprintf("failover  %s group %s (%s): skipped %d  reread %d (bound %d per partition, %s)  duplicate reads %d  backwards %d  untranslated %d",
		strings.ToUpper(f.Verdict), f.Group, f.Lag, f.Skipped, f.Reread, f.RereadBound, f.BoundFrom, f.DuplicateReads, f.Backwards, f.Untranslated)
	if f.Error != "" {
		l += "  (" + f.Error + ")"
	}
	return l
}
