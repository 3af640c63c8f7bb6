package validator

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// modeObs is the target record (stream, seq) of topic "t" as a correct
// mirror delivers it in the load modes: CreateTime the produce time, the
// fidelity headers, txn (when set) as the transaction header.
func modeObs(stream uint32, seq uint64, off int64, txn string) Observation {
	v := rec(testRun, stream, seq)
	o := Observation{Topic: "t", Partition: 0, Offset: off, Key: wire.Key(stream), Value: v, ReadAt: t0.Add(time.Second), Timestamp: t0}
	for _, h := range wire.FidelityHeaders(stream, seq) {
		o.Extra = append(o.Extra, h)
	}
	if txn != "" {
		o.Txn = []byte(txn)
	}
	return o
}

// tombObs is the tombstone (stream, seq) of the fidelity load.
func tombObs(stream uint32, seq uint64, off int64) Observation {
	return Observation{Topic: "t", Offset: off, Key: wire.Key(stream), ReadAt: t0.Add(time.Second), Timestamp: t0,
		Extra: append([]wire.Header{{Key: wire.TombHeaderKey, Value: wire.TombHeader(testRun, 0, seq)}}, wire.FidelityHeaders(stream, seq)...)}
}

func ackRange(l *ledger.Ledger, stream uint32, lo, hi uint64) {
	for q := lo; q <= hi; q++ {
		l.Ack(ledger.StreamKey{Topic: "t", Stream: stream}, q)
	}
}

// TestTransactionRules: aborted records a read_committed reader saw are
// aborted_copied (never lost), a committed transaction that arrived in part
// is torn, an aborted one that arrived in part is not. Breaking either rule
// (the judge.go line that counts arrivals ∩ aborted; the ledger check in
// TransactionsVerdict) changes the exact counts below.
func TestTransactionRules(t *testing.T) {
	l := ledger.New()
	ackRange(l, 0, 0, 7)                                // transactions 1.0 (0..3) and 1.1 (4..7) committed
	l.Abort(ledger.StreamKey{Topic: "t", Stream: 0}, 8) // transaction 1.2 (8..9) aborted
	l.Abort(ledger.StreamKey{Topic: "t", Stream: 0}, 9) //
	ackRange(l, 0, 10, 12)                              // transaction 1.3 (10..12) committed
	tr := NewTracker(testRun, 10, t0)
	tr.SetLoadModes(&scenarios.Transactions{Size: 4, Abort: 0.25}, nil)
	arrive := map[uint64]string{0: "1.0/4", 1: "1.0/4", 2: "1.0/4", // seq 3 missing: torn
		4: "1.1/4", 5: "1.1/4", 6: "1.1/4", 7: "1.1/4",
		8:  "1.2/2", // aborted, copied in part: aborted_copied 1, not torn
		10: "1.3/3", 11: "1.3/3", 12: "1.3/3"}
	off := int64(0)
	for q := uint64(0); q <= 12; q++ {
		if id, ok := arrive[q]; ok {
			tr.Observe(modeObs(0, q, off, id))
			off++
		}
	}
	j := tr.Judge(l, true, false)
	if j.Total.AbortedCopied != 1 || j.Total.Lost != 1 {
		t.Errorf("aborted_copied %d lost %d, want 1 and 1 (the aborted seq 9 that did not arrive is not lost)", j.Total.AbortedCopied, j.Total.Lost)
	}
	got := tr.TransactionsVerdict(l, j.Total)
	want := &report.Transactions{Size: 4, AbortFraction: 0.25, AbortedRecords: 2, AbortedCopied: 1, Seen: 3, Torn: 1, TornMissing: 1}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("transactions\n got %+v\nwant %+v", got, want)
	}
	if ex := tr.Examples()[CatTorn]; len(ex) != 1 || !strings.Contains(ex[0].Detail, "transaction 1.0: 3 of its 4") {
		t.Errorf("torn evidence %+v", ex)
	}
}

