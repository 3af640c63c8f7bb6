package validator

import (
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
)

// TestTruncationBoundCarriesTheEpoch: records of a loadgen instance with a
// non-zero epoch (every real loadgen has one) purged from the source before
// the mirror copied them are truncated, exactly 3, not lost: the bound the
// purge sets must be kept under the same (topic, stream, epoch) key the
// ledger and the target records use.
func TestTruncationBoundCarriesTheEpoch(t *testing.T) {
	const epoch = 9
	v := func(seq uint64) []byte {
		return wire.Encode(wire.Record{RunID: testRun, Topic: "t", Epoch: epoch, Stream: 1, Seq: seq, ProducedAt: t0, Padding: 8})
	}
	l := ledger.New()
	for q := uint64(0); q <= 5; q++ {
		l.Ack(ledger.StreamKey{Topic: "t", Stream: 1, Epoch: epoch}, q)
	}
	l.MarkDone()
	tr := NewTracker(testRun, 5, t0)
	for q := uint64(0); q <= 2; q++ {
		tr.ObserveSource("t", 0, int64(q), v(q))
	}
	tr.NoteTruncation("t", map[int]int64{0: 3})
	for q := uint64(3); q <= 5; q++ {
		tr.ObserveSource("t", 0, int64(q), v(q))
		tr.Observe(Observation{Topic: "t", Partition: 0, Offset: int64(q - 3), Key: wire.Key(1), Value: v(q), ReadAt: t0.Add(10 * time.Millisecond)})
	}
	j := tr.Judge(l, true, true)
	if j.Truncated != 3 || j.Total.Lost != 0 || j.Total.Received != 3 {
		t.Fatalf("truncated %d, counts %+v; want 3 truncated, 3 received, 0 lost", j.Truncated, j.Total)
	}
}

// TestRestartedLoadgenLossIsNotHiddenAsDuplicate: a loadgen restarted under
// the same run id produces from sequence 0 again. With epochs its records are
// a new stream: the first instance's seq 5 that the mirror lost is lost (1),
// and nothing is a duplicate. Without epochs (both instances at epoch 0, as
// before records carried one) the second instance's seq 5 fills the first
// one's gap: 0 lost and 9 "duplicates" blamed on the mirror.
func TestRestartedLoadgenLossIsNotHiddenAsDuplicate(t *testing.T) {
	for _, tc := range []struct {
		name           string
		e1, e2         uint32
		lost, dup, rcv uint64
	}{
		{"two epochs", 11, 12, 1, 0, 19},
		{"no epochs", 0, 0, 0, 9, 19},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := ledger.New()
			for _, e := range []uint32{tc.e1, tc.e2} {
				for q := uint64(0); q <= 9; q++ {
					l.Ack(ledger.StreamKey{Topic: "t", Stream: 1, Epoch: e}, q)
				}
			}
			l.MarkDone()
			tr := NewTracker(testRun, 5, t0)
			off := int64(0)
			for _, e := range []uint32{tc.e1, tc.e2} {
				for q := uint64(0); q <= 9; q++ {
					if e == tc.e1 && q == 5 && off < 10 {
						continue // the mirror lost the first instance's seq 5
					}
					v := wire.Encode(wire.Record{RunID: testRun, Topic: "t", Epoch: e, Stream: 1, Seq: q, ProducedAt: t0, Padding: 8})
					tr.Observe(Observation{Topic: "t", Partition: 0, Offset: off, Key: wire.Key(1), Value: v, ReadAt: t0.Add(time.Millisecond)})
					off++
				}
			}
			j := tr.Judge(l, true, false)
			if j.Total.Lost != tc.lost || j.Total.Duplicate != tc.dup || j.Total.Received != tc.rcv {
				t.Fatalf("counts %+v; want lost %d, duplicate %d, received %d", j.Total, tc.lost, tc.dup, tc.rcv)
			}
		})
	}
}
