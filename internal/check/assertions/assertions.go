// Package assertions is kmt's one assertion language: a scenario's built-in
// checks (no loss, duplicate budget, order, p99 latency per phase, time to
// recover after a fault) and its hand-written PromQL compile to the same
// Assertion values, which are evaluated either by an embedded Prometheus
// (TSDB + the real PromQL engine, fed by a Collector that scrapes in-process
// registries the way a Prometheus server would) or by a real Prometheus over
// its HTTP API (kube-prometheus-stack on Kubernetes). The same text gives the
// same verdict on both; the differential test in promtest checks that.
//
// Label scheme: every kmt series carries scenario, run and role; a real
// Prometheus adds job and instance. Built-in expressions therefore aggregate
// everything away (sum/max without grouping), so they do not depend on which
// of those labels exist.
package assertions

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Comparison operators.
const (
	OpLT      = "<"
	OpLE      = "<="
	OpEQ      = "=="
	OpNE      = "!="
	OpGE      = ">="
	OpGT      = ">"
	OpBetween = "between"
)

// Ops lists the comparison operators in the order they are documented.
var Ops = []string{OpLT, OpLE, OpEQ, OpNE, OpGE, OpGT, OpBetween}

// Evaluation modes.
const (
	// ModeEnd evaluates once, at the window's end.
	ModeEnd = "end"
	// ModeContinuous evaluates every Interval across the window; more than
	// Tolerate failed evaluations fail the assertion.
	ModeContinuous = "continuous"
	// ModeWithin passes if the comparison holds at some evaluation point
	// (every Interval) in [window end, window end + Within]; the observed
	// value is the seconds from the window's end to the first such point.
	ModeWithin = "within"
)

// Default evaluation steps.
const (
	DefaultInterval = 5 * time.Second // continuous mode, as in scenarios
	WithinStep      = time.Second     // within mode
)

// Built-in assertion names.
const (
	NameNoLoss        = "no-loss"
	NameMaxDuplicates = "max-duplicates"
	NameOrdered       = "ordered"
	// NameP99Prefix and NameRecoversPrefix are followed by the phase / fault name.
	NameP99Prefix      = "p99-latency-"
	NameRecoversPrefix = "recovers-within-"
)

// Assertion is one compiled check: a PromQL expression, a comparison, a
// window and a mode.
type Assertion struct {
	Name string `json:"name"`
	Expr string `json:"expr"`
	Op   string `json:"op"`
	// Value is the threshold of every op but between.
	Value float64 `json:"value"`
	// Range is [low, high], inclusive, for op between.
	Range [2]float64 `json:"range"`
	// Window: run | warmup | steady | recovery | drain | fault:<name>.
	Window string `json:"window"`
	Mode   string `json:"mode"`
	// Interval is the evaluation step of modes continuous and within.
	Interval time.Duration `json:"interval,omitempty"`
	// Tolerate is how many failed evaluations continuous mode accepts.
	Tolerate int `json:"tolerate,omitempty"`
	// Within (mode within) is how long after the window's end the
	// comparison may take to hold.
	Within      time.Duration `json:"within,omitempty"`
	Builtin     bool          `json:"builtin"`
	Description string        `json:"description"`
}

// Threshold describes the comparison for humans: "< 0.5", "between [1, 2]".
func (a Assertion) Threshold() string {
	if a.Op == OpBetween {
		return fmt.Sprintf("between [%s, %s]", fmtFloat(a.Range[0]), fmtFloat(a.Range[1]))
	}
	return a.Op + " " + fmtFloat(a.Value)
}

// Holds reports whether v satisfies the assertion's comparison. NaN never
// holds.
func (a Assertion) Holds(v float64) bool { return Compare(a.Op, v, a.Value, a.Range) }

// Compare applies op to v and the threshold (value, or rng for between,
// inclusive). NaN satisfies nothing, not even !=, so an undefined result
// can never pass an assertion. An unknown op is false.
func Compare(op string, v, value float64, rng [2]float64) bool {
	if math.IsNaN(v) {
		return false
	}
	switch op {
	case OpLT:
		return v < value
	case OpLE:
		return v <= value
	case OpEQ:
		return v == value
	case OpNE:
		return v != value
	case OpGE:
		return v >= value
	case OpGT:
		return v > value
	case OpBetween:
		return v >= rng[0] && v <= rng[1]
	}
	return false
}

