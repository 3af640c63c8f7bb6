package runner

import (
	"strings"

	"github.com/kmt-dev/kafka-mirror-tester/internal/health"
	"github.com/kmt-dev/kafka-mirror-tester/internal/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/loadgen"
)

// judgeHarness records kmt's own health over the load in the report. When
// kmt was saturated, a failed timing assertion (latency, lag: anything over
// the validator's latency or lag metrics) measured kmt's own queueing as
// much as the mirror's: it is marked incomplete with the reason, and a run
// that failed only on such assertions is incomplete, not failed. Anomalies
// (loss, corruption, ...) do not depend on kmt's speed and still fail it.
func judgeHarness(rep *report.Report, cpu health.CPU, ls loadgen.Stats, targetRate float64) {
	h := health.NewReport(health.Sample{TargetRate: targetRate, AchievedRate: ls.Rate(), Skipped: ls.Skipped, CPU: cpu, ReadLagSeconds: -1})
	rep.Harness = h
	if !h.Saturated {
		return
	}
	why := "kmt itself was saturated: " + strings.Join(h.Reasons, "; ")
	timing := map[string]bool{}
	for i := range rep.Assertions {
		a := &rep.Assertions[i]
		if !a.Pass && isTimingExpr(a.Expr) {
			timing["assertion "+a.Name+" failed: "+a.Reason] = true
			a.Reason = "incomplete (" + why + "): " + a.Reason
		}
	}
	onlyTiming := rep.Verdict == report.Fail
	for _, r := range rep.Reasons {
		if !timing[r] {
			onlyTiming = false
		}
	}
	if onlyTiming {
		rep.Verdict = report.Incomplete
	}
	if rep.Verdict != report.Pass { // a timing assertion that held while kmt was slow still holds
		rep.Reasons = append(rep.Reasons, why)
	}
}

// isTimingExpr: the assertion measures time through the validator, so kmt's
// own queueing is part of what it observed.
func isTimingExpr(expr string) bool {
	return strings.Contains(expr, metrics.ValidatorLatency) || strings.Contains(expr, metrics.ValidatorLag)
}
