package e2e

import (
	"context"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
)

// slots bounds how many scenarios run at once: each one runs two embedded
// clusters, a mirror, the load and the validator, and the CI machine has two
// cores. More at once would turn scheduling noise into measured latency.
var slots = make(chan struct{}, 2)

// runTimeout bounds one scenario run (load ~25 s, drain, start and stop).
const runTimeout = 3 * time.Minute

// result is one finished run.
type result struct {
	rep *report.Report
	t0  time.Time // load start: report.Timeline's t=0
	dir string    // report dir (report.json, mirror logs, kmt.log)
}

// skipShort skips t under -short: these tests run whole scenarios.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end scenario runs take minutes; skipped under -short")
	}
}

// run executes o through runner.Run in its own report dir, with kmt's log in
// <dir>/kmt.log (its tail is printed when the test fails).
func run(t *testing.T, o runner.Options) *result {
	t.Helper()
	slots <- struct{}{}
	defer func() { <-slots }()

	dir := t.TempDir()
	o.ReportDir = dir
	logPath := filepath.Join(dir, "kmt.log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("create %s: %v", logPath, err)
	}
	t.Cleanup(func() {
		lf.Close()
		if t.Failed() {
			t.Logf("tail of %s:\n%s", logPath, tailFile(logPath, 6000))
		}
	})
	o.Logger = slog.New(slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var t0 time.Time
	o.OnStart = func(start time.Time, _ string) { t0 = start }

	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	began := time.Now()
	rep, err := runner.Run(ctx, o)
	if err != nil {
		t.Fatalf("runner.Run(%s): %v", o.Scenario, err)
	}
	if rep == nil {
		t.Fatalf("runner.Run(%s) returned no report", o.Scenario)
	}
	if t0.IsZero() {
		t.Fatalf("runner.Run(%s): OnStart was never called; the load did not start", o.Scenario)
	}
	c := rep.Counts
	t.Logf("%s: verdict=%s in %s; acked=%d received=%d lost=%d unseen=%d dup=%d reordered=%d corrupt=%d foreign=%d failed=%d latency p50=%.1fms p99=%.1fms; reasons=%v",
		rep.Scenario, rep.Verdict, time.Since(began).Round(time.Second), c.Acked, c.Received, c.Lost, c.Unseen, c.Duplicate,
		c.Reordered, c.Corrupt, c.Foreign, rep.ExtraCounts.Failed, rep.LatencySeconds.P50*1e3, rep.LatencySeconds.P99*1e3, rep.Reasons)
	for _, f := range rep.Faults {
		t.Logf("fault %s (%s): %.2fs..%.2fs actions=%q error=%q", f.Name, f.Kind, f.Start.Sub(t0).Seconds(), f.End.Sub(t0).Seconds(), f.Actions, f.Error)
	}
	return &result{rep: rep, t0: t0, dir: dir}
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// fault returns the named fault's record; the test fails if it is missing,
// had an error, or never opened and closed.
func (r *result) fault(t *testing.T, name string) report.Fault {
	t.Helper()
	for _, f := range r.rep.Faults {
		if f.Name != name {
			continue
		}
		if f.Error != "" {
			t.Fatalf("fault %s reported an error: %s", name, f.Error)
		}
		if f.Start.IsZero() || f.End.IsZero() || !f.End.After(f.Start) {
			t.Fatalf("fault %s has no proper window: start %v end %v", name, f.Start, f.End)
		}
		return f
	}
	t.Fatalf("fault %s not in the report (faults: %+v)", name, r.rep.Faults)
	return report.Fault{}
}

// window is a span of load time in seconds since t0.
type window struct{ from, to float64 }

func (r *result) window(f report.Fault) window {
	return window{f.Start.Sub(r.t0).Seconds(), f.End.Sub(r.t0).Seconds()}
}

// seconds returns the timeline seconds [T, T+1) that lie wholly inside
// [w.from+trim, w.to-trim]: trim keeps out the seconds where a fault was
// being applied or reverted.
func (r *result) seconds(w window, trim float64) []report.Second {
	var out []report.Second
	for _, s := range r.rep.Timeline {
		if float64(s.T) >= w.from+trim && float64(s.T+1) <= w.to-trim {
			out = append(out, s)
		}
	}
	return out
}

// arrivals sums arrivals over secs.
func arrivals(secs []report.Second) uint64 {
	var n uint64
	for _, s := range secs {
		n += s.Arrivals
	}
	return n
}

// medianP50 is the median of the per-second latency medians of the seconds
// in which something arrived, and how many such seconds there were.
func medianP50(secs []report.Second) (float64, int) {
	var v []float64
	for _, s := range secs {
		if s.Arrivals > 0 {
			v = append(v, s.LatencyP50)
		}
	}
	return median(v), len(v)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	v = slices.Clone(v)
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// timelineString renders secs for failure messages and logs.
func timelineString(secs []report.Second) string {
	var b strings.Builder
	for _, s := range secs {
		b.WriteString(" t=")
		b.WriteString(strconv.Itoa(s.T))
		b.WriteString(":")
		b.WriteString(strconv.Itoa(int(s.Arrivals)))
		if s.Arrivals > 0 {
			b.WriteString("@")
			b.WriteString(strconv.Itoa(int(math.Round(s.LatencyP50 * 1e3))))
			b.WriteString("ms")
		}
	}
	return b.String()
}

// noLoss fails t unless the validator saw every acknowledged record
// arrive intact (duplicates are allowed: at-least-once).
func noLoss(t *testing.T, r *result) {
	t.Helper()
	c := r.rep.Counts
	if c.Lost != 0 || c.Unseen != 0 || c.Corrupt != 0 || c.Reordered != 0 || c.SourceLost != 0 {
		t.Errorf("want no loss/unseen/corrupt/reordered/source_lost, got %+v (reasons %v)", c, r.rep.Reasons)
	}
	if !r.rep.Drain.Complete {
		t.Errorf("drain did not complete: %+v", r.rep.Drain)
	}
	if c.Acked == 0 {
		t.Errorf("nothing was acknowledged by the source: the load did not run")
	}
}

// testdata returns the path of a scenario file in testdata.
func testdata(name string) string { return filepath.Join("testdata", name) }
