package history

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

func run(dir string, r *report.Report) *Run { return &Run{Dir: dir, Report: r} }

func healthy() *report.Report {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &report.Report{Verdict: report.Pass, Run: "a", LoadStartedAt: &t0,
		Counts:         report.Counts{Produced: 1000, Acked: 1000, Received: 1000},
		LatencySeconds: report.Latency{P50: 0.010, P99: 0.020, Max: 0.030},
		Load:           report.Load{TargetRate: 100, AchievedRate: 100},
		Faults:         []report.Fault{{Name: "cut", Start: t0.Add(3 * time.Second), End: t0.Add(6 * time.Second)}},
	}
	// Lag 0 before the fault, 300 during, back to 0 one second after it.
	for s := 0; s < 10; s++ {
		sec := report.Second{T: s, Arrivals: 100, LatencyP50: 0.01, LatencyP99: 0.02, LatencyMax: 0.03}
		if s >= 3 && s < 6 {
			sec.Lag = int64(100 * (s - 2))
		}
		if s == 6 {
			sec.Lag = 50
		}
		r.Timeline = append(r.Timeline, sec)
	}
	return r
}

// Each rule names its regression with exact numbers, and only it.
func TestCompareRules(t *testing.T) {
	th := DefaultThresholds
	cases := []struct {
		name   string
		break_ func(*report.Report)
		want   string // "" = no regression
	}{
		{"same", func(*report.Report) {}, ""},
		{"one lost record", func(r *report.Report) { r.Counts.Lost = 1; r.Verdict = report.Fail }, "lost: 0 -> 1 records"},
		{"corrupt", func(r *report.Report) { r.Counts.Corrupt = 2 }, "corrupt: 0 -> 2 records"},
		{"duplicates within budget", func(r *report.Report) { r.Counts.Duplicate = 1 }, ""},
		{"duplicates over budget", func(r *report.Report) { r.Counts.Duplicate = 2 }, "duplicate: 0 -> 2 records"},
		{"latency noise", func(r *report.Report) { r.LatencySeconds.P99 = 0.060 }, ""},
		{"latency regression", func(r *report.Report) { r.LatencySeconds.P99 = 0.200 }, "latency run p99: 20ms -> 200ms"},
		{"slower recovery", func(r *report.Report) {
			for i := 6; i < 10; i++ {
				r.Timeline[i].Lag = 500
			}
			r.Timeline[9].Lag = 0
		}, "recovery after cut: 1s -> 4s"},
		{"no recovery", func(r *report.Report) {
			for i := 6; i < 10; i++ {
				r.Timeline[i].Lag = 500
			}
		}, "recovery after cut: 1s -> never"},
		{"throughput", func(r *report.Report) { r.Load.AchievedRate = 80 }, "load: achieved 100/s -> 80/s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := healthy()
			c.break_(b)
			cmp := Compare(run("A", healthy()), run("B", b), th)
			got := strings.Join(cmp.Regressions, "\n")
			if c.want == "" && got != "" {
				t.Fatalf("regressions %q, want none", got)
			}
			if c.want != "" && !strings.Contains(got, c.want) {
				t.Fatalf("regressions %q, want %q", got, c.want)
			}
			if c.want != "" && c.name != "one lost record" && len(cmp.Regressions) != 1 {
				t.Fatalf("regressions %q, want exactly one", got)
			}
		})
	}
}

func TestConfigDiffAndFind(t *testing.T) {
	a := "spec:\n  load:\n    rate: 500\n  drain: 30s\n"
	b := "spec:\n  load:\n    rate: 800\n  extra: x\n"
	got := configDiff(a, b)
	want := []ConfigChange{{"spec.drain", "30s", ""}, {"spec.extra", "", "x"}, {"spec.load.rate", "500", "800"}}
	if len(got) != len(want) {
		t.Fatalf("diff %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("change %d: %+v, want %+v", i, got[i], want[i])
		}
	}

	root := t.TempDir()
	dir := filepath.Join(root, "run-1")
	r := healthy()
	if _, err := r.WriteJSON(dir); err != nil {
		t.Fatal(err)
	}
	if err := MarkLatest(dir); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"run-1", "latest", dir, filepath.Join(dir, "report.json")} {
		f, err := Find(root, name)
		if err != nil || f.Report.Run != "a" {
			t.Errorf("Find(%q): %v %+v", name, err, f)
		}
	}
	if l, err := os.Readlink(filepath.Join(root, "latest")); err != nil || l != "run-1" {
		t.Errorf("latest -> %q (%v), want run-1", l, err)
	}
	if _, err := Find(root, "run-2"); err == nil || !strings.Contains(err.Error(), "no report for \"run-2\"") {
		t.Errorf("Find(run-2): %v, want a clear error", err)
	}
}
