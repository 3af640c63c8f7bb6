package runner

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// TestInterruptMidRun cancels the run's context 4 s into the load (what
// Ctrl-C does through signal.NotifyContext): Run must stop the load, skip
// the drain, write a report.json with verdict incomplete and leave nothing
// behind. Timing is logged, not asserted; the only bound is a hang guard.
func TestInterruptMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run; skipped with -short")
	}
	dir := t.TempDir()
	l := snapshotLeftovers(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var canceledAt time.Time
	cancelTimer := make(chan *time.Timer, 1)
	o := Options{
		Scenario: "baseline", Short: true, ReportDir: dir, Logger: testLogger(t), Registry: prometheus.NewRegistry(),
		MetricsAddr: "127.0.0.1:0",
		OnStart: func(t0 time.Time, _ string) {
			cancelTimer <- time.AfterFunc(4*time.Second, func() { canceledAt = time.Now(); cancel() })
		},
	}
	type result struct {
		rep *report.Report
		err error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		rep, err := Run(ctx, o)
		done <- result{rep, err}
	}()
	var res result
	select {
	case res = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not return within 2 minutes of starting a 10 s run that is interrupted after 4 s")
	}
	select {
	case tm := <-cancelTimer:
		tm.Stop()
	default:
		t.Fatal("OnStart was never called")
	}
	if canceledAt.IsZero() {
		t.Fatalf("Run returned after %s, before the interrupt (err %v)", time.Since(start), res.err)
	}
	t.Logf("Run returned %.2fs after the interrupt (%.1fs total)", time.Since(canceledAt).Seconds(), time.Since(start).Seconds())
	if res.err != nil {
		t.Fatalf("interrupted Run returned error %v; want a report with verdict incomplete and no error", res.err)
	}
	rep := res.rep
	logReport(t, rep, time.Since(start))
	if rep.Verdict != report.Incomplete {
		t.Errorf("verdict %q, want %q", rep.Verdict, report.Incomplete)
	}
	onDisk, err := report.ReadJSON(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatalf("report.json after an interrupt: %v", err)
	}
	if onDisk.Verdict != report.Incomplete || onDisk.Error == "" {
		t.Errorf("report.json: verdict %q error %q; want incomplete with the reason", onDisk.Verdict, onDisk.Error)
	}
	if rep.Load.Acked == 0 {
		t.Errorf("nothing was acked in the 4 s before the interrupt: the run was not really mid-load")
	}
	// The load stopped at the interrupt, well short of its 10 s.
	if rep.Load.Seconds >= 9 {
		t.Errorf("load ran %.1fs; the interrupt at 4 s did not stop it", rep.Load.Seconds)
	}
	l.check(t)
}
