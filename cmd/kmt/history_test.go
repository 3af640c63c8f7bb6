package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// TestCLICompareNamesTheRegression: two real runs, a healthy mirror (A) and
// one that drops every 50th record (B). kmt compare A B names the lost
// records and exits 1; A against itself exits 0; kmt show prints B again.
func TestCLICompareNamesTheRegression(t *testing.T) {
	if testing.Short() {
		t.Skip("two embedded runs")
	}
	a, b := t.TempDir(), t.TempDir()
	common := []string{"--short", "--duration", "6s", "--log-level", "error", "--progress-interval", "10s"}
	if code, out, errs := cliRun(t, append([]string{"run", "baseline", "--report-dir", a}, common...)...); code != 0 {
		t.Fatalf("healthy run: exit %d\n%s\n%s", code, out, errs)
	}
	if code, out, errs := cliRun(t, append([]string{"run", "baseline", "--report-dir", b, "--defect", "drop=50"}, common...)...); code != 1 {
		t.Fatalf("drop=50 run: exit %d, want 1\n%s\n%s", code, out, errs)
	}
	rb, err := report.ReadJSON(filepath.Join(b, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"report.html", "kmt.log", "scenario.yaml"} {
		if st, err := os.Stat(filepath.Join(b, f)); err != nil || st.Size() == 0 {
			t.Errorf("report folder lacks %s: %v", f, err)
		}
	}

	code, out, errs := cliRun(t, "compare", a, b)
	if code != 1 {
		t.Fatalf("compare healthy vs drop=50: exit %d, want 1\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{
		"REGRESSED",
		fmt.Sprintf("lost: 0 -> %d records", rb.Counts.Lost),
		"verdict pass -> fail",
		"spec.topology.mirror.defects: (absent) -> - every: 50 name: drop",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("compare output lacks %q:\n%s", want, out)
		}
	}
	if code, out, _ := cliRun(t, "compare", a, a); code != 0 || !strings.Contains(out, "no regression") {
		t.Errorf("compare A A: exit %d, want 0 and no regression:\n%s", code, out)
	}
	if code, out, _ := cliRun(t, "show", b); code != 0 || !strings.Contains(out, "kmt verdict: FAIL") || !strings.Contains(out, rb.Run) {
		t.Errorf("show B: exit %d:\n%s", code, out)
	}
	if code, _, errs := cliRun(t, "compare", a, filepath.Join(a, "nope")); code != 2 || !strings.Contains(errs, "no report for") {
		t.Errorf("compare with a missing run: exit %d, want 2 and a clear error:\n%s", code, errs)
	}
}

// TestValidateWritesTimelineAndHTML: kmt validate running beside the load
// (as the in-cluster validator Job does) records the per-second timeline
// from the ledger and writes report.html; the acked per second add up.
func TestValidateWritesTimelineAndHTML(t *testing.T) {
	if testing.Short() {
		t.Skip("produces and validates 2000 records on kfake")
	}
	addr := startKfake(t, "", 0)
	dir := t.TempDir()
	type result struct {
		code      int
		out, errs string
	}
	done := make(chan result, 1)
	go func() {
		code, out, errs := cliRun(t, "validate", "--source-bootstrap", addr, "--target-bootstrap", addr, "--topic", "orders",
			"--run-id", "tl-1", "--drain", "15s", "--wait", "60s", "--report-dir", dir, "--log-level", "warn")
		done <- result{code, out, errs}
	}()
	code, out, errs := cliRun(t, "loadgen", "--bootstrap", addr, "--topic", "orders", "--create-topics",
		"--rate", "500", "--count", "2000", "--streams", "5", "--run-id", "tl-1", "--ledger-topic", "__kmt_ledger", "--log-level", "warn")
	if code != 0 {
		t.Fatalf("loadgen exit %d\n%s\n%s", code, out, errs)
	}
	r := <-done
	if r.code != 0 {
		t.Fatalf("validate exit %d\n%s\n%s", r.code, r.out, r.errs)
	}
	rep, err := report.ReadJSON(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var acked uint64
	for _, s := range rep.Timeline {
		acked += s.Acked
	}
	if rep.LoadStartedAt == nil || len(rep.Timeline) < 3 || acked != 2000 {
		t.Errorf("timeline of %d seconds from %v, %d acked in all: want the load's seconds adding up to 2000", len(rep.Timeline), rep.LoadStartedAt, acked)
	}
	page, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil || !strings.Contains(string(page), `data-plot="rates"`) || !strings.Contains(string(page), `class="verdict pass"`) {
		t.Errorf("report.html: %v (%d bytes)", err, len(page))
	}
	// The folder keeps the validator's own log (info and above, whatever
	// the terminal's --log-level).
	if b, err := os.ReadFile(filepath.Join(dir, "kmt.log")); err != nil || !strings.Contains(string(b), "HTML report written") {
		t.Errorf("kmt.log: %v\n%s", err, b)
	}
}
