package assertions

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
)

// promParser parses with Prometheus' default options (the functions every
// Prometheus server has, no experimental ones), so an expression accepted
// here is accepted by a plain Prometheus too.
var promParser = parser.NewParser(parser.Options{})

// ExprError is a bad assertion expression: a PromQL syntax error or a
// metric kmt does not export. It is a "bad scenario" error (exit code 2).
type ExprError struct {
	Assertion string // the assertion's name
	Expr      string
	// Line and Col (1-based) locate the problem inside Expr.
	Line, Col int
	// Metric is the unknown metric name ("" for a syntax error).
	Metric string
	// Suggestion is the closest known metric name ("" when none or a syntax error).
	Suggestion string
	// Msg says what is wrong.
	Msg string
}

func (e *ExprError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "assertion %q: expression %q, at %d:%d: %s", e.Assertion, e.Expr, e.Line, e.Col, e.Msg)
	if e.Suggestion != "" {
		fmt.Fprintf(&b, " (did you mean %s?)", e.Suggestion)
	}
	if e.Metric != "" {
		b.WriteString("; kmt exports: " + strings.Join(metrics.Names(), ", "))
	}
	return b.String()
}

// CheckExprs parses every assertion's expression and checks each metric
// name it selects against metrics.Known. It returns nil, or the *ExprError
// values joined with errors.Join (errors.As finds the first).
func CheckExprs(as []Assertion) error {
	var errs []error
	for _, a := range as {
		for _, e := range checkExpr(a.Name, a.Expr) {
			errs = append(errs, e)
		}
	}
	return errors.Join(errs...)
}

func checkExpr(name, expr string) []*ExprError {
	if strings.TrimSpace(expr) == "" {
		return []*ExprError{{Assertion: name, Expr: expr, Line: 1, Col: 1, Msg: "empty expression"}}
	}
	node, err := promParser.ParseExpr(expr)
	if err != nil {
		var pes parser.ParseErrors
		if errors.As(err, &pes) && len(pes) > 0 {
			var out []*ExprError
			for _, pe := range pes {
				line, col := lineCol(expr, int(pe.PositionRange.Start))
				out = append(out, &ExprError{Assertion: name, Expr: expr, Line: line, Col: col,
					Msg: "PromQL syntax error: " + pe.Err.Error()})
			}
			return out
		}
		return []*ExprError{{Assertion: name, Expr: expr, Line: 1, Col: 1, Msg: "PromQL syntax error: " + err.Error()}}
	}
	if t := node.Type(); t != parser.ValueTypeVector && t != parser.ValueTypeScalar {
		if t == parser.ValueTypeMatrix {
			t = "range vector"
		}
		return []*ExprError{{Assertion: name, Expr: expr, Line: 1, Col: 1,
			Msg: fmt.Sprintf("the expression returns a %s, not one number per series; an assertion compares an instant vector or a scalar (wrap a range selector in a function such as increase(...[5m]))", t)}}
	}
	var out []*ExprError
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		line, col := lineCol(expr, int(vs.PosRange.Start))
		bad := func(metric, msg string) {
			out = append(out, &ExprError{Assertion: name, Expr: expr, Line: line, Col: col,
				Metric: metric, Suggestion: closest(metric), Msg: msg})
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != labels.MetricName {
				continue
			}
			switch m.Type {
			case labels.MatchEqual:
				if !metrics.Known(m.Value) {
					bad(m.Value, fmt.Sprintf("unknown metric %s", m.Value))
				}
			case labels.MatchRegexp:
				// A name regexp must select at least one kmt series,
				// or it is a typo that would only show as "no series".
				re, err := regexp.Compile("^(?:" + m.Value + ")$")
				if err != nil {
					bad(m.Value, fmt.Sprintf("bad metric name regexp %q: %v", m.Value, err))
					continue
				}
				hit := false
				for _, n := range metrics.Names() {
					if re.MatchString(n) {
						hit = true
						break
					}
				}
				if !hit {
					bad(m.Value, fmt.Sprintf("metric name regexp %q matches no metric kmt exports", m.Value))
				}
			}
		}
		return nil
	})
	return out
}

// lineCol turns a 0-based byte offset in s into a 1-based line and column.
func lineCol(s string, off int) (int, int) {
	if off > len(s) {
		off = len(s)
	}
	if off < 0 {
		off = 0
	}
	line, col := 1, 1
	for _, r := range s[:off] {
		if r == '\n' {
			line++
			col = 1
			continue
		}
		col++
	}
	return line, col
}

// closest returns the known metric name nearest to name by edit distance,
// or "" when even the nearest one needs more edits than half the name.
func closest(name string) string {
	best, bestD := "", -1
	for _, n := range metrics.Names() {
		d := editDistance(name, n)
		if bestD < 0 || d < bestD {
			best, bestD = n, d
		}
	}
	if bestD < 0 || bestD > len(name)/2+1 {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b (bytes).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
