package runner

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/testkit"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Issue 12 on the embedded clusters: topic metadata sync and the stall
// watchdog, each with the healthy reference mirror (the control) and with
// the reference-mirror defect that breaks it.

// syncCounts tallies a metadata_sync section.
type syncCounts struct{ synced, notSynced, neverCopied, copiedAnyway int }

func countSync(ms *report.MetadataSync) syncCounts {
	var c syncCounts
	for _, ch := range ms.Changes {
		switch {
		case ch.NeverCopied && ch.Synced:
			c.copiedAnyway++
		case ch.NeverCopied:
			c.neverCopied++
		case ch.Synced:
			c.synced++
		default:
			c.notSynced++
		}
	}
	return c
}

// topic-metadata-sync sets three configs (one MirrorMaker 2 never copies),
// grows the topic and creates a new one: the reference mirror shows all
// four copyable changes on the target; with no-topic-sync it shows only
// the partitions (its record path needs them) and the run fails, naming
// the two configs and the new topic.
func TestTopicMetadataSync(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end runs; skipped with -short")
	}
	t.Parallel() // with the other end-to-end tests, after the sequential ones (e2e_test.go)
	cases := []struct {
		name    string
		defects []scenarios.Defect
		want    syncCounts
		verdict string
	}{
		{"reference mirror copies configs, partitions and new topics", nil, syncCounts{synced: 4, neverCopied: 1}, report.Pass},
		{"defect no-topic-sync", []scenarios.Defect{{Name: scenarios.DefectNoTopicSync}}, syncCounts{synced: 1, notSynced: 3, neverCopied: 1}, report.Fail},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e2eSlot(t)
			o := Options{Scenario: "topic-metadata-sync", Short: true, Defects: tc.defects, Registry: prometheus.NewRegistry()}
			rep, took := runE2E(t, o)
			logReport(t, rep, took)
			if tc.defects == nil {
				checkStory(t, "topic-metadata-sync", rep) // the story's catalogue run (storiesRunElsewhere)
			}
			ms := rep.MetadataSync
			if ms == nil {
				t.Fatal("report has no metadata_sync section")
			}
			for _, c := range ms.Changes {
				secs := "-"
				if c.Seconds != nil {
					secs = (time.Duration(*c.Seconds * float64(time.Second))).Round(time.Millisecond).String()
				}
				t.Logf("  sync %-12s %-10s %-28s synced=%v never_copied=%v after %s observed %q", c.Fault, c.Kind, c.What, c.Synced, c.NeverCopied, secs, c.Observed)
			}
			if got := countSync(ms); got != tc.want {
				t.Errorf("sync counts %+v, want %+v", got, tc.want)
			}
			if len(ms.NeverCopied) != 8 || ms.WithinSeconds != 30 {
				t.Errorf("never_copied %v within %v, want MirrorMaker 2's 8 settings and 30s", ms.NeverCopied, ms.WithinSeconds)
			}
			n := 0
			for _, r := range rep.Reasons {
				if strings.HasPrefix(r, "metadata_sync:") {
					n++
				}
			}
			if n != tc.want.notSynced || rep.Verdict != tc.verdict {
				t.Errorf("verdict %s with %d metadata_sync reasons (%q), want %s with %d", rep.Verdict, n, rep.Reasons, tc.verdict, tc.want.notSynced)
			}
		})
	}
}

// stallScenario is a short healthy load with the watchdog at 2 s.
func stallScenario(t *testing.T) string {
	t.Helper()
	y := `apiVersion: kmt.dev/v1
kind: Scenario
metadata:
  name: stall
spec:
  topology:
    topics:
      - name: orders
        partitions: 3
  load: {rate: 300, messageSize: 200, streams: 12, duration: 12s}
  drain: 5s
  validation: {stallAfter: 2s}
`
	return testkit.WriteTemp(t, "stall.yaml", y)
}