// TestFidelityRules: each fidelity check counts exactly the records a
// misbehaving mirror changed.
func TestFidelityRules(t *testing.T) {
	l := ledger.New()
	ackRange(l, 0, 0, 9)
	ackRange(l, 1, 0, 9)
	fid := &scenarios.Fidelity{Headers: true, Timestamps: true, TombstoneEvery: 5, Compacted: true, LargeEvery: 8, LargeBytes: 100, Compression: "zstd"}
	tr := NewTracker(testRun, 10, t0)
	tr.SetLoadModes(nil, fid)
	// The source: stream 0 ends on its live seq 9's value... seq 9 is a
	// tombstone (9 % 5 == 4), so key s0 is deleted; stream 1 likewise.
	for s := uint32(0); s < 2; s++ {
		for q := uint64(0); q <= 9; q++ {
			var o Observation
			if fid.IsTombstone(q) {
				o = tombObs(s, q, int64(q))
			} else {
				o = modeObs(s, q, int64(q), "")
			}
			var hs []kgo.RecordHeader
			for _, h := range o.Extra {
				hs = append(hs, kgo.RecordHeader{Key: h.Key, Value: h.Value})
			}
			tr.ObserveSourceRecord("t", int(s), int64(q), o.Key, o.Value, hs)
		}
	}
	// The target: stream 0 complete except that its last tombstone (9)
	// is dropped; seq 1's null header arrives empty, seq 2's headers
	// reordered; seq 3 has LogAppendTime, seq 5 another timestamp; the
	// codec is gzip. Stream 1 stops at seq 7, a large record.
	off := int64(0)
	for q := uint64(0); q <= 8; q++ {
		var o Observation
		if fid.IsTombstone(q) {
			o = tombObs(0, q, off)
		} else {
			o = modeObs(0, q, off, "")
		}
		switch q {
		case 1:
			o.Extra[3].Value = []byte{}
		case 2:
			o.Extra[0], o.Extra[1] = o.Extra[1], o.Extra[0]
		case 3:
			o.LogAppendTime = true
		case 5:
			o.Timestamp = t0.Add(time.Second)
		}
		o.Codec = 1
		tr.Observe(o)
		off++
	}
	for q := uint64(0); q <= 6; q++ {
		var o Observation
		if fid.IsTombstone(q) {
			o = tombObs(1, q, off)
		} else {
			o = modeObs(1, q, off, "")
		}
		o.Codec = 4
		tr.Observe(o)
		off++
	}
	j := tr.Judge(l, true, false)
	if j.Total.Lost+j.Total.Unseen != 4 {
		t.Errorf("lost+unseen %d, want 4 (stream 0 seq 9, stream 1 seq 7..9)", j.Total.Lost+j.Total.Unseen)
	}
	got := tr.FidelityVerdict(l)
	// 16 arrivals, 4 of them tombstones (0:4, 1:4, 0:9 missing... seqs 4 of both
	// streams arrived); timestamps are not checked on tombstones.
	want := &report.Fidelity{
		Headers:     &report.Check{Checked: 16, Changed: 2},
		Timestamps:  &report.Check{Checked: 14, Changed: 2},
		Tombstones:  &report.Tombstones{Acked: 4, Delivered: 2, Missing: 2},
		Compaction:  got.Compaction,
		Large:       &report.Large{Bytes: 100, Acked: 2, Delivered: 1, Stuck: got.Large.Stuck},
		Compression: &report.Compression{Codec: "zstd", TargetCodecs: map[string]uint64{"gzip": 9, "zstd": 7}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fidelity\n got %+v\nwant %+v", got, want)
	}
	// Source: both keys deleted. Target: s0's last is seq 8 (its tombstone
	// 9 dropped), s1's seq 6: two keys differ.
	if c := got.Compaction; c.SourceKeys != 0 || c.TargetKeys != 2 || c.Differ != 2 || len(c.Examples) != 2 {
		t.Errorf("compaction %+v, want 0 source keys, 2 target keys, 2 differ", c)
	}
	if s := got.Large.Stuck; len(s) != 1 || !strings.Contains(s[0], "stream 1") || !strings.Contains(s[0], "stops at seq 7, a record of 100 bytes; 3 acked records") {
		t.Errorf("stuck %q, want stream 1 stuck at seq 7 with 3 records missing", s)
	}
}
