package apachekafka_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// TestFailoverFaultsOnRealKafka runs the failover drill's two fault stories
// on real Apache Kafka with real MirrorMaker 2, short forms: a source broker
// down longer than the checkpoint and offset-sync intervals (3 brokers, so
// its partitions move), and the source topic growing from 6 to 12
// partitions before the failover point. What MirrorMaker 2 must do in both:
// skip nothing and never move a translated offset back; with partitions
// added, give an offset for every partition the group committed (the new
// ones too). With a broker down it may give none: its consumer-group work
// waits on the dead broker (measured: the group found only at the failover
// point, 6 untranslated), which is logged, as are the re-reads (judged by
// the drill against offset.lag.max; docs/mirrormaker2.md has the numbers).
// Heavy (two JVM clusters and a MirrorMaker 2 JVM per story, 1-3 min each):
// make test-real only.
func TestFailoverFaultsOnRealKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("real Kafka and MirrorMaker 2; skipped with -short")
	}
	if os.Getenv("KMT_REAL_FULL") == "" {
		t.Skip("the failover drill's fault stories on real Kafka (about 3 min on 2 cores): run by make test-real (KMT_REAL_FULL=1); make test runs the drill itself (TestFailoverDrillOnRealKafka)")
	}
	for _, tc := range []struct {
		story          string
		brokers        int
		mayUntranslate bool
	}{
		{"failover-source-broker-down", 3, true},
		{"failover-partitions-added", 1, false},
	} {
		t.Run(tc.story, func(t *testing.T) {
			runID := runner.NewRunID("real-" + tc.story)
			dir := t.TempDir()
			if keep := os.Getenv("KMT_KEEP_REPORTS"); keep != "" {
				dir = filepath.Join(keep, runID) // to read MirrorMaker 2's and kmt's logs afterwards
			}
			o := runner.Options{
				Scenario: tc.story, Short: true, Brokers: runner.BrokersApache, ClusterSize: tc.brokers,
				Mirror: scenarios.MirrorMirrorMaker2, RunID: runID, ReportDir: dir,
			}
			rep, took := runStoryReal(t, o, tc.story+" with MirrorMaker 2", 15*time.Minute)
			f := rep.Failover
			if f == nil {
				t.Fatalf("no failover section; verdict %s, reasons %v", rep.Verdict, rep.Reasons)
			}
			t.Logf("%s with MirrorMaker 2 in %v: run verdict %s %v; drill %s: skipped %d reread %d (bound %d, %s) duplicate reads %d backwards %d untranslated %d; acked %d lost %d duplicates %d",
				tc.story, took.Round(time.Second), rep.Verdict, rep.Reasons, f.Verdict, f.Skipped, f.Reread, f.RereadBound, f.BoundFrom,
				f.DuplicateReads, f.Backwards, f.Untranslated, rep.Counts.Acked, rep.Counts.Lost, rep.Counts.Duplicate)
			for _, p := range f.Partitions {
				t.Logf("  %s[%d] committed %d translated %d (%s) resumed %d; read %d on the source, %d on the target; reread %d skipped %d backwards %d untranslated %v",
					p.Topic, p.Partition, p.SourceCommitted, p.Translated, p.TranslatedFrom, p.ResumedFrom, p.ReadOnSource, p.ReadOnTarget,
					p.Reread, p.Skipped, p.Backwards, p.Untranslated)
			}
			if f.Error != "" {
				t.Fatalf("the drill did not finish: %s", f.Error)
			}
			if f.Skipped != 0 || f.Backwards != 0 {
				t.Errorf("skipped %d, backwards %d: want 0 each (reasons %v)", f.Skipped, f.Backwards, f.Reasons)
			}
			if f.Untranslated != 0 && !tc.mayUntranslate {
				t.Errorf("untranslated %d: want 0 (reasons %v)", f.Untranslated, f.Reasons)
			}
			var src, tgt uint64
			for _, p := range f.Partitions {
				src += p.ReadOnSource
				tgt += p.ReadOnTarget
			}
			if src == 0 || tgt == 0 {
				t.Errorf("the group read %d records on the source and %d on the target: the drill proves nothing", src, tgt)
			}
			if f.Verdict == report.Incomplete {
				t.Errorf("drill verdict incomplete: %v", f.Reasons)
			}
			if rep.Counts.Lost != 0 {
				t.Errorf("lost %d acked records", rep.Counts.Lost)
			}
		})
	}
}
