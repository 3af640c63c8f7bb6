package assertions

import (
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
)

// ScopeToRun returns the assertions with every series selector narrowed to
// one run: the matcher run="<run>" is added to each selector that has no
// matcher on the run label yet (one the author wrote is kept as written).
//
// Why: the built-in expressions aggregate every label away (sum, max
// without grouping) so that they do not depend on the labels a Prometheus
// adds. In-process that is one run's series; a real Prometheus keeps every
// run it scraped, so two validators judged by one Prometheus at once (two
// scenario charts in one cluster, or a rerun while the last run's series
// are still fresh) would be summed together: one run's loss would fail the
// other, or the other's clean counts would hide it. Every selector selects
// a kmt metric (CheckExprs refuses any other), and every kmt series carries
// the run label (metrics.Wrap), so the narrowed expression still finds this
// run's series and only those.
func ScopeToRun(as []Assertion, run string) ([]Assertion, error) {
	if run == "" {
		return nil, fmt.Errorf("scope assertions to a run: the run id is empty")
	}
	out := make([]Assertion, len(as))
	for i, a := range as {
		expr, err := scopeExpr(a.Expr, run)
		if err != nil {
			return nil, fmt.Errorf("scope assertion %q to run %s: %w", a.Name, run, err)
		}
		a.Expr = expr
		out[i] = a
	}
	return out, nil
}

// scopeExpr adds run="<run>" to every vector selector of expr (range
// selectors and subqueries wrap vector selectors, so they are covered).
func scopeExpr(expr, run string) (string, error) {
	node, err := promParser.ParseExpr(expr)
	if err != nil {
		return "", err
	}
	var addErr error
	parser.Inspect(node, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name == metrics.LabelRun {
				return nil
			}
		}
		m, err := labels.NewMatcher(labels.MatchEqual, metrics.LabelRun, run)
		if err != nil {
			addErr = err
			return err
		}
		vs.LabelMatchers = append(vs.LabelMatchers, m)
		return nil
	})
	if addErr != nil {
		return "", addErr
	}
	return node.String(), nil
}
