package history

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// Thresholds say how much worse B may be than A before it is a regression.
type Thresholds struct {
	// Latency: B's p99 (overall and per phase) may exceed A's by this
	// fraction (0.5 = 50 % slower) ...
	Latency float64
	// ... and by at least LatencyFloor seconds: below it differences are
	// scheduling noise.
	LatencyFloor float64
	// Recovery: B's time to recover after a fault may exceed A's by this
	// fraction and by at least RecoveryFloor seconds.
	Recovery      float64
	RecoveryFloor float64
	// Duplicates: B may write this fraction of its acked records twice more
	// than A did (duplicates are what at-least-once mirrors do).
	Duplicates float64
	// Throughput: B's achieved load rate may fall below A's by this fraction.
	Throughput float64
}

// DefaultThresholds are what `kmt compare` uses unless told otherwise.
var DefaultThresholds = Thresholds{Latency: 0.5, LatencyFloor: 0.05, Recovery: 0.5, RecoveryFloor: 2, Duplicates: 0.001, Throughput: 0.1}

// Comparison is two runs side by side.
type Comparison struct {
	A, B        string         `json:"-"`
	RunA        string         `json:"run_a"`
	RunB        string         `json:"run_b"`
	Verdicts    [2]string      `json:"verdicts"`
	Counts      []CountDelta   `json:"counts"`
	Latency     []PhaseLatency `json:"latency"`
	Recovery    []Recovery     `json:"recovery"`
	Config      []ConfigChange `json:"config_changes"`
	Regressions []string       `json:"regressions"`
}

// CountDelta is one count in both runs.
type CountDelta struct {
	Name string `json:"name"`
	A    uint64 `json:"a"`
	B    uint64 `json:"b"`
}

// PhaseLatency is the latency of one phase (or "run", exact) in both runs.
// Per phase it is read from the per-second timeline: p50 is the median of
// the seconds' medians weighted by arrivals, p99 and max the worst second's.
type PhaseLatency struct {
	Phase string     `json:"phase"`
	A     [3]float64 `json:"a"` // p50 p99 max, seconds
	B     [3]float64 `json:"b"`
}

// Recovery is how long after a fault's end the lag came back, in both runs
// (-1: it never did before the run ended; absent from a run: NaN is never
// written, the fault is left out).
type Recovery struct {
	Fault string  `json:"fault"`
	A     float64 `json:"a_seconds"`
	B     float64 `json:"b_seconds"`
}

// ConfigChange is one setting that differs between the two effective
// scenarios (dotted path; "" for absent).
type ConfigChange struct {
	Path string `json:"path"`
	A    string `json:"a"`
	B    string `json:"b"`
}

// Compare sets a (the baseline) and b side by side and lists where b
// regressed beyond th.
func Compare(a, b *Run, th Thresholds) *Comparison {
	ra, rb := a.Report, b.Report
	c := &Comparison{A: a.Dir, B: b.Dir, RunA: ra.Run, RunB: rb.Run, Verdicts: [2]string{ra.Verdict, rb.Verdict}}
	ca, cb := countList(ra), countList(rb)
	for i := range ca {
		c.Counts = append(c.Counts, CountDelta{Name: ca[i].name, A: ca[i].v, B: cb[i].v})
	}
	c.Latency = phaseLatencies(ra, rb)
	c.Recovery = recoveries(ra, rb)
	c.Config = configDiff(ReadConfig(a.Dir), ReadConfig(b.Dir))
	c.Regressions = regressions(c, ra, rb, th)
	return c
}

type namedCount struct {
	name string
	v    uint64
}

func countList(r *report.Report) []namedCount {
	k := r.Counts
	return []namedCount{
		{"produced", k.Produced}, {"acked", k.Acked}, {"received", k.Received},
		{"lost", k.Lost}, {"unseen", k.Unseen}, {"duplicate", k.Duplicate}, {"reordered", k.Reordered},
		{"corrupt", k.Corrupt}, {"source_lost", k.SourceLost}, {"redelivery", k.Redelivery},
		{"foreign", k.Foreign}, {"truncated", r.ExtraCounts.Truncated}, {"failed", r.ExtraCounts.Failed},
	}
}

// mustNotGrow are the categories where any increase is a regression.
var mustNotGrow = []string{"lost", "unseen", "reordered", "corrupt", "source_lost", "failed"}

