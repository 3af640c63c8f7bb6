package runner

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// An interrupt during the drain ends the drain at once (it would wait 5
// minutes for a mirror that copies nothing): the run returns a report with
// verdict incomplete that says the drain was interrupted. The bound below
// is a hang guard, not a timing assertion.
func TestInterruptDuringDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run; skipped with -short")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := Options{
		Scenario: "baseline", Short: true, Duration: 4 * time.Second, Drain: 5 * time.Minute, ReportDir: dir,
		MirrorCommand: "sleep 600", // a mirror that runs and copies nothing: the drain waits for its deadline
		Logger:        testLogger(t), Registry: prometheus.NewRegistry(),
		OnStart: func(time.Time, string) { time.AfterFunc(7*time.Second, cancel) },
	}
	done := make(chan *report.Report, 1)
	go func() {
		rep, err := Run(ctx, o)
		if err != nil {
			t.Errorf("Run: %v", err)
		}
		done <- rep
	}()
	var rep *report.Report
	select {
	case rep = <-done:
	case <-time.After(3 * time.Minute):
		t.Fatal("Run did not return within 3 minutes although it was interrupted 7 s into a 4 s load (the drain ignored the interrupt)")
	}
	if rep == nil {
		t.Fatal("no report")
	}
	if rep.Verdict != report.Incomplete || !strings.Contains(rep.Error, "interrupted during the drain") {
		t.Errorf("verdict %q error %q; want incomplete, interrupted during the drain", rep.Verdict, rep.Error)
	}
	if rep.Drain.Complete {
		t.Error("drain reported complete although nothing arrived")
	}
	onDisk, err := report.ReadJSON(filepath.Join(dir, "report.json"))
	if err != nil || onDisk.Verdict != report.Incomplete {
		t.Errorf("report.json: %v, verdict %q; want it written with verdict incomplete", err, onDisk.Verdict)
	}
}

// A process mirror that exits by itself mid-run is in the verdict: when,
// with what status, its last lines; and as nothing of the run arrived, the
// summary says what to check.
func TestMirrorThatExitsMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run; skipped with -short")
	}
	dir := t.TempDir()
	o := Options{
		Scenario: "baseline", Short: true, Duration: 4 * time.Second, Drain: 2 * time.Second, ReportDir: dir,
		MirrorCommand: `sleep 2; echo "mirror: fatal: cannot reach the target" >&2; exit 7`,
		Logger:        testLogger(t), Registry: prometheus.NewRegistry(),
	}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if rep.Verdict != report.Fail {
		t.Errorf("verdict %q, want fail", rep.Verdict)
	}
	if len(rep.MirrorExits) != 1 {
		t.Fatalf("mirror exits %+v, want exactly one", rep.MirrorExits)
	}
	e := rep.MirrorExits[0]
	if e.Status != "exit status 7" || !strings.Contains(e.Tail, "cannot reach the target") || e.At.Before(rep.StartedAt) || e.Log == "" {
		t.Errorf("exit %+v: want status 7, the last line, a time within the run and the log", e)
	}
	var sum strings.Builder
	rep.WriteSummary(&sum)
	for _, want := range []string{
		"the mirror process exited on its own at +", "with exit status 7: mirror: fatal: cannot reach the target",
		"| mirror: fatal: cannot reach the target", "nothing of run " + rep.Run + " arrived", "<alias>.<topic>",
	} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
}

// TestRelativeReportDir: with --report-dir given as a relative path, a
// mirror process (which runs inside the report folder) still finds the
// files kmt put there: {{.ReportDir}} is absolute. Before, MirrorMaker 2
// died at start ("rep/jmx-exporter.yaml (No such file or directory)");
// here the command exits 9 at once in that case, or 7 after 2 s when it
// found the folder.
func TestRelativeReportDir(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run; skipped with -short")
	}
	t.Chdir(t.TempDir())
	o := Options{
		Scenario: "baseline", Short: true, Duration: 3 * time.Second, Drain: time.Second, ReportDir: filepath.Join("rel", "rep"),
		MirrorCommand: `test -f {{.ReportDir}}/scenario.yaml || { echo "no {{.ReportDir}}/scenario.yaml from $PWD" >&2; exit 9; }; sleep 2; exit 7`,
		Logger:        testLogger(t), Registry: prometheus.NewRegistry(),
	}
	rep, err := Run(context.Background(), o)
	if err != nil {
		t.Fatalf("Run with a relative report folder: %v", err)
	}
	if len(rep.MirrorExits) != 1 || rep.MirrorExits[0].Status != "exit status 7" {
		t.Errorf("mirror exits %+v, want exactly one, with status 7 (the mirror found the report folder)", rep.MirrorExits)
	}
	if _, err := os.Stat(filepath.Join("rel", "rep", "report.json")); err != nil {
		t.Errorf("report.json not in the relative folder: %v", err)
	}
}
