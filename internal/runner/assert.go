package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/assertions"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
	"github.com/kmt-dev/kafka-mirror-tester/validator"
)

// prepareAssertions compiles the scenario's assertions and checks every
// expression and metric name before anything starts (exit 2 on a typo).
func (r *run) prepareAssertions() ([]assertions.Assertion, error) {
	as, err := assertions.Compile(r.s)
	if err != nil {
		return nil, Usage(LocateExprErrors(r.s, err))
	}
	if err := assertions.CheckExprs(as); err != nil {
		return nil, Usage(LocateExprErrors(r.s, err))
	}
	return as, nil
}

// LocateExprErrors points each PromQL problem of CheckExprs at the file,
// line and field of its custom assertion (spec.assertions.custom[i].expr),
// so it reads like every other scenario error. Built-in assertions have no
// line of their own and keep the file only.
func LocateExprErrors(s *scenarios.Scenario, err error) error {
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out scenarios.Errors
	for _, e := range errs {
		se := &scenarios.Error{File: s.File, Msg: e.Error()}
		var ee *assertions.ExprError
		if errors.As(e, &ee) {
			for i, c := range s.Spec.Assertions.Custom {
				if c.Name == ee.Assertion {
					se.Field = fmt.Sprintf("spec.assertions.custom[%d].expr", i)
					se.Line = s.Line(se.Field)
					break
				}
			}
		}
		out = append(out, se)
	}
	return out
}

// localProm is the embedded Prometheus of a run: a TSDB filled by gathering
// the run's registry every second, as a scrape would.
type localProm struct {
	local *assertions.Local
	coll  *assertions.Collector
}

func (r *run) collector(as []assertions.Assertion) (*localProm, error) {
	if len(as) == 0 {
		return nil, nil
	}
	// The TSDB logs its housekeeping at info; only its warnings matter here.
	l, err := assertions.NewLocal(assertions.LocalOptions{Logger: quiet(r.log.With("part", "promql"))})
	if err != nil {
		return nil, Env(err)
	}
	r.defer_(func() { l.Close() })
	c := assertions.NewCollector(l, []assertions.Target{{Role: "run", Gatherer: r.reg}}, assertions.CollectorOptions{Interval: time.Second, Logger: r.log})
	c.Start(context.Background())
	r.defer_(func() { c.Stop() })
	return &localProm{local: l, coll: c}, nil
}

// evaluate stops collection and evaluates every assertion over the phase
// windows as they really happened.
func (r *run) evaluate(p *localProm, as []assertions.Assertion) []report.Assertion {
	if p == nil {
		return nil
	}
	if err := p.coll.Stop(); err != nil {
		r.log.Warn("final metrics gather failed", "err", err)
	}
	w := assertions.Windows{}
	for name, span := range r.phases.windows() {
		w[name] = assertions.Window{Start: span[0], End: span[1]}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return ReportAssertions(as, assertions.EvaluateAll(ctx, p.local, as, w))
}

// ReportAssertions turns evaluated assertions into report entries.
func ReportAssertions(as []assertions.Assertion, results []assertions.Result) []report.Assertion {
	out := make([]report.Assertion, 0, len(results))
	for i, res := range results {
		ra := toReportAssertion(res, as[i].Builtin)
		if as[i].Mode == assertions.ModeWithin {
			// Observed is seconds to recovery: compare it with the time
			// allowed, in the same unit. The lag bound the expression
			// compares against stays in expr and reason.
			ra.Op, ra.Threshold = "<=", []float64{as[i].Within.Seconds()}
		}
		out = append(out, ra)
	}
	return out
}

func toReportAssertion(res assertions.Result, builtin bool) report.Assertion {
	th := []float64{res.Value}
	if res.Op == assertions.OpBetween {
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

// ApplyResult copies the validator's result into the report.
func ApplyResult(rep *report.Report, res *validator.Result) {
	rep.Counts = res.Counts
	rep.ExtraCounts.Truncated = res.Truncated
	rep.ExtraCounts.OtherRuns = res.OtherRuns
	rep.LatencySeconds = res.Latency
	rep.Examples = res.Examples
	rep.Drain = report.Drain{Complete: res.DrainComplete, Seconds: res.DrainSeconds}
	rep.SourceChecked = res.SourceChecked
	rep.LatencySeconds.Negative, rep.LatencySeconds.MostNegative = res.NegativeLatency, res.MostNegativeSeconds
	if res.RedeliveryLatency.Count > 0 {
		rep.RedeliveryLatencySeconds = &res.RedeliveryLatency
	}
	if !res.DrainComplete && res.TargetUnread {
		// Unread target data at the deadline: what was not read cannot
		// be judged, so this is not a pass.
		rep.Verdict = report.Incomplete
		rep.Error = strings.TrimPrefix(rep.Error+"; ", "; ") + "the drain deadline passed with target records still unread: raise spec.drain, or check the validator's read rate"
	}
	if len(res.LedgerProblems) > 0 {
		// A ledger that does not add up cannot tell loss from a lost ledger entry.
		rep.Verdict = report.Incomplete
		rep.Error = strings.TrimPrefix(rep.Error+"; ", "; ") + "the ledger does not add up: " + strings.Join(res.LedgerProblems, "; ")
	}
}

// quiet drops records below warn from log.
func quiet(log *slog.Logger) *slog.Logger {
	return slog.New(minLevel{log.Handler(), slog.LevelWarn})
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.Handler.Enabled(ctx, l)
}
func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{m.Handler.WithAttrs(a), m.min}
}
func (m minLevel) WithGroup(n string) slog.Handler { return minLevel{m.Handler.WithGroup(n), m.min} }
