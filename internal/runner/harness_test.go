package runner

import (
	"strings"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/health"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/loadgen"
)

// TestJudgeHarness: a saturated kmt turns a run that failed only on timing
// assertions into incomplete (with the reason on the assertion and the
// run); loss still fails; a healthy kmt changes nothing.
func TestJudgeHarness(t *testing.T) {
	p99 := func(pass bool) report.Assertion {
		return report.Assertion{Name: "p99-latency-steady", Expr: `histogram_quantile(0.99, sum by (le) (rate(kmt_validator_latency_seconds_bucket[5s])))`, Pass: pass, Reason: "observed 7.9, expected < 0.5"}
	}
	noLoss := func(pass bool) report.Assertion {
		return report.Assertion{Name: "no-loss", Expr: `sum(kmt_validator_missing_records{category="lost"})`, Pass: pass, Reason: "observed 3, expected == 0"}
	}
	busy := health.CPU{Avg: 0.97, Peak: 1, Cores: 2}
	calm := health.CPU{Avg: 0.4, Peak: 0.5, Cores: 2}
	ls := loadgen.Stats{Sent: 10000, Elapsed: 10 * time.Second}
	cases := []struct {
		name          string
		cpu           health.CPU
		lost          uint64
		asserts       []report.Assertion
		verdict       string
		reasons       int
		markedIncompl int
	}{
		{"healthy kmt, latency failed: fail", calm, 0, []report.Assertion{p99(false)}, report.Fail, 1, 0},
		{"saturated, only latency failed: incomplete", busy, 0, []report.Assertion{p99(false), noLoss(true)}, report.Incomplete, 2, 1},
		{"saturated, loss too: still fail", busy, 3, []report.Assertion{p99(false), noLoss(false)}, report.Fail, 4, 1},
		{"saturated, everything held: pass", busy, 0, []report.Assertion{p99(true), noLoss(true)}, report.Pass, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := &report.Report{Counts: report.Counts{Lost: tc.lost}, Assertions: tc.asserts}
			rep.Judge()
			judgeHarness(rep, tc.cpu, -1, ls, 1000)
			marked := 0
			for _, a := range rep.Assertions {
				if strings.HasPrefix(a.Reason, "incomplete (kmt itself was saturated") {
					marked++
				}
			}
			if rep.Verdict != tc.verdict || len(rep.Reasons) != tc.reasons || marked != tc.markedIncompl || rep.Harness == nil || rep.Harness.Saturated != (tc.cpu == busy) {
				t.Fatalf("verdict %s, reasons %q, %d assertions marked incomplete, harness %+v; want %s, %d reasons, %d marked",
					rep.Verdict, rep.Reasons, marked, rep.Harness, tc.verdict, tc.reasons, tc.markedIncompl)
			}
		})
	}
}
