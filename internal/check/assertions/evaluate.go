package assertions

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// Series is one element of an instant query result. A scalar result is one
// Series without labels.
type Series struct {
	Labels map[string]string `json:"labels"`
	Value  float64           `json:"value"`
}

// Point is one value of a range query result.
type Point struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// RangeSeries is one series of a range query result.
type RangeSeries struct {
	Labels map[string]string `json:"labels"`
	Points []Point           `json:"points"`
}

// Querier runs PromQL. Local (embedded TSDB and engine) and Remote (a
// Prometheus HTTP API) implement it, with Prometheus' semantics: a range
// query's points are at start, start+step, ... <= end.
type Querier interface {
	Instant(ctx context.Context, expr string, t time.Time) ([]Series, error)
	Range(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]RangeSeries, error)
}

// Result is the outcome of one assertion.
type Result struct {
	Name   string     `json:"name"`
	Expr   string     `json:"expr"`
	Window string     `json:"window"`
	Mode   string     `json:"mode"`
	Op     string     `json:"op"`
	Value  float64    `json:"value"`           // threshold (all ops but between)
	Range  [2]float64 `json:"range,omitempty"` // threshold of between
	// Start and End are the span that was evaluated (End only for mode end).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Observed: mode end, one value; continuous, the value of every
	// evaluation that returned exactly one number (evaluations with no
	// series, several series or NaN are counted in Failures and described in
	// Reason, never stored as NaN, so the result marshals to JSON); within,
	// the seconds from the window's end to recovery (empty if it never
	// recovered).
	Observed    []float64 `json:"observed"`
	Evaluations int       `json:"evaluations"`
	Failures    int       `json:"failures"`
	Tolerate    int       `json:"tolerate,omitempty"`
	Pass        bool      `json:"pass"`
	Reason      string    `json:"reason"`
	EvaluatedAt time.Time `json:"evaluatedAt"`
}

// Reasons for failed evaluations, spelled out for the report.
const (
	ReasonNoSeries = "no series: the metric was never exported in this window — is the component running and scraped?"
	ReasonNaN      = "the expression evaluated to NaN (for histogram_quantile: no observations in the window; otherwise 0/0 or NaN input)"
)

// Evaluate runs one assertion against q over window a.Window of w. Every
// failure (no series, several series, NaN, a query error, an unknown
// window) is a Result with Pass false and the reason, never a panic or an
// error.
func Evaluate(ctx context.Context, q Querier, a Assertion, w Windows) Result {
	r := Result{Name: a.Name, Expr: a.Expr, Window: a.Window, Mode: a.Mode, Op: a.Op, Value: a.Value,
		Tolerate: a.Tolerate, EvaluatedAt: time.Now()}
	if a.Op == OpBetween {
		r.Range = a.Range
		r.Value = 0
	}
	if err := a.checkShape(); err != nil {
		r.Reason = err.Error()
		return r
	}
	win, err := w.Lookup(a.Window)
	if err != nil {
		r.Reason = err.Error()
		return r
	}
	switch a.Mode {
	case ModeEnd:
		r.Start, r.End = win.End, win.End
		evalEnd(ctx, q, a, win.End, &r)
	case ModeContinuous:
		r.Start, r.End = win.Start, win.End
		evalContinuous(ctx, q, a, win.Start, win.End, &r)
	case ModeWithin:
		r.Start, r.End = win.End, win.End.Add(a.Within)
		evalWithin(ctx, q, a, r.Start, r.End, &r)
	}
	return r
}

// EvaluateAll evaluates each assertion in order.
func EvaluateAll(ctx context.Context, q Querier, as []Assertion, w Windows) []Result {
	out := make([]Result, 0, len(as))
	for _, a := range as {
		out = append(out, Evaluate(ctx, q, a, w))
	}
	return out
}

// one reduces a result to its single value, or says why it cannot.
func one(ss []Series) (float64, string) {
	switch len(ss) {
	case 0:
		return 0, ReasonNoSeries
	case 1:
		if math.IsNaN(ss[0].Value) {
			return 0, ReasonNaN
		}
		return ss[0].Value, ""
	}
	sets := make([]string, 0, len(ss))
	for _, s := range ss {
		sets = append(sets, labelString(s.Labels))
	}
	sort.Strings(sets)
	return 0, fmt.Sprintf("%d series where one was expected (aggregate with sum(...) or max(...), or select one): %s",
		len(ss), strings.Join(sets, ", "))
}