// Compile turns a scenario's assertions into Assertion values: the built-ins
// first (in a fixed order), then the custom ones. It checks every expression
// with CheckExprs, so an unknown metric or a PromQL syntax error is returned
// here as *ExprError (joined with errors.Join when there are several). Pass
// the scenario as it will run (ShortForm() for --short): window lengths
// come from its phases.
func Compile(s *scenarios.Scenario) ([]Assertion, error) {
	if s == nil {
		return nil, fmt.Errorf("compile assertions: no scenario")
	}
	out, err := builtinAssertions(s)
	if err != nil {
		return nil, err
	}
	builtin := map[string]bool{}
	for _, a := range out {
		builtin[a.Name] = true
	}
	for i, c := range s.Spec.Assertions.Custom {
		if builtin[c.Name] {
			return nil, fmt.Errorf("compile assertion custom[%d]: name %q is taken by a built-in assertion; rename it", i, c.Name)
		}
		a, err := customAssertion(c)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	for _, a := range out {
		if err := a.checkShape(); err != nil {
			return nil, err
		}
	}
	if err := CheckExprs(out); err != nil {
		return nil, err
	}
	return out, nil
}

// builtinAssertions compiles the scenario's built-in assertions, in a fixed
// order: noLoss, maxDuplicates, ordered, p99LatencyBelow, recoversWithin.
func builtinAssertions(s *scenarios.Scenario) ([]Assertion, error) {
	sa := s.Spec.Assertions
	var out []Assertion
	if sa.NoLoss != nil && *sa.NoLoss {
		out = append(out, noLossAssertion())
	}
	if sa.MaxDuplicates != nil {
		out = append(out, maxDuplicatesAssertion(*sa.MaxDuplicates))
	}
	if sa.Ordered != nil && *sa.Ordered {
		out = append(out, orderedAssertion())
	}
	if p := sa.P99LatencyBelow; p != nil {
		a, err := p99Assertion(s, p)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	if r := sa.RecoversWithin; r != nil {
		a, err := recoversAssertion(s, r)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func noLossAssertion() Assertion {
	return Assertion{
		Name:    NameNoLoss,
		Expr:    fmt.Sprintf(`sum(%s{%s="lost"})`, metrics.ValidatorMissing, metrics.LabelCategory),
		Op:      OpEQ,
		Window:  "run",
		Mode:    ModeEnd,
		Builtin: true,
		Description: "no acknowledged record is missing at the target below the highest sequence seen for its stream, " +
			"at the end of the run (after drain)",
	}
}

func maxDuplicatesAssertion(n int64) Assertion {
	return Assertion{
		Name:        NameMaxDuplicates,
		Expr:        fmt.Sprintf(`sum(%s{%s="duplicate"})`, metrics.ValidatorAnomaly, metrics.LabelCategory),
		Op:          OpLE,
		Value:       float64(n),
		Window:      "run",
		Mode:        ModeEnd,
		Builtin:     true,
		Description: fmt.Sprintf("at most %d records were written twice to the target (same stream and sequence at two offsets) over the run", n),
	}
}

func orderedAssertion() Assertion {
	return Assertion{
		Name:        NameOrdered,
		Expr:        fmt.Sprintf(`sum(%s{%s="reordered"})`, metrics.ValidatorAnomaly, metrics.LabelCategory),
		Op:          OpEQ,
		Window:      "run",
		Mode:        ModeEnd,
		Builtin:     true,
		Description: "no record arrived at the target after a later sequence of its stream, over the run",
	}
}

func p99Assertion(s *scenarios.Scenario, p *scenarios.PhaseValue) (Assertion, error) {
	length, err := windowLength(s, p.Phase)
	if err != nil {
		return Assertion{}, fmt.Errorf("compile assertion p99LatencyBelow: %w", err)
	}
	// increase() needs two samples inside its range: a window shorter
	// than a few scrape intervals would leave it empty ("no series").
	// MinQuantileRange is the floor; the range then reaches a little
	// before the window's start.
	secs := int64(math.Ceil(max(length, MinQuantileRange).Seconds()))
	return Assertion{
		Name: NameP99Prefix + p.Phase,
		Expr: fmt.Sprintf(`histogram_quantile(0.99, sum by (le) (increase(%s_bucket[%ds])))`,
			metrics.ValidatorLatency, secs),
		Op:      OpLT,
		Value:   p.Value.D().Seconds(),
		Window:  p.Phase,
		Mode:    ModeEnd,
		Builtin: true,
		Description: fmt.Sprintf("the 99th percentile of end-to-end latency (produce to target read) over the %s window "+
			"(%ds, evaluated at its end) is below %s", p.Phase, secs, p.Value),
	}, nil
}

func recoversAssertion(s *scenarios.Scenario, r *scenarios.RecoversWithin) (Assertion, error) {
	if _, ok := s.FaultByName(r.After); !ok {
		return Assertion{}, fmt.Errorf("compile assertion recoversWithin: no fault named %q in spec.timeline", r.After)
	}
	lag := r.LagBelow
	if lag == 0 {
		lag = scenarios.DefaultLagBelow
	}
	return Assertion{
		Name:     NameRecoversPrefix + r.After,
		Expr:     fmt.Sprintf(`sum(%s)`, metrics.ValidatorLag),
		Op:       OpLT,
		Value:    lag,
		Window:   "fault:" + r.After,
		Mode:     ModeWithin,
		Interval: WithinStep,
		Within:   r.Value.D(),
		Builtin:  true,
		Description: fmt.Sprintf("after fault %s ends, mirror lag (acked minus distinct received records) "+
			"drops below %s within %s; observed: seconds from the fault's end to recovery", r.After, fmtFloat(lag), r.Value),
	}, nil
}

// customAssertion compiles one of spec.assertions.custom, with the
// defaults: window run, mode end, DefaultInterval when continuous.
func customAssertion(c scenarios.PromAssertion) (Assertion, error) {
	a := Assertion{
		Name:     c.Name,
		Expr:     strings.TrimSpace(c.Expr),
		Op:       c.Op,
		Value:    c.Value,
		Window:   c.Window,
		Mode:     c.Mode,
		Interval: c.Interval.D(),
		Tolerate: c.Tolerate,
	}
	if a.Window == "" {
		a.Window = "run"
	}
	if a.Mode == "" {
		a.Mode = ModeEnd
	}
	if c.Op == OpBetween {
		if len(c.Range) != 2 {
			return Assertion{}, fmt.Errorf("compile assertion %q: op between needs range: [low, high], got %v", c.Name, c.Range)
		}
		a.Range = [2]float64{c.Range[0], c.Range[1]}
	}
	if a.Mode == ModeContinuous && a.Interval <= 0 {
		a.Interval = DefaultInterval
	}
	a.Description = fmt.Sprintf("%s %s, mode %s over window %s", a.Expr, a.Threshold(), a.Mode, a.Window)
	return a, nil
}

// checkShape rejects what Evaluate could not run (for scenarios that were
// never validated, and hand-built Assertions).
func (a Assertion) checkShape() error {
	if !slices.Contains(Ops, a.Op) {
		return fmt.Errorf("assertion %q: unknown comparison %q (use one of %s)", a.Name, a.Op, strings.Join(Ops, " "))
	}
	if a.Op == OpBetween && a.Range[0] > a.Range[1] {
		return fmt.Errorf("assertion %q: range [%g, %g] has low > high", a.Name, a.Range[0], a.Range[1])
	}
	switch a.Mode {
	case ModeEnd:
	case ModeContinuous:
		if a.Interval <= 0 {
			return fmt.Errorf("assertion %q: mode continuous needs an interval > 0", a.Name)
		}
	case ModeWithin:
		if a.Within <= 0 || a.Interval <= 0 {
			return fmt.Errorf("assertion %q: mode within needs within > 0 and interval > 0", a.Name)
		}
	default:
		return fmt.Errorf("assertion %q: unknown mode %q (end, continuous or within)", a.Name, a.Mode)
	}
	if !validWindowName(a.Window) {
		return fmt.Errorf("assertion %q: unknown window %q (run, warmup, steady, recovery, drain or fault:<name>)", a.Name, a.Window)
	}
	return nil
}

func validWindowName(w string) bool {
	switch w {
	case "run", "warmup", "steady", "recovery", "drain":
		return true
	}
	name, ok := strings.CutPrefix(w, "fault:")
	return ok && name != ""
}

// MinQuantileRange is the shortest range a built-in quantile looks over:
// five of the embedded collector's 1 s intervals.
const MinQuantileRange = 5 * time.Second

// windowLength is the planned length of a window of s.
func windowLength(s *scenarios.Scenario, window string) (time.Duration, error) {
	ps := s.Phases()
	if window == "run" {
		var end time.Duration
		for _, p := range ps {
			end = max(end, p.End)
		}
		return end, nil
	}
	for _, p := range ps {
		if p.Name == window {
			return p.End - p.Start, nil
		}
	}
	names := []string{"run"}
	for _, p := range ps {
		names = append(names, p.Name)
	}
	return 0, fmt.Errorf("scenario %s has no %q window (it has: %s)", s.Metadata.Name, window, strings.Join(names, ", "))
}

func fmtFloat(v float64) string { return fmt.Sprintf("%g", v) }
