package assertions

import "github.com/kmt-dev/kafka-mirror-tester/internal/report"

// ToReport turns evaluated assertions into report.json entries.
func ToReport(as []Assertion, results []Result) []report.Assertion {
	out := make([]report.Assertion, 0, len(results))
	for i, res := range results {
		ra := toReportAssertion(res, as[i].Builtin)
		if as[i].Mode == ModeWithin {
			// Observed is seconds to recovery: compare it with the time
			// allowed, in the same unit. The lag bound the expression
			// compares against stays in expr and reason.
			ra.Op, ra.Threshold = "<=", []float64{as[i].Within.Seconds()}
		}
		out = append(out, ra)
	}
	return out
}

func toReportAssertion(res Result, builtin bool) report.Assertion {
	th := []float64{res.Value}
	if res.Op == OpBetween {
		th = []float64{res.Range[0], res.Range[1]}
	}
	obs := res.Observed
	if obs == nil {
		obs = []float64{}
	}
	return report.Assertion{
		Name: res.Name, Expr: res.Expr, Window: res.Window, Mode: res.Mode, Op: res.Op,
		Threshold: th, Observed: obs, Pass: res.Pass, Reason: res.Reason, Builtin: builtin,
	}
}
