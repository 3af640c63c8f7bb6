package apachekafka_test

import (
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// TestFailoverDrillOnRealKafka runs the failover drill (failover-caught-up,
// short form) on real Apache Kafka with real MirrorMaker 2: a kmt group
// reads the source, stops halfway, and resumes on the target from the
// offsets MirrorMaker 2 synced there (sync.group.offsets.enabled, 2 s
// interval). MirrorMaker 2 must translate every partition the group
// committed, skip nothing and never move a translated offset back; its
// re-reads are logged against offset.lag.max. One broker per cluster.
func TestFailoverDrillOnRealKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("real Kafka and MirrorMaker 2; skipped with -short")
	}
	t.Parallel() // two at a time with the other count-checked real-Kafka tests (suite_test.go, above ciSubset)
	runID := runner.NewRunID("real-failover")
	o := runner.Options{
		Scenario: "failover-caught-up", Short: true, Brokers: runner.BrokersApache, ClusterSize: 1,
		Mirror: scenarios.MirrorMirrorMaker2, RunID: runID, ReportDir: t.TempDir(),
	}
	rep, took := runStoryReal(t, o, "failover-caught-up with MirrorMaker 2", 10*time.Minute)
	f := rep.Failover
	if f == nil {
		t.Fatalf("no failover section; verdict %s, reasons %v", rep.Verdict, rep.Reasons)
	}
	t.Logf("MirrorMaker 2 failover drill in %v: verdict %s; skipped %d reread %d (bound %d, %s) duplicate reads %d backwards %d untranslated %d; run acked %d duplicates %d",
		took.Round(time.Second), f.Verdict, f.Skipped, f.Reread, f.RereadBound, f.BoundFrom, f.DuplicateReads, f.Backwards, f.Untranslated, rep.Counts.Acked, rep.Counts.Duplicate)
	for _, p := range f.Partitions {
		t.Logf("  %s[%d] committed %d translated %d (%s) resumed %d; read %d on the source, %d on the target; reread %d skipped %d",
			p.Topic, p.Partition, p.SourceCommitted, p.Translated, p.TranslatedFrom, p.ResumedFrom, p.ReadOnSource, p.ReadOnTarget, p.Reread, p.Skipped)
	}
	if f.Error != "" {
		t.Fatalf("the drill did not finish: %s", f.Error)
	}
	if f.Skipped != 0 || f.Backwards != 0 || f.Untranslated != 0 {
		t.Errorf("skipped %d, backwards %d, untranslated %d: want 0 each", f.Skipped, f.Backwards, f.Untranslated)
	}
	var src, tgt uint64
	for _, p := range f.Partitions {
		src += p.ReadOnSource
		tgt += p.ReadOnTarget
		if p.SourceCommitted > 0 && p.TranslatedFrom == "" {
			t.Errorf("%s[%d]: committed %d on the source, no offset from MirrorMaker 2", p.Topic, p.Partition, p.SourceCommitted)
		}
	}
	if src == 0 || tgt == 0 {
		t.Errorf("the group read %d records on the source and %d on the target: the drill proves nothing", src, tgt)
	}
	// Re-reads over offset.lag.max are MirrorMaker 2's own imprecision
	// (measured: up to 190 per partition at offset.lag.max=100 while the
	// producers go on writing to the source; docs/mirrormaker2.md): they
	// make the drill's verdict fail and are reported, not asserted here.
	if f.Verdict == report.Incomplete {
		t.Errorf("drill verdict incomplete: %v", f.Reasons)
	}
}
