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
