package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/testkit"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// withOffsets writes catalogue scenario name with spec.failover.offsets set.
func withOffsets(t *testing.T, name, offsets string) string {
	t.Helper()
	return withLines(t, name, "  failover:\n", "    offsets: "+offsets+"\n")
}

// withExactlyOnceTxns writes catalogue scenario name with the transactional
// load (transactions of 10, one in five aborted) claiming exactly-once: the
// reference mirror then writes transactionally.
func withExactlyOnceTxns(t *testing.T, name string) string {
	t.Helper()
	return withLines(t, name, "  load:\n", "    transactions:\n      size: 10\n      abort: 0.2\n      exactlyOnce: true\n")
}

// withLines writes catalogue scenario name with lines inserted after the
// first line equal to after.
func withLines(t *testing.T, name, after, lines string) string {
	t.Helper()
	s, err := scenarios.Read(name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "scenarios", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), after) {
		t.Fatalf("scenario %s has no line %q", name, after)
	}
	y := strings.Replace(string(b), after, after+lines, 1)
	return testkit.WriteTemp(t, s.Metadata.Name+".yaml", y)
}

// TestFailoverDrillOnEmbedded runs the failover drill on embedded clusters
// with the reference mirror, whose translation is exact (an offset sync per
// record): a correct mirror gives 0 skipped, 0 re-read, 0 backwards, 0
// untranslated over all 6 partitions; checkpoint-ahead=5 makes the group
// skip exactly 5 records per partition (30); checkpoint-rewind=1000 across
// the mirror kill of failover-mirror-kill makes each partition's checkpoint
// go backwards exactly once (6; checkpoints only, so the synced offsets,
// polled, cannot add a racy count).
func TestFailoverDrillOnEmbedded(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end runs; skipped with -short")
	}
	t.Parallel() // with the other end-to-end tests, after the sequential ones (e2e_test.go)
	type want struct{ skipped, reread, backwards, untranslated uint64 }
	cases := []struct {
		name     string
		scenario string
		defect   *scenarios.Defect
		want     want
		from     string
	}{
		{"exact translation, synced offsets", "failover-caught-up", nil, want{}, "synced"},
		{"exact translation, checkpoints", withOffsets(t, "failover-caught-up", scenarios.OffsetsCheckpoints), nil, want{}, "checkpoint"},
		{"translated offsets 5 ahead", "failover-caught-up", &scenarios.Defect{Name: scenarios.DefectCheckpointAhead, Every: 5}, want{skipped: 30}, "synced"},
		// Transactional source, reference mirror writing transactionally:
		// the commit markers on both sides must not bend the translation
		// (without offset syncs on the transactional path: 6 untranslated).
		{"transactional load, exactly-once mirror", withExactlyOnceTxns(t, "failover-caught-up"), nil, want{}, "synced"},
		{"checkpoints rewound after a mirror kill", withOffsets(t, "failover-mirror-kill", scenarios.OffsetsCheckpoints),
			&scenarios.Defect{Name: scenarios.DefectCheckpointRewind, Every: 1000}, want{backwards: 6}, "checkpoint"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e2eSlot(t)
			o := Options{Scenario: tc.scenario, Short: true}
			if tc.defect != nil {
				o.Defects = []scenarios.Defect{*tc.defect}
			}
			rep, took := runE2E(t, o)
			logReport(t, rep, took)
			if tc.scenario == "failover-caught-up" && tc.defect == nil {
				checkStory(t, tc.scenario, rep) // the story's catalogue run (storiesRunElsewhere)
			}
			f := rep.Failover
			if f == nil {
				t.Fatalf("no failover section in the report (verdict %s, error %q)", rep.Verdict, rep.Error)
			}
			t.Logf("failover: skipped %d reread %d dup reads %d backwards %d untranslated %d; %s", f.Skipped, f.Reread, f.DuplicateReads, f.Backwards, f.Untranslated, f.Error)
			if got := (want{f.Skipped, f.Reread, f.Backwards, f.Untranslated}); got != tc.want {
				t.Errorf("failover counts %+v, want %+v", got, tc.want)
			}
			if len(f.Partitions) != 6 {
				t.Errorf("%d partitions in the drill, want 6", len(f.Partitions))
			}
			var readSrc, readTgt uint64
			for _, p := range f.Partitions {
				readSrc += p.ReadOnSource
				readTgt += p.ReadOnTarget
				if p.TranslatedFrom != tc.from || p.SourceCommitted <= 0 {
					t.Errorf("partition %d: committed %d on the source, translated from %q; want > 0 and %q", p.Partition, p.SourceCommitted, p.TranslatedFrom, tc.from)
				}
			}
			if readSrc == 0 || readTgt == 0 {
				t.Errorf("the group read %d records on the source and %d on the target: the drill proves nothing", readSrc, readTgt)
			}
			wantV := report.Pass
			if tc.want != (want{}) {
				wantV = report.Fail
			}
			if f.Verdict != wantV || rep.Verdict != wantV {
				t.Errorf("drill verdict %s, run verdict %s (reasons %v); want %s", f.Verdict, rep.Verdict, rep.Reasons, wantV)
			}
		})
	}
}
