package runner

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/mirror"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/testkit"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Issue 9 on the embedded clusters: the reference mirror misbehaves in
// exactly one way per case and counts, on its own side, the records it
// mishandled (kmt_mirror_defect_records_total{defect}); the checker's counts
// must equal that, category by category, with every other anomaly zero.
// Correct controls (an exactly-once mirror that re-sends aborted
// transactions, a mirror that re-hashes keys) must pass with zero anomalies.

// defectRecords is kmt_mirror_defect_records_total{defect=name}.
func defectRecords(t *testing.T, reg *prometheus.Registry, name string) uint64 {
	t.Helper()
	n, err := mirror.DefectRecords(reg, name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// twoTopics writes a baseline-like scenario with two topics (topic-swap).
func twoTopics(t *testing.T) string {
	t.Helper()
	y := `apiVersion: kmt.dev/v1
kind: Scenario
metadata:
  name: two-topics
spec:
  topology:
    topics:
      - name: orders
        partitions: 3
      - name: payments
        partitions: 3
  load: {rate: 1000, messageSize: 200, streams: 16, duration: 6s}
  drain: 10s
`
	return testkit.WriteTemp(t, "two-topics.yaml", y)
}

func TestDefectsProveEachRule(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end runs; skipped with -short")
	}
	t.Parallel() // with the other end-to-end tests, after the sequential ones (e2e_test.go)
	const every = 50
	type expect func(d uint64) report.Counts // from the mirror's own count
	none := func(uint64) report.Counts { return report.Counts{} }
	cases := []struct {
		name      string
		scenario  string
		defect    scenarios.Defect
		isolation string
		want      expect
		pass      bool
	}{
		{"key damage", "baseline", scenarios.Defect{Name: scenarios.DefectKeyDamage, Every: every}, "",
			func(d uint64) report.Counts { return report.Counts{IdentityMismatch: d, Lost: d} }, false},
		{"header damage", "baseline", scenarios.Defect{Name: scenarios.DefectHeaderDamage, Every: every}, "",
			func(d uint64) report.Counts { return report.Counts{IdentityMismatch: d, Lost: d} }, false},
		{"topic swap", "", scenarios.Defect{Name: scenarios.DefectTopicSwap, Every: every}, "",
			func(d uint64) report.Counts { return report.Counts{IdentityMismatch: d, Lost: d} }, false},
		{"key scatter", "baseline", scenarios.Defect{Name: scenarios.DefectKeyScatter, Every: every}, "",
			func(d uint64) report.Counts { return report.Counts{Split: d} }, false},
		{"corrupt header and magic", "baseline", scenarios.Defect{Name: scenarios.DefectCorrupt, Every: every}, "",
			func(d uint64) report.Counts { return report.Counts{Corrupt: d, Lost: d} }, false},
		{"reorder", "baseline", scenarios.Defect{Name: scenarios.DefectReorder, Every: every}, "",
			func(d uint64) report.Counts { return report.Counts{Reordered: d} }, false},
		{"aborted transactions never re-sent", "baseline", scenarios.Defect{Name: scenarios.DefectTxnAbort, Every: 5}, "",
			func(d uint64) report.Counts { return report.Counts{Lost: d} }, false},
		{"aborted transactions read uncommitted", "baseline", scenarios.Defect{Name: scenarios.DefectTxnAbortResend, Every: 5}, scenarios.ReadUncommitted,
			func(d uint64) report.Counts { return report.Counts{AbortedRead: d} }, false},
		{"control: exactly-once mirror re-sends aborted transactions", "baseline", scenarios.Defect{Name: scenarios.DefectTxnAbortResend, Every: 5}, "", none, true},
		{"control: mirror re-hashes keys into 4 partitions", "baseline", scenarios.Defect{Name: scenarios.DefectRehash, Every: 4}, "", none, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e2eSlot(t)
			scen := tc.scenario
			o := Options{Scenario: scen, Short: true, Duration: 6 * time.Second, Drain: 10 * time.Second}
			if scen == "" {
				o = Options{Scenario: twoTopics(t)}
			}
			o.Defects = []scenarios.Defect{tc.defect}
			o.Isolation = tc.isolation
			o.Registry = prometheus.NewRegistry()
			rep, took := runE2E(t, o)
			logReport(t, rep, took)
			d := defectRecords(t, o.Registry, tc.defect.Name)
			want := tc.want(d)
			c := rep.Counts
			got := report.Counts{Lost: c.Lost + c.Unseen, Duplicate: c.Duplicate, Reordered: c.Reordered, Corrupt: c.Corrupt,
				SourceLost: c.SourceLost, Foreign: c.Foreign, Redelivery: c.Redelivery, AbortedRead: c.AbortedRead,
				IdentityMismatch: c.IdentityMismatch, Split: c.Split}
			t.Logf("%s: the mirror counted %d records; checker %+v", tc.name, d, got)
			if got != want {
				t.Errorf("%s: checker counts (lost = lost+unseen)\n got %+v\nwant %+v", tc.name, got, want)
			}
			if !tc.pass && d == 0 {
				t.Errorf("%s: the defect affected no record: the run proves nothing", tc.name)
			}
			if wantV := map[bool]string{true: report.Pass, false: report.Fail}[tc.pass]; rep.Verdict != wantV {
				t.Errorf("%s: verdict %s (reasons %v, error %q), want %s", tc.name, rep.Verdict, rep.Reasons, rep.Error, wantV)
			}
			for cat, ex := range rep.Examples {
				for _, e := range ex {
					if cat == "lost" && e.Partition < 0 && e.Offset < 0 {
						t.Errorf("lost example without a target position: %+v", e)
					}
				}
			}
			for _, cat := range []string{"identity_mismatch", "split", "aborted_read", "reordered", "corrupt"} {
				n := map[string]uint64{"identity_mismatch": c.IdentityMismatch, "split": c.Split, "aborted_read": c.AbortedRead, "reordered": c.Reordered, "corrupt": c.Corrupt}[cat]
				if n > 0 && len(rep.Examples[cat]) == 0 {
					t.Errorf("%d %s but no example in the report", n, cat)
				}
			}
		})
	}
}

