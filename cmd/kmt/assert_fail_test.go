package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// afScenario injects 300 ms of one-way WAN latency between the mirror and
// the source for 3 s and bounds the p99 end-to-end latency over the whole
// run by %s (about 600 of 2000 records wait seconds). Not the fault window: under 300 ms the
// reference mirror delivers nothing at all until the latency is removed
// (seen: no arrivals in an 8 s window, max latency 8.3 s), so that window
// has no observations and its p99 is NaN, which fails any bound. Nor the
// recovery window: the backlog lands right at its start, where a scrape
// can fall on either side of it (seen: p99 3.2 s in one run, 0.017 s in
// the next).
const afScenario = `apiVersion: kmt.dev/v1
kind: Scenario
metadata: {name: assert-fail}
spec:
  topology: {topics: [{name: orders, partitions: 2}]}
  load: {rate: 200, messageSize: 128, streams: 4, duration: 10s}
  warmup: 1s
  drain: 20s
  timeline:
    - {name: slow-link, kind: wan-latency, at: 2s, duration: 3s, params: {latency: 300ms}}
  assertions:
    noLoss: true
    p99LatencyBelow: {phase: run, value: %s}
`

// TestRunAssertionVerdict runs the scenario through the CLI: with a 50 ms
// bound after 300 ms of added latency the assertion must fail and kmt exit
// 1, saying why in report.json and the summary; with a 10 s bound the same
// run passes and exits 0 (so the failure comes from the bound, not from
// anything else in the run).
func TestRunAssertionVerdict(t *testing.T) {
	if testing.Short() {
		t.Skip("runs two 10 s embedded scenarios")
	}
	const name = "p99-latency-run"
	for _, c := range []struct {
		bound     string
		threshold float64
		code      int
		verdict   string
	}{
		{"50ms", 0.05, 1, report.Fail},
		{"10s", 10, 0, report.Pass},
	} {
		t.Run("p99 below "+c.bound, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "assert-fail.yaml")
			if err := os.WriteFile(path, []byte(fmt.Sprintf(afScenario, c.bound)), 0o644); err != nil {
				t.Fatal(err)
			}
			repDir := filepath.Join(dir, "report")
			var stdout, stderr bytes.Buffer
			code := run([]string{"run", path, "--report-dir", repDir, "--log-level", "warn"}, &stdout, &stderr)
			t.Logf("stdout:\n%s", stdout.String())
			if code != c.code {
				t.Fatalf("exit code %d, want %d; stderr:\n%s", code, c.code, afTail(stderr.String(), 3000))
			}
			rep := afReadReport(t, filepath.Join(repDir, "report.json"))
			if rep.Verdict != c.verdict {
				t.Fatalf("report.json verdict %q, want %q (reasons %v)", rep.Verdict, c.verdict, rep.Reasons)
			}
			var a *report.Assertion
			for i := range rep.Assertions {
				if rep.Assertions[i].Name == name {
					a = &rep.Assertions[i]
				}
			}
			if a == nil {
				t.Fatalf("report.json has no assertion %s: %+v", name, rep.Assertions)
			}
			if len(a.Threshold) != 1 || a.Threshold[0] != c.threshold || a.Op != "<" || a.Window != "run" {
				t.Errorf("assertion %s: op %s threshold %v window %s, want < %g over run", name, a.Op, a.Threshold, a.Window, c.threshold)
			}
			if len(a.Observed) != 1 {
				t.Fatalf("assertion %s observed %v, want one value (%s)", name, a.Observed, a.Reason)
			}
			// The backlog of the 300 ms window waited seconds: the run's
			// p99 is well above 300 ms, whatever the bound.
			if a.Observed[0] < 0.3 {
				t.Errorf("assertion %s observed p99 %gs under 300 ms of added latency, want >= 0.3s", name, a.Observed[0])
			}
			t.Logf("%s: pass=%v observed %gs, threshold %gs", name, a.Pass, a.Observed[0], c.threshold)
			if c.code == 0 {
				if !a.Pass || len(rep.Reasons) != 0 {
					t.Errorf("assertion pass=%v, reasons %v; want a clean pass", a.Pass, rep.Reasons)
				}
				if !strings.Contains(stdout.String(), "kmt verdict: PASS") {
					t.Errorf("summary does not say PASS")
				}
				return
			}
			if a.Pass || a.Observed[0] <= c.threshold {
				t.Errorf("assertion %s pass=%v with observed %v, want a failure above %g", name, a.Pass, a.Observed, c.threshold)
			}
			// The assertion is the only reason: nothing was lost.
			want := "assertion " + name + " failed: " + a.Reason
			if len(rep.Reasons) != 1 || rep.Reasons[0] != want {
				t.Errorf("report.json reasons %q, want exactly [%q]", rep.Reasons, want)
			}
			out := stdout.String()
			for _, s := range []string{"kmt verdict: FAIL", "assert    FAIL " + name, "reason    " + want} {
				if !strings.Contains(out, s) {
					t.Errorf("summary lacks %q", s)
				}
			}
		})
	}
}

func afReadReport(t *testing.T, path string) *report.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the run's report: %v", err)
	}
	var rep report.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	return &rep
}

func afTail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
