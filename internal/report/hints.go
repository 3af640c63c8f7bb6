package report

import (
	"fmt"
	"strings"
	"time"
)

// hints says what to check when the counts point at the setup rather than
// at the mirror: acked records and not one of this run at the target is
// almost always a wrong target topic, a mirror that renames topics, or a
// mirror that does not run.
func (r *Report) hints() []string {
	c := r.Counts
	if c.Acked == 0 || c.Received > 0 {
		return nil
	}
	h := []string{
		fmt.Sprintf("nothing of run %s arrived at the target (%d acked by the source)", r.Run, c.Acked),
		"check the target topic name: MirrorMaker 2 writes <alias>.<topic> (e.g. source.orders) unless it uses the IdentityReplicationPolicy; tell kmt with --target-topic or the topic's targetName",
	}
	if len(r.MirrorExits) > 0 {
		h = append(h, fmt.Sprintf("the mirror process exited (%s); see %s", r.MirrorExits[0].Status, r.MirrorExits[0].Log))
	} else {
		h = append(h, "check that the mirror runs, reaches both clusters and reads the source topic from the beginning (its log)")
	}
	if n := r.ExtraCounts.OtherRuns; n > 0 {
		h = append(h, fmt.Sprintf("the target topic holds %d records of other kmt runs: is --run-id the loadgen's?", n))
	}
	if n := c.Foreign; n > 0 {
		h = append(h, fmt.Sprintf("the target topic holds %d records that are not kmt's: is it the mirror's output topic?", n))
	}
	return h
}

// lastLine is the last non-empty line of a process's output tail.
func lastLine(tail string) string {
	lines := strings.Split(strings.TrimRight(tail, "\n"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return "(no output)"
}

func relTime(t0, t time.Time) string {
	if t0.IsZero() || t.IsZero() {
		return t.Format(time.RFC3339)
	}
	return "+" + t.Sub(t0).Round(100*time.Millisecond).String()
}