// The partition-stall defect stops copying partition 0 after 100 records
// while the source keeps growing: the watchdog reports exactly one stall,
// of partition 0, never recovered, live (the metric) and in the verdict;
// the records withheld are exactly the lost+unseen ones. The healthy
// mirror on the same load has no stall at all; frozen for a while
// (mirror-stall-watchdog), every partition stalls once and recovers, and
// the run passes.
func TestStallWatchdog(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end runs; skipped with -short")
	}
	t.Parallel() // with the other end-to-end tests, after the sequential ones (e2e_test.go)
	t.Run("defect partition-stall", func(t *testing.T) {
		t.Parallel()
		e2eSlot(t)
		reg := prometheus.NewRegistry()
		o := Options{Scenario: stallScenario(t), Registry: reg, Defects: []scenarios.Defect{{Name: scenarios.DefectPartitionStall, Every: 100}}}
		rep, took := runE2E(t, o)
		logReport(t, rep, took)
		st := rep.Stalls
		if st == nil || st.Partitions != 3 || len(st.Events) != 1 {
			t.Fatalf("stalls %+v, want one event over 3 watched partitions", st)
		}
		e := st.Events[0]
		t.Logf("stall: %+v", e)
		if e.Kind != report.StallKind || e.Topic != "orders" || e.Partition != 0 || e.Recovered || e.TargetOffset != 100 || e.SourceGained <= 0 {
			t.Errorf("event %+v, want partition 0 stalled at offset 100, not recovered", e)
		}
		withheld := defectRecords(t, reg, scenarios.DefectPartitionStall)
		if c := rep.Counts; c.Lost+c.Unseen != withheld || withheld == 0 {
			t.Errorf("lost+unseen %d, the mirror withheld %d", c.Lost+c.Unseen, withheld)
		}
		if n := testkit.MustMetricSum(t, reg, "kmt_validator_stalls_total", nil); n != 1 {
			t.Errorf("kmt_validator_stalls_total = %v, want 1", n)
		}
		if rep.Verdict != report.Fail || !strings.Contains(strings.Join(rep.Reasons, ";"), "stalled: target orders partition 0 stopped at offset 100") {
			t.Errorf("verdict %s reasons %q, want a stall reason", rep.Verdict, rep.Reasons)
		}
	})
	t.Run("control: healthy mirror", func(t *testing.T) {
		t.Parallel()
		e2eSlot(t)
		rep, took := runE2E(t, Options{Scenario: stallScenario(t)})
		logReport(t, rep, took)
		if st := rep.Stalls; st == nil || st.Partitions != 3 || len(st.Events) != 0 || rep.Verdict != report.Pass {
			t.Errorf("stalls %+v verdict %s, want 3 partitions watched, no event, pass", st, rep.Verdict)
		}
	})
	t.Run("control: frozen mirror recovers", func(t *testing.T) {
		t.Parallel()
		e2eSlot(t)
		rep, took := runE2E(t, Options{Scenario: "mirror-stall-watchdog", Short: true})
		logReport(t, rep, took)
		checkStory(t, "mirror-stall-watchdog", rep) // the story's catalogue run (storiesRunElsewhere)
		st := rep.Stalls
		if st == nil || st.Partitions != 6 {
			t.Fatalf("stalls %+v, want 6 partitions watched", st)
		}
		per := map[int32]int{}
		for _, e := range st.Events {
			t.Logf("  %s partition %d from %s for %.1fs recovered=%v fault=%s", e.Kind, e.Partition, e.Start.Format("15:04:05.000"), e.Seconds, e.Recovered, e.Fault)
			if e.Kind != report.StallKind || !e.Recovered || e.Fault != "freeze-mirror" {
				t.Errorf("event %+v, want a recovered stall during freeze-mirror", e)
			}
			per[e.Partition]++
		}
		if len(per) != 6 || len(st.Events) != 6 {
			t.Errorf("%d events over %d partitions, want one per partition (6)", len(st.Events), len(per))
		}
		if rep.Verdict != report.Pass {
			t.Errorf("verdict %s (%q), want pass: recovered stalls do not fail", rep.Verdict, rep.Reasons)
		}
	})
}
