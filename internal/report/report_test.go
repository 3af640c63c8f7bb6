package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The verdict rules: which counts fail a run and which are only counted.
func TestJudge(t *testing.T) {
	for _, tc := range []struct {
		name     string
		edit     func(r *Report)
		verdict  string
		inReason string
	}{
		{"clean", func(r *Report) {}, Pass, ""},
		{"lost", func(r *Report) { r.Counts.Lost = 1 }, Fail, "1 lost"},
		{"unseen", func(r *Report) { r.Counts.Unseen = 2 }, Fail, "2 unseen"},
		{"corrupt", func(r *Report) { r.Counts.Corrupt = 1 }, Fail, "corrupt"},
		{"reordered", func(r *Report) { r.Counts.Reordered = 1 }, Fail, "reordered"},
		{"source lost", func(r *Report) { r.Counts.SourceLost = 1 }, Fail, "source_lost"},
		{"duplicates are at-least-once", func(r *Report) { r.Counts.Duplicate = 50 }, Pass, ""},
		{"redelivery is kmt's own", func(r *Report) { r.Counts.Redelivery = 5 }, Pass, ""},
		{"foreign is counted", func(r *Report) { r.Counts.Foreign = 5 }, Pass, ""},
		{"truncated is the source's doing", func(r *Report) { r.ExtraCounts.Truncated = 9 }, Pass, ""},
		{"failed assertion", func(r *Report) { r.Assertions = []Assertion{{Name: "p99", Pass: false, Reason: "too slow"}} }, Fail, "assertion p99 failed: too slow"},
		{"passing assertion", func(r *Report) { r.Assertions = []Assertion{{Name: "p99", Pass: true}} }, Pass, ""},
		{"fault that failed", func(r *Report) {
			r.Faults = []Fault{{Name: "kill", Kind: "broker-kill", Start: time.Now(), Error: "no broker to act on"}}
		}, Incomplete, "fault kill (broker-kill) did not take effect"},
		{"fault that failed beside real loss", func(r *Report) {
			r.Counts.Lost = 3
			r.Faults = []Fault{{Name: "kill", Kind: "broker-kill", Start: time.Now(), Error: "no broker to act on"}}
		}, Fail, "3 lost"},
		{"interrupted stays incomplete", func(r *Report) {
			r.Verdict = Incomplete
			r.Error = "interrupted"
			r.Faults = []Fault{{Name: "later", Error: "not started: run interrupted"}}
		}, Incomplete, "error: interrupted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Report{}
			tc.edit(r)
			r.Judge()
			if r.Verdict != tc.verdict {
				t.Errorf("verdict %s, want %s (reasons %q)", r.Verdict, tc.verdict, r.Reasons)
			}
			joined := strings.Join(r.Reasons, "\n")
			if tc.inReason == "" && tc.verdict == Pass && len(r.Reasons) != 0 {
				t.Errorf("reasons %q on a pass", r.Reasons)
			}
			if !strings.Contains(joined, tc.inReason) {
				t.Errorf("reasons %q lack %q", r.Reasons, tc.inReason)
			}
			if tc.name == "interrupted stays incomplete" && strings.Contains(joined, "later") {
				t.Errorf("a fault skipped by the interrupt is blamed: %q", r.Reasons)
			}
		})
	}
}

// report.json is a contract: counts has exactly these keys, latency_seconds
// these, and the file round-trips.
func TestReportJSONContract(t *testing.T) {
	dir := t.TempDir()
	r := &Report{Scenario: "s", Run: "r", Counts: Counts{Acked: 3, Received: 3}}
	r.Judge()
	path, err := r.WriteJSON(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	keys := func(m any) []string {
		var k []string
		for x := range m.(map[string]any) {
			k = append(k, x)
		}
		slices.Sort(k)
		return k
	}
	// v1's keys plus the ones added within v1 (aborted_read, identity_mismatch, split, aborted_copied).
	wantCounts := []string{"aborted_copied", "aborted_read", "acked", "corrupt", "duplicate", "foreign", "identity_mismatch", "lost", "produced", "received", "redelivery", "reordered", "source_lost", "split", "unseen"}
	if got := keys(raw["counts"]); !slices.Equal(got, wantCounts) {
		t.Errorf("counts keys %v, want exactly %v", got, wantCounts)
	}
	if got := keys(raw["latency_seconds"]); !slices.Equal(got, []string{"count", "max", "p50", "p95", "p99"}) {
		t.Errorf("latency_seconds keys %v", got)
	}
	if raw["verdict"] != "pass" || raw["schema_version"] != float64(SchemaVersion) {
		t.Errorf("verdict %v schema_version %v", raw["verdict"], raw["schema_version"])
	}
	back, err := ReadJSON(path)
	if err != nil || back.Counts != r.Counts || back.Run != "r" {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}

// JUnit XML has one case per anomaly check and per assertion, failures
// where the run failed.
func TestJUnit(t *testing.T) {
	dir := t.TempDir()
	r := &Report{Scenario: "s", Counts: Counts{Lost: 2}, Assertions: []Assertion{{Name: "a", Pass: true}, {Name: "b", Reason: "nope"}}}
	r.Judge()
	path, err := r.WriteJUnit(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Clean(path))
	var s junitSuites
	if err := xml.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	su := s.Suites[0]
	if su.Tests != 11 || su.Failures != 2 {
		t.Errorf("tests %d failures %d, want 11 and 2:\n%s", su.Tests, su.Failures, b)
	}
	var sum bytes.Buffer
	r.WriteSummary(&sum)
	for _, want := range []string{"kmt verdict: FAIL", "lost 2", "FAIL b", "reason    2 lost"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
}

// Evidence names the fault active when the record was produced.
func TestExamplesNameTheActiveFault(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	r := &Report{
		Faults: []Fault{{Name: "kill-mirror", Start: t0.Add(10 * time.Second), End: t0.Add(20 * time.Second)}},
		Examples: map[string][]Example{"split": {
			{Stream: 1, ProducedAt: at(5 * time.Second)},
			{Stream: 2, ProducedAt: at(15 * time.Second)},
			{Stream: 3},
		}},
	}
	r.Judge()
	ex := r.Examples["split"]
	if ex[0].Fault != "" || ex[1].Fault != "kill-mirror" || ex[2].Fault != "" {
		t.Fatalf("faults %q %q %q, want \"\", kill-mirror, \"\"", ex[0].Fault, ex[1].Fault, ex[2].Fault)
	}
	if !strings.Contains(ex[1].Evidence(), "during fault kill-mirror") {
		t.Fatalf("evidence %q does not name the fault", ex[1].Evidence())
	}
}