// TestCommitBeforeProduceLosesWhenKilled: the commit-before-produce defect
// under a real hard kill of the mirror loses exactly the records it had
// committed but not written (the mirror counts them when the kill lands in
// the window between commit and write).
func TestCommitBeforeProduceLosesWhenKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run; skipped with -short")
	}
	t.Parallel() // with the other end-to-end tests, after the sequential ones (e2e_test.go)
	e2eSlot(t)
	o := Options{Scenario: "mirror-hard-kill", Short: true, Registry: prometheus.NewRegistry(),
		Defects: []scenarios.Defect{{Name: scenarios.DefectCommitBeforeProduce}}}
	rep, took := runE2E(t, o)
	logReport(t, rep, took)
	d := defectRecords(t, o.Registry, scenarios.DefectCommitBeforeProduce)
	unsure := defectRecords(t, o.Registry, scenarios.DefectCommitBeforeProduce+"-unsure")
	c := rep.Counts
	t.Logf("mirror: %d records committed and never written (%d in a write cut short); checker lost %d unseen %d", d, unsure, c.Lost, c.Unseen)
	if d+unsure == 0 {
		t.Fatalf("the kill did not land while a batch was committed and unwritten: the run proves nothing")
	}
	if unsure == 0 && c.Lost+c.Unseen != d {
		t.Errorf("lost+unseen %d, want exactly %d", c.Lost+c.Unseen, d)
	}
	if unsure > 0 && (c.Lost+c.Unseen < d || c.Lost+c.Unseen > d+unsure) {
		t.Errorf("lost+unseen %d, want between %d and %d", c.Lost+c.Unseen, d, d+unsure)
	}
	// The verdict follows what was lost, not the defect: when the kill cut
	// only a write that then completed (d == 0, every record arrived), the
	// run lost nothing and a fail would blame the mirror for nothing.
	lost := c.Lost+c.Unseen > 0
	if lost && (rep.Verdict != report.Fail || !strings.Contains(strings.Join(rep.Reasons, ";"), "lost")) {
		t.Errorf("verdict %s reasons %v, want fail for loss", rep.Verdict, rep.Reasons)
	}
	if d > 0 && !lost {
		t.Errorf("the mirror committed and never wrote %d records but kmt counted none lost", d)
	}
	if !lost && rep.Verdict != report.Pass {
		t.Errorf("nothing lost (the cut write completed) but verdict %s reasons %v", rep.Verdict, rep.Reasons)
	}
}
