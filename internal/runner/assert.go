package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/assertions"
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

// ReportAssertions turns evaluated assertions into report entries
// (assertions.ToReport).
func ReportAssertions(as []assertions.Assertion, results []assertions.Result) []report.Assertion {
	return assertions.ToReport(as, results)
}

// ApplyResult copies the validator's result into the report
// (validator.ApplyResult).
func ApplyResult(rep *report.Report, res *validator.Result) { validator.ApplyResult(rep, res) }

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