func regressions(c *Comparison, ra, rb *report.Report, th Thresholds) []string {
	var out []string
	if ra.Verdict == report.Pass && rb.Verdict != report.Pass {
		out = append(out, fmt.Sprintf("verdict %s -> %s: %s", ra.Verdict, rb.Verdict, strings.Join(rb.Reasons, "; ")))
	}
	counts := map[string]CountDelta{}
	for _, d := range c.Counts {
		counts[d.Name] = d
	}
	for _, n := range mustNotGrow {
		if d := counts[n]; d.B > d.A {
			out = append(out, fmt.Sprintf("%s: %d -> %d records", n, d.A, d.B))
		}
	}
	if d := counts["duplicate"]; float64(d.B) > float64(d.A)+th.Duplicates*float64(rb.Counts.Acked) {
		out = append(out, fmt.Sprintf("duplicate: %d -> %d records (more than %.2g%% of %d acked)", d.A, d.B, th.Duplicates*100, rb.Counts.Acked))
	}
	for _, l := range c.Latency {
		for i, q := range []string{"p50", "p99"} {
			if worse(l.A[i], l.B[i], th.Latency, th.LatencyFloor) {
				out = append(out, fmt.Sprintf("latency %s %s: %s -> %s (more than +%.0f%% and +%s)", l.Phase, q, dur(l.A[i]), dur(l.B[i]), th.Latency*100, dur(th.LatencyFloor)))
			}
		}
	}
	for _, r := range c.Recovery {
		switch {
		case r.B < 0 && r.A >= 0:
			out = append(out, fmt.Sprintf("recovery after %s: %s -> never (lag did not come back before the run ended)", r.Fault, dur(r.A)))
		case r.A >= 0 && worse(r.A, r.B, th.Recovery, th.RecoveryFloor):
			out = append(out, fmt.Sprintf("recovery after %s: %s -> %s", r.Fault, dur(r.A), dur(r.B)))
		}
	}
	if a, b := ra.Load.AchievedRate, rb.Load.AchievedRate; a > 0 && b < a*(1-th.Throughput) {
		out = append(out, fmt.Sprintf("load: achieved %.0f/s -> %.0f/s (more than %.0f%% lower)", a, b, th.Throughput*100))
	}
	return out
}

func worse(a, b, frac, floor float64) bool { return b > a*(1+frac) && b-a > floor }

func dur(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

func phaseLatencies(ra, rb *report.Report) []PhaseLatency {
	la, lb := ra.LatencySeconds, rb.LatencySeconds
	out := []PhaseLatency{{Phase: "run", A: [3]float64{la.P50, la.P99, la.Max}, B: [3]float64{lb.P50, lb.P99, lb.Max}}}
	pb := map[string]report.Phase{}
	for _, p := range rb.Phases {
		pb[p.Name] = p
	}
	for _, p := range ra.Phases {
		q, ok := pb[p.Name]
		if !ok {
			continue
		}
		out = append(out, PhaseLatency{Phase: p.Name, A: windowLatency(ra, p), B: windowLatency(rb, q)})
	}
	return out
}

// windowLatency summarises the timeline's seconds inside phase p.
func windowLatency(r *report.Report, p report.Phase) [3]float64 {
	t0 := r.LoadStart()
	lo, hi := p.Start.Sub(t0).Seconds(), p.End.Sub(t0).Seconds()
	type w struct {
		v float64
		n uint64
	}
	var meds []w
	var total uint64
	var out [3]float64
	for _, s := range r.Timeline {
		if float64(s.T) < math.Floor(lo) || float64(s.T) >= hi || s.Arrivals == 0 {
			continue
		}
		meds = append(meds, w{s.LatencyP50, s.Arrivals})
		total += s.Arrivals
		out[1] = max(out[1], s.LatencyP99)
		out[2] = max(out[2], s.LatencyMax, s.LatencyP50)
	}
	sort.Slice(meds, func(i, j int) bool { return meds[i].v < meds[j].v })
	var acc uint64
	for _, m := range meds {
		acc += m.n
		if acc*2 >= total {
			out[0] = m.v
			break
		}
	}
	if out[1] == 0 {
		out[1] = out[2] // a report without per-second p99: the worst median
	}
	return out
}

func recoveries(ra, rb *report.Report) []Recovery {
	ab := map[string]report.Fault{}
	for _, f := range rb.Faults {
		ab[f.Name] = f
	}
	var out []Recovery
	for _, f := range ra.Faults {
		g, ok := ab[f.Name]
		if !ok || f.End.IsZero() || g.End.IsZero() {
			continue
		}
		out = append(out, Recovery{Fault: f.Name, A: RecoverySeconds(ra, f), B: RecoverySeconds(rb, g)})
	}
	return out
}

// RecoverySeconds is how long after fault f was reverted the lag came back
// to what it was before f was applied (the highest lag of the 3 seconds
// before, plus one second of load): -1 when it never did.
func RecoverySeconds(r *report.Report, f report.Fault) float64 {
	t0 := r.LoadStart()
	start, end := f.Start.Sub(t0).Seconds(), f.End.Sub(t0).Seconds()
	var base int64
	for _, s := range r.Timeline {
		if float64(s.T) >= start-3 && float64(s.T) < start {
			base = max(base, s.Lag)
		}
	}
	base += int64(math.Ceil(r.Load.TargetRate))
	for _, s := range r.Timeline {
		at := float64(s.T + 1) // lag is sampled at the end of its second
		if at >= end && s.Lag <= base {
			return math.Max(0, at-end)
		}
	}
	return -1
}

// configDiff lists the settings that differ between two scenario YAMLs,
// by dotted path (lists compared whole).
func configDiff(a, b string) []ConfigChange {
	fa, fb := flatten(a), flatten(b)
	keys := map[string]bool{}
	for k := range fa {
		keys[k] = true
	}
	for k := range fb {
		keys[k] = true
	}
	var out []ConfigChange
	for k := range keys {
		if fa[k] != fb[k] {
			out = append(out, ConfigChange{Path: k, A: fa[k], B: fb[k]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

func flatten(doc string) map[string]string {
	out := map[string]string{}
	var v any
	if yaml.Unmarshal([]byte(doc), &v) != nil || v == nil {
		return out
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok {
			for k, x := range m {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, x)
			}
			return
		}
		b, _ := yaml.Marshal(v)
		out[prefix] = strings.Join(strings.Fields(strings.TrimSpace(string(b))), " ")
	}
	walk("", v)
	return out
}
