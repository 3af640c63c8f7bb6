package runner

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/internal/testkit"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// The checker's self-test: the reference mirror's deliberate defects each
// produce an exactly predictable number of one anomaly category and none of
// the others. If the validator miscounted, merged categories or missed a
// kind of damage, one of these equalities breaks.

// sourceLog reads one topic's partitions from the source cluster in offset
// order and decodes each record (stream, seq).
func sourceLog(ctx context.Context, bootstrap, topic string, partitions int) ([][]wire.Record, error) {
	addr := strings.Split(bootstrap, ",")[0]
	out := make([][]wire.Record, partitions)
	for p := 0; p < partitions; p++ {
		conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, p)
		if err != nil {
			return nil, fmt.Errorf("dial leader of %s/%d via %s: %w", topic, p, addr, err)
		}
		last, err := conn.ReadLastOffset()
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("last offset of %s/%d: %w", topic, p, err)
		}
		if _, err := conn.Seek(0, kafka.SeekAbsolute); err != nil {
			conn.Close()
			return nil, fmt.Errorf("seek %s/%d: %w", topic, p, err)
		}
		next := int64(0)
		for next < last {
			_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			b := conn.ReadBatch(1, 16<<20)
			for {
				m, err := b.ReadMessage()
				if err != nil {
					break
				}
				rec, err := wire.Decode(m.Value)
				if err != nil {
					b.Close()
					conn.Close()
					return nil, fmt.Errorf("source %s/%d offset %d does not decode: %w", topic, p, m.Offset, err)
				}
				out[p] = append(out[p], rec)
				next = m.Offset + 1
			}
			if err := b.Close(); err != nil {
				conn.Close()
				return nil, fmt.Errorf("read %s/%d at %d: %w", topic, p, next, err)
			}
		}
		conn.Close()
	}
	return out, nil
}

func TestCheckerSelfTest(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end runs; skipped with -short")
	}
	t.Parallel() // with the other end-to-end tests, after the sequential ones (e2e_test.go)
	base, err := scenarios.Read("baseline")
	if err != nil {
		t.Fatal(err)
	}
	topic := base.Spec.Topology.Topics[0]
	type want struct {
		verdict string
		// exact returns the expected counts given the mirror's consumed
		// total and the records the mirror itself counted as reordered
		// (each held behind the next record of its key: one reordered
		// record each, counted without applying the checker's rule).
		exact func(consumed, reorder uint64) report.Counts
	}
	const every = 50
	const reorderEvery = 10
	zero := func(uint64, uint64) report.Counts { return report.Counts{} }
	cases := []struct {
		name    string
		defects []scenarios.Defect
		want    want
	}{
		{"clean", nil, want{report.Pass, zero}},
		{"commit-before-produce", []scenarios.Defect{{Name: scenarios.DefectCommitBeforeProduce}}, want{report.Pass, zero}},
		{"drop", []scenarios.Defect{{Name: scenarios.DefectDrop, Every: every}},
			want{report.Fail, func(c, _ uint64) report.Counts { return report.Counts{Lost: c / every} }}}, // Lost here means lost+unseen
		{"duplicate", []scenarios.Defect{{Name: scenarios.DefectDuplicate, Every: every}},
			want{report.Fail, func(c, _ uint64) report.Counts { return report.Counts{Duplicate: c / every} }}},
		{"corrupt", []scenarios.Defect{{Name: scenarios.DefectCorrupt, Every: every}},
			// A damaged record is not a delivery: its sequence is also
			// missing (lost, or unseen when it was a stream's last).
			want{report.Fail, func(c, _ uint64) report.Counts { return report.Counts{Corrupt: c / every, Lost: c / every} }}},
		{"reorder", []scenarios.Defect{{Name: scenarios.DefectReorder, Every: reorderEvery}},
			want{report.Fail, func(_, r uint64) report.Counts { return report.Counts{Reordered: r} }}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e2eSlot(t)
			reg := prometheus.NewRegistry()
			var srcLog [][]wire.Record
			var logErr error
			o := Options{
				Scenario: "baseline", Short: true, Defects: tc.defects, Registry: reg,
				Duration: 6 * time.Second,
				// A dropped last record of a stream keeps the drain waiting
				// for its deadline; everything else arrives in milliseconds.
				Drain: 8 * time.Second,
				BeforeTeardown: func(src, _ string) {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					srcLog, logErr = sourceLog(ctx, src, topic.Name, topic.Partitions)
				},
			}
			rep, took := runE2E(t, o)
			logReport(t, rep, took)
			if logErr != nil {
				t.Fatalf("read the source log: %v", logErr)
			}
			consumed := uint64(testkit.MustMetricSum(t, reg, metrics.MirrorConsumed, nil))
			var inSource uint64
			for _, p := range srcLog {
				inSource += uint64(len(p))
			}
			c := rep.Counts
			t.Logf("mirror consumed %d, source log holds %d, acked %d, failed %d", consumed, inSource, c.Acked, rep.Load.Failed)
			// Baseline has no restarts: the mirror reads each source record
			// exactly once, so its count is the source log's length.
			if consumed != inSource {
				t.Errorf("mirror consumed %d records but the source log holds %d: the every-Nth arithmetic below would be off", consumed, inSource)
			}
			if c.Acked == 0 || rep.Load.Failed > 0 && inSource < c.Acked {
				t.Errorf("acked %d, failed %d, in source %d", c.Acked, rep.Load.Failed, inSource)
			}
			exp := tc.want.exact(consumed, defectRecords(t, reg, scenarios.DefectReorder))
			got := report.Counts{Lost: c.Lost + c.Unseen, Duplicate: c.Duplicate, Reordered: c.Reordered, Corrupt: c.Corrupt, SourceLost: c.SourceLost, Foreign: c.Foreign, Redelivery: c.Redelivery}
			if got != exp {
				t.Errorf("defect %s: got lost+unseen=%d duplicate=%d reordered=%d corrupt=%d source_lost=%d foreign=%d redelivery=%d, want lost+unseen=%d duplicate=%d reordered=%d corrupt=%d and zero of the rest",
					tc.name, got.Lost, got.Duplicate, got.Reordered, got.Corrupt, got.SourceLost, got.Foreign, got.Redelivery,
					exp.Lost, exp.Duplicate, exp.Reordered, exp.Corrupt)
			}
			if exp != (report.Counts{}) {
				// The anomaly the defect causes must be predicted non-zero,
				// or the test proves nothing.
				if exp.Lost+exp.Duplicate+exp.Reordered+exp.Corrupt == 0 {
					t.Errorf("defect %s: expected count is 0 (consumed %d): the run was too small to prove anything", tc.name, consumed)
				}
				cat := map[string]string{"drop": "", "duplicate": "duplicate", "corrupt": "corrupt", "reorder": "reordered"}[tc.name]
				if cat != "" && len(rep.Examples[cat]) == 0 {
					t.Errorf("defect %s: no %s examples in the report", tc.name, cat)
				}
				if tc.name == "drop" && len(rep.Examples["lost"])+len(rep.Examples["unseen"]) == 0 {
					t.Errorf("defect drop: no lost/unseen examples in the report")
				}
			}
			if rep.Verdict != tc.want.verdict {
				t.Errorf("defect %s: verdict %s, want %s (reasons %v)", tc.name, rep.Verdict, tc.want.verdict, rep.Reasons)
			}
			if c.Received == 0 {
				t.Errorf("nothing arrived")
			}
		})
	}
}