func evalEnd(ctx context.Context, q Querier, a Assertion, t time.Time, r *Result) {
	r.Evaluations = 1
	ss, err := q.Instant(ctx, a.Expr, t)
	if err != nil {
		r.Failures = 1
		r.Reason = fmt.Sprintf("query failed at %s: %v", t.UTC().Format(time.RFC3339Nano), err)
		return
	}
	v, why := one(ss)
	if why != "" {
		r.Failures = 1
		r.Reason = why
		return
	}
	r.Observed = []float64{v}
	r.Pass = a.Holds(v)
	if r.Pass {
		r.Reason = fmt.Sprintf("%s %s holds", fmtFloat(v), a.Threshold())
	} else {
		r.Failures = 1
		r.Reason = fmt.Sprintf("observed %s, expected %s", fmtFloat(v), a.Threshold())
	}
}

// steps evaluates expr at start, start+step, ... <= end with one range
// query and returns, per step, the series present there.
func steps(ctx context.Context, q Querier, expr string, start, end time.Time, step time.Duration) ([]time.Time, [][]Series, error) {
	// Millisecond resolution, as the TSDB and the HTTP API have.
	start, end = start.Truncate(time.Millisecond), end.Truncate(time.Millisecond)
	n := int(end.Sub(start)/step) + 1
	if n < 1 {
		return nil, nil, fmt.Errorf("empty span [%s, %s]", start, end)
	}
	ts := make([]time.Time, n)
	for i := range ts {
		ts[i] = start.Add(time.Duration(i) * step)
	}
	rs, err := q.Range(ctx, expr, start, end, step)
	if err != nil {
		return nil, nil, err
	}
	at := make([][]Series, n)
	for _, s := range rs {
		for _, p := range s.Points {
			i := int(math.Round(float64(p.T.Sub(start)) / float64(step)))
			if i < 0 || i >= n {
				continue
			}
			at[i] = append(at[i], Series{Labels: s.Labels, Value: p.V})
		}
	}
	return ts, at, nil
}

func evalContinuous(ctx context.Context, q Querier, a Assertion, start, end time.Time, r *Result) {
	ts, at, err := steps(ctx, q, a.Expr, start, end, a.Interval)
	if err != nil {
		r.Reason = fmt.Sprintf("range query failed over [%s, %s] step %s: %v",
			start.UTC().Format(time.RFC3339Nano), end.UTC().Format(time.RFC3339Nano), a.Interval, err)
		return
	}
	r.Evaluations = len(ts)
	var fails []string
	for i, t := range ts {
		v, why := one(at[i])
		if why == "" {
			r.Observed = append(r.Observed, v)
			if a.Holds(v) {
				continue
			}
			why = fmt.Sprintf("observed %s, expected %s", fmtFloat(v), a.Threshold())
		}
		r.Failures++
		fails = append(fails, fmt.Sprintf("+%s: %s", t.Sub(ts[0]), why))
	}
	r.Pass = r.Failures <= a.Tolerate
	summary := fmt.Sprintf("%d of %d evaluations (every %s) failed, %d tolerated", r.Failures, r.Evaluations, a.Interval, a.Tolerate)
	if len(fails) > 0 {
		const show = 5
		more := ""
		if len(fails) > show {
			more = fmt.Sprintf("; and %d more", len(fails)-show)
			fails = fails[:show]
		}
		summary += ": " + strings.Join(fails, "; ") + more
	}
	r.Reason = summary
}

func evalWithin(ctx context.Context, q Querier, a Assertion, start, end time.Time, r *Result) {
	ts, at, err := steps(ctx, q, a.Expr, start, end, a.Interval)
	if err != nil {
		r.Reason = fmt.Sprintf("range query failed over [%s, %s] step %s: %v",
			start.UTC().Format(time.RFC3339Nano), end.UTC().Format(time.RFC3339Nano), a.Interval, err)
		return
	}
	var last float64
	seen, reasons := false, map[string]int{}
	for i, t := range ts {
		r.Evaluations++
		v, why := one(at[i])
		if why != "" {
			r.Failures++
			reasons[why]++
			continue
		}
		seen, last = true, v
		if a.Holds(v) {
			secs := t.Sub(ts[0]).Seconds()
			r.Observed = []float64{secs}
			r.Pass = true
			r.Reason = fmt.Sprintf("%s %s held %gs after the end of %s (allowed %s)", fmtFloat(v), a.Threshold(), secs, a.Window, a.Within)
			return
		}
		r.Failures++
	}
	switch {
	case !seen && len(reasons) == 1:
		for why := range reasons {
			r.Reason = why
		}
	case !seen:
		var ws []string
		for why, n := range reasons {
			ws = append(ws, fmt.Sprintf("%d× %s", n, why))
		}
		sort.Strings(ws)
		r.Reason = "no evaluation returned one number: " + strings.Join(ws, "; ")
	default:
		r.Reason = fmt.Sprintf("%s never held within %s after the end of %s (last observed %s)", a.Threshold(), a.Within, a.Window, fmtFloat(last))
	}
}

func labelString(l map[string]string) string {
	keys := slices.Sorted(maps.Keys(l))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%q", k, l[k]))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}
