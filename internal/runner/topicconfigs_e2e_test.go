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

// Issue 12, record fidelity on topics created with configs, on the
// embedded clusters: a compacted source topic that kfake really compacts
// (every embedded.CleanerBackoff), and a target topic created beforehand
// with a smaller max.message.bytes than the source's large records.

// topicConfigScenario writes a scenario of one topic with the given topic
// block lines (indented under the topic) and load mode.
func topicConfigScenario(t *testing.T, topic, load string) string {
	t.Helper()
	y := `apiVersion: kmt.dev/v1
kind: Scenario
metadata:
  name: topic-configs
spec:
  topology:
    topics:
      - name: orders
        partitions: 3
` + topic + `
  load:
    messageSize: 200
` + load + `
  drain: 20s
  validation:
    stallAfter: 3s
`
	return testkit.WriteTemp(t, "topic-configs.yaml", y)
}

const (
	// compactedTopic: kfake compacts every 2 s; unquoted numbers are
	// Kafka config values too.
	compactedTopic = `        config:
          cleanup.policy: compact
          segment.ms: 1000
`
	// compactedLoad: 8 streams of exactly 300 records each, so the last
	// record of every key (seq 299) is a tombstone: the source's final map
	// is empty.
	compactedLoad = `    rate: 400
    streams: 8
    count: 2400
    fidelity: {tombstoneEvery: 10, compacted: true}
`
	largeTopic = `        config:
          max.message.bytes: "4194304"
        targetConfig:
          max.message.bytes: "1048576"
`
	largeLoad = `    rate: 60
    streams: 6
    duration: 10s
    fidelity: {largeEvery: 20, largeBytes: 1572864}
`
)

func TestCompactedTopicOnEmbedded(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end runs; skipped with -short")
	}
	t.Run("correct mirror", func(t *testing.T) {
		o := Options{Scenario: topicConfigScenario(t, compactedTopic, compactedLoad), Registry: prometheus.NewRegistry(), Drain: 20 * time.Second}
		rep, took := runE2E(t, o)
		logReport(t, rep, took)
		c := rep.Fidelity.Compaction
		if rep.Verdict != report.Pass || c.Differ != 0 || c.SourceKeys != 0 || c.TargetKeys != 0 {
			t.Errorf("verdict %s (%v), compaction %+v: want a pass, both maps empty (every key's last record is a tombstone)", rep.Verdict, rep.Reasons, c)
		}
		// The cleaner ran: the source holds fewer of the run's records than it acked.
		if c.SourceHeld == nil || *c.SourceHeld >= rep.Counts.Acked {
			t.Errorf("source_held %v of %d acked: want the final scan to show the cleaner removed records", c.SourceHeld, rep.Counts.Acked)
		}
		// The mirror carried the topic configs over; kmt created the target without them.
		synced := map[string]bool{}
		for _, ch := range rep.MetadataSync.Changes {
			synced[ch.What] = ch.Synced && ch.Fault == createdConfigsFault
		}
		if !synced["cleanup.policy=compact"] || !synced["segment.ms=1000"] {
			t.Errorf("metadata sync %+v: want cleanup.policy and segment.ms seen on the target", rep.MetadataSync.Changes)
		}
	})
	t.Run("mirror drops tombstones", func(t *testing.T) {
		o := Options{Scenario: topicConfigScenario(t, compactedTopic, compactedLoad), Registry: prometheus.NewRegistry(), Drain: 20 * time.Second,
			Defects: []scenarios.Defect{{Name: scenarios.DefectDropTombstones}}}
		rep, took := runE2E(t, o)
		logReport(t, rep, took)
		d := defectRecords(t, o.Registry, scenarios.DefectDropTombstones)
		c, tb := rep.Fidelity.Compaction, rep.Fidelity.Tombstones
		// Every key's last record is a tombstone the mirror dropped: the
		// target keeps seq 298 of all 8 keys, the source has none.
		if c.Differ != 8 || c.SourceKeys != 0 || c.TargetKeys != 8 {
			t.Errorf("compaction %+v: want 8 keys differing (0 on the source, 8 on the target)", c)
		}
		// Dropped tombstones the source still holds are missing; the ones
		// its cleaner removed meanwhile are counted truncated.
		if d != 240 || tb.Acked != 240 || tb.Missing+rep.ExtraCounts.Truncated != d || tb.Missing < 8 || rep.Verdict != report.Fail {
			t.Errorf("tombstones %+v truncated %d, mirror dropped %d, verdict %s: want 240 acked = dropped = missing + truncated, at least the 8 last ones missing, a fail",
				tb, rep.ExtraCounts.Truncated, d, rep.Verdict)
		}
	})
}

func TestLargeRecordsAboveTargetLimitOnEmbedded(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end runs; skipped with -short")
	}
	t.Run("mirror syncs max.message.bytes", func(t *testing.T) {
		o := Options{Scenario: topicConfigScenario(t, largeTopic, largeLoad), Registry: prometheus.NewRegistry(), Drain: 20 * time.Second}
		rep, took := runE2E(t, o)
		logReport(t, rep, took)
		l := rep.Fidelity.Large
		if rep.Verdict != report.Pass || l.Acked == 0 || l.Delivered != l.Acked || len(l.Stuck) != 0 {
			t.Errorf("verdict %s (%v), large %+v: want every large record delivered", rep.Verdict, rep.Reasons, l)
		}
	})
	t.Run("mirror keeps the target's limit", func(t *testing.T) {
		// no-topic-sync: the target topic keeps its 1 MiB max.message.bytes,
		// kfake answers MESSAGE_TOO_LARGE, the reference mirror retries the
		// batch forever and copies nothing more.
		o := Options{Scenario: topicConfigScenario(t, largeTopic, largeLoad), Registry: prometheus.NewRegistry(), Drain: 20 * time.Second,
			Defects: []scenarios.Defect{{Name: scenarios.DefectNoTopicSync}}}
		rep, took := runE2E(t, o)
		logReport(t, rep, took)
		l := rep.Fidelity.Large
		notDelivered := rep.Counts.Acked - rep.Counts.Received
		if rep.Verdict != report.Fail || l.Delivered != 0 || len(l.Stuck) == 0 || notDelivered == 0 || rep.Counts.Lost+rep.Counts.Unseen != notDelivered {
			t.Fatalf("verdict %s, large %+v, acked %d received %d lost+unseen %d: want no large record delivered, the stuck streams named, every undelivered record counted",
				rep.Verdict, l, rep.Counts.Acked, rep.Counts.Received, rep.Counts.Lost+rep.Counts.Unseen)
		}
		for _, s := range l.Stuck {
			if !strings.Contains(s, "source partition") || !strings.Contains(s, "1572864 bytes") {
				t.Errorf("stuck %q: want the partition and the record size named", s)
			}
		}
		open := 0
		for _, e := range rep.Stalls.Events {
			if e.Kind == report.StallKind && !e.Recovered {
				open++
			}
		}
		if open == 0 {
			t.Errorf("stalls %+v: want the stall watchdog to report the stopped partitions", rep.Stalls)
		}
	})
}
