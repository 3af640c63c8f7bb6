package validator

import (
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/wire"
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
