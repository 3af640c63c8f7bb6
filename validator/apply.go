package validator

import (
	"strings"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// ApplyResult copies the validator's result into the report.
func ApplyResult(rep *report.Report, res *Result) {
	rep.Counts = res.Counts
	rep.ExtraCounts.Truncated = res.Truncated
	rep.ExtraCounts.OtherRuns = res.OtherRuns
	rep.LatencySeconds = res.Latency
	rep.Examples = res.Examples
	rep.Drain = report.Drain{Complete: res.DrainComplete, Seconds: res.DrainSeconds}
	rep.SourceChecked = res.SourceChecked
	rep.Transactions, rep.Fidelity = res.Transactions, res.Fidelity
	rep.Stalls, rep.MetadataSync = res.Stalls, res.MetadataSync
	rep.LatencySeconds.Negative, rep.LatencySeconds.MostNegative = res.NegativeLatency, res.MostNegativeSeconds
	if res.RedeliveryLatency.Count > 0 {
		rep.RedeliveryLatencySeconds = &res.RedeliveryLatency
	}
	if !res.DrainComplete && res.TargetUnread {
		// Unread target data at the deadline: what was not read cannot
		// be judged, so this is not a pass.
		rep.Verdict = report.Incomplete
		why := "the drain deadline passed with target records still unread: raise spec.drain, or check the validator's read rate"
		if res.TargetMissing != "" {
			why = res.TargetMissing + ": check the target topic name (MirrorMaker 2's default replication policy writes <source alias>.<topic>; --target-topic sets it) and that the mirror runs"
		}
		rep.Error = strings.TrimPrefix(rep.Error+"; ", "; ") + why
	}
	if len(res.LedgerProblems) > 0 {
		// A ledger that does not add up cannot tell loss from a lost ledger entry.
		rep.Verdict = report.Incomplete
		rep.Error = strings.TrimPrefix(rep.Error+"; ", "; ") + "the ledger does not add up: " + strings.Join(res.LedgerProblems, "; ")
	}
}
