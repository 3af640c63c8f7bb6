package validator

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
)

const testRun = "run-1"

var t0 = time.Unix(1_700_000_000, 0)

// step is one thing that happens to a tracker in a test case.
type step struct {
	// target record (when value != nil or seq >= 0 via rec())
	part   int
	off    int64
	value  []byte
	source bool // read from the source log instead of the target
	// truncation note; probeLost: the probes it asks for never run (the
	// re-read failed), so what the purge deleted stays unknown
	trunc     map[int]int64
	probeLost bool
	// key overrides the Kafka key (default: Key of the stream the value
	// names); header, when set, is the record's kmt header.
	key    []byte
	header []byte
	// uncommitted: read by the read_uncommitted reader; control: a
	// transaction marker returned by the judged reader.
	uncommitted, control bool
}

func rec(run string, stream uint32, seq uint64) []byte {
	return wire.Encode(wire.Record{RunID: run, Topic: "t", Stream: stream, Seq: seq, ProducedAt: t0, Padding: 8})
}

// keyOf is the key a correct mirror carries for v: Key(stream) of the
// stream its header names (damaged ones included), nil for foreign bytes.
func keyOf(v []byte) []byte {
	r, err := wire.Decode(v)
	if err != nil {
		var de *wire.DecodeError
		if !errors.As(err, &de) || de.Partial.RunID == "" {
			return nil
		}
		r = de.Partial
	}
	return wire.Key(r.Stream)
}

func tgt(part int, off int64, v []byte) step { return step{part: part, off: off, value: v} }

// srcRecs is stream's from..to in source partition part from offset off0.
func srcRecs(stream uint32, from, to uint64, part int, off0 int64) []step {
	var s []step
	for q := from; q <= to; q++ {
		s = append(s, src(part, off0+int64(q-from), rec(testRun, stream, q)))
	}
	return s
}

// seqAt is (stream, seq) at a target (part, off).
func seqAt(part int, off int64, stream uint32, seq uint64) step {
	return tgt(part, off, rec(testRun, stream, seq))
}

func withKey(s step, key []byte) step  { s.key = key; return s }
func withHeader(s step, h []byte) step { s.header = h; return s }
func unc(part int, off int64, v []byte) step {
	return step{part: part, off: off, value: v, uncommitted: true}
}
func ctl(part int, off int64) step { return step{part: part, off: off, control: true} }

// recTopic is a record produced to another source topic.
func recTopic(topic string, stream uint32, seq uint64) []byte {
	return wire.Encode(wire.Record{RunID: testRun, Topic: topic, Stream: stream, Seq: seq, ProducedAt: t0, Padding: 8})
}

// claim rewrites a record's header text (its checksum is left as it was,
// so the record is damaged).
func claim(v []byte, old, new string) []byte {
	return bytes.Replace(bytes.Clone(v), []byte(old), []byte(new), 1)
}
func src(part int, off int64, v []byte) step {
	return step{part: part, off: off, value: v, source: true}
}

// corruptChecksum flips one padding byte so the CRC no longer holds.
func corruptChecksum(v []byte) []byte {
	b := bytes.Clone(v)
	b[len(b)-1] ^= 0x01
	return b
}

// otherPayload re-encodes (stream, seq) with a valid checksum but padding
// that is not the deterministic one: a different payload for one identity.
func otherPayload(stream uint32, seq uint64) []byte {
	v := rec(testRun, stream, seq)
	v[len(v)-1] = 'A' // padding is lower-case, so this differs for sure
	// recompute the checksum via a decode/encode round is impossible (the
	// encoder writes the canonical padding), so patch the CRC by hand.
	return fixCRC(v)
}

func seqRecs(stream uint32, from, to uint64, part int, off0 int64) []step {
	var s []step
	for q := from; q <= to; q++ {
		s = append(s, tgt(part, off0+int64(q-from), rec(testRun, stream, q)))
	}
	return s
}

func cat(ss ...[]step) []step {
	var out []step
	for _, s := range ss {
		out = append(out, s...)
	}
	return out
}

type ack struct {
	stream   uint32
	from, to uint64
}

// ruleCase is one case of the tracker's rules: what the ledger says, what
// the readers saw, and the judgement.
type ruleCase struct {
	name          string
	acks          []ack
	fails         []ack
	steps         []step
	sourceChecked bool
	want          Counts
	truncated     uint64
	otherRuns     uint64
	reachedLast   bool
	exampleCat    string // a category that must carry evidence
	// bySeq: no source reader; order is judged by sequence order.
	bySeq bool
	// arrived: every acked sequence arrived or was truncated (Judgement.AllArrived).
	arrived bool
}

// ruleCases are the tracker's rules, one case each (TestTrackerRules; the
// sharded validator's merge must judge every one alike: shard_test.go).
func ruleCases() []ruleCase {
	return []ruleCase{
		{
			name:        "clean run",
			acks:        []ack{{1, 0, 9}},
			steps:       seqRecs(1, 0, 9, 0, 0),
			want:        Counts{Produced: 10, Acked: 10, Received: 10},
			reachedLast: true,
		},
		{
			name:        "lost below highest seen",
			acks:        []ack{{1, 0, 9}},
			steps:       cat(seqRecs(1, 0, 3, 0, 0), seqRecs(1, 6, 9, 0, 4)),
			want:        Counts{Produced: 10, Acked: 10, Received: 8, Lost: 2},
			reachedLast: true,
			exampleCat:  CatLost,
		},
		{
			name:       "unseen above highest seen",
			acks:       []ack{{1, 0, 9}},
			steps:      seqRecs(1, 0, 6, 0, 0),
			want:       Counts{Produced: 10, Acked: 10, Received: 7, Unseen: 3},
			exampleCat: CatUnseen,
		},
		{
			name:       "lost and unseen together, nothing seen is unseen",
			acks:       []ack{{1, 0, 9}, {2, 0, 4}},
			steps:      cat(seqRecs(1, 0, 2, 0, 0), seqRecs(1, 5, 6, 0, 3)),
			want:       Counts{Produced: 15, Acked: 15, Received: 5, Lost: 2, Unseen: 3 + 5},
			exampleCat: CatLost,
		},
		{
			name:        "duplicate at another offset",
			acks:        []ack{{1, 0, 2}},
			steps:       cat(seqRecs(1, 0, 2, 0, 0), []step{tgt(0, 3, rec(testRun, 1, 1))}),
			want:        Counts{Produced: 3, Acked: 3, Received: 4, Duplicate: 1},
			reachedLast: true,
			exampleCat:  CatDuplicate,
		},
		{
			name:        "duplicate in another partition",
			acks:        []ack{{1, 0, 2}},
			steps:       cat(seqRecs(1, 0, 2, 0, 0), []step{tgt(1, 0, rec(testRun, 1, 2))}),
			want:        Counts{Produced: 3, Acked: 3, Received: 4, Duplicate: 1},
			reachedLast: true,
		},
		{
			name:        "redelivery of the same offset is not a duplicate",
			acks:        []ack{{1, 0, 2}},
			steps:       cat(seqRecs(1, 0, 2, 0, 0), seqRecs(1, 0, 2, 0, 0)),
			want:        Counts{Produced: 3, Acked: 3, Received: 3, Redelivery: 3},
			reachedLast: true,
			exampleCat:  CatRedelivery,
		},
		{
			name: "reordered within a partition, against the source's order",
			acks: []ack{{1, 0, 3}},
			steps: cat(srcRecs(1, 0, 3, 0, 0), []step{
				tgt(0, 0, rec(testRun, 1, 0)), tgt(0, 1, rec(testRun, 1, 2)),
				tgt(0, 2, rec(testRun, 1, 1)), tgt(0, 3, rec(testRun, 1, 3)),
			}),
			want:        Counts{Produced: 4, Acked: 4, Received: 4, Reordered: 1},
			reachedLast: true,
			exampleCat:  CatReordered,
		},
		{
			name: "lower seq in another partition is not reordered",
			acks: []ack{{1, 0, 3}},
			steps: []step{
				tgt(1, 0, rec(testRun, 1, 2)), tgt(1, 1, rec(testRun, 1, 3)),
				tgt(0, 5, rec(testRun, 1, 0)), tgt(0, 6, rec(testRun, 1, 1)),
			},
			want:        Counts{Produced: 4, Acked: 4, Received: 4},
			reachedLast: true,
		},
		{
			// A damaged record never advances stream state: its claimed
			// sequence is lost unless it arrives intact.
			name: "checksum mismatch is corrupt and its sequence lost",
			acks: []ack{{1, 0, 2}},
			steps: []step{
				tgt(0, 0, rec(testRun, 1, 0)), tgt(0, 1, corruptChecksum(rec(testRun, 1, 1))),
				tgt(0, 2, rec(testRun, 1, 2)),
			},
			want:        Counts{Produced: 3, Acked: 3, Received: 2, Corrupt: 1, Lost: 1},
			reachedLast: true,
			exampleCat:  CatCorrupt,
		},
		{
			name: "different payload for one (stream, seq) is corrupt",
			acks: []ack{{1, 0, 1}},
			steps: []step{
				tgt(0, 0, rec(testRun, 1, 0)), tgt(0, 1, rec(testRun, 1, 1)),
				tgt(0, 2, otherPayload(1, 1)),
			},
			want:        Counts{Produced: 2, Acked: 2, Received: 2, Corrupt: 1},
			reachedLast: true,
			exampleCat:  CatCorrupt,
		},
		{
			// the old rule marked the corrupt copy seen, so the intact copy
			// after it counted as a duplicate (charged to maxDuplicates)
			// and was not received: counts depended on arrival order.
			name: "a corrupt copy before the intact one: the same counts as after it, no duplicate",
			acks: []ack{{1, 0, 1}},
			steps: []step{
				tgt(0, 0, rec(testRun, 1, 0)), tgt(0, 1, otherPayload(1, 1)),
				tgt(0, 2, rec(testRun, 1, 1)),
			},
			want:        Counts{Produced: 2, Acked: 2, Received: 2, Corrupt: 1},
			reachedLast: true,
			exampleCat:  CatCorrupt,
		},
		{
			name: "only a corrupt copy arrived: corrupt, not also lost",
			acks: []ack{{1, 0, 2}},
			steps: []step{
				tgt(0, 0, rec(testRun, 1, 0)), tgt(0, 1, otherPayload(1, 1)),
				tgt(0, 2, rec(testRun, 1, 2)),
			},
			want:        Counts{Produced: 3, Acked: 3, Received: 2, Corrupt: 1},
			reachedLast: true,
			exampleCat:  CatCorrupt,
		},
		{
			name: "foreign records are counted, never judged",
			acks: []ack{{1, 0, 1}},
			steps: []step{
				tgt(0, 0, []byte("hello")), tgt(0, 1, rec(testRun, 1, 0)), tgt(0, 2, nil),
				tgt(0, 3, []byte("kmt1 c=zzzzzzzz r=x")), tgt(0, 4, rec(testRun, 1, 1)),
			},
			// "kmt1 c=zzzzzzzz r=x" is kmt framing (damaged) of run "x":
			// another run's damaged record, never this run's problem.
			want:        Counts{Produced: 2, Acked: 2, Received: 2, Foreign: 2},
			otherRuns:   1,
			reachedLast: true,
			exampleCat:  CatForeign,
		},
		{
			name: "other run's records are counted apart",
			acks: []ack{{1, 0, 1}},
			steps: []step{
				tgt(0, 0, rec("run-2", 1, 0)), tgt(0, 1, rec(testRun, 1, 0)),
				tgt(0, 2, rec("run-2", 1, 7)), tgt(0, 3, rec(testRun, 1, 1)),
			},
			want:        Counts{Produced: 2, Acked: 2, Received: 2},
			otherRuns:   2,
			reachedLast: true,
		},
		{
			name: "source lost: acked but never in the source log",
			acks: []ack{{1, 0, 4}},
			steps: cat(
				[]step{src(0, 0, rec(testRun, 1, 0)), src(0, 1, rec(testRun, 1, 1)), src(0, 2, rec(testRun, 1, 3)), src(0, 3, rec(testRun, 1, 4))},
				[]step{tgt(0, 0, rec(testRun, 1, 0)), tgt(0, 1, rec(testRun, 1, 1)), tgt(0, 2, rec(testRun, 1, 4))},
			),
			sourceChecked: true,
			// seq 2 is absent from the source: source_lost; seq 3 is in the
			// source and missing below 4: lost.
			want:        Counts{Produced: 5, Acked: 5, Received: 3, Lost: 1, SourceLost: 1},
			reachedLast: true,
			exampleCat:  CatSourceLost,
		},
		{
			name: "source not checked: absent from source is still lost",
			acks: []ack{{1, 0, 2}},
			steps: cat(
				[]step{src(0, 0, rec(testRun, 1, 0)), src(0, 1, rec(testRun, 1, 2))},
				[]step{tgt(0, 0, rec(testRun, 1, 0)), tgt(0, 1, rec(testRun, 1, 2))},
			),
			want:        Counts{Produced: 3, Acked: 3, Received: 2, Lost: 1},
			reachedLast: true,
		},
		{
			name: "truncated: purged from the source before the mirror copied it",
			acks: []ack{{1, 0, 5}},
			steps: cat(
				// the source reader saw 0..2 at offsets 0..2, then the
				// harness purged below offset 3
				[]step{src(0, 0, rec(testRun, 1, 0)), src(0, 1, rec(testRun, 1, 1)), src(0, 2, rec(testRun, 1, 2))},
				[]step{{trunc: map[int]int64{0: 3}}},
				[]step{src(0, 3, rec(testRun, 1, 3)), src(0, 4, rec(testRun, 1, 4)), src(0, 5, rec(testRun, 1, 5))},
				// the mirror only got 3..5
				seqRecs(1, 3, 5, 0, 0),
			),
			sourceChecked: true,
			want:          Counts{Produced: 6, Acked: 6, Received: 3},
			truncated:     3,
			reachedLast:   true,
			exampleCat:    CatTruncated,
		},
		{
			name: "truncated when the source reader jumped over the purged range",
			acks: []ack{{1, 0, 5}},
			steps: cat(
				[]step{{trunc: map[int]int64{0: 3}}},
				[]step{src(0, 3, rec(testRun, 1, 3)), src(0, 4, rec(testRun, 1, 4)), src(0, 5, rec(testRun, 1, 5))},
				seqRecs(1, 3, 5, 0, 0),
			),
			sourceChecked: true,
			want:          Counts{Produced: 6, Acked: 6, Received: 3},
			truncated:     3,
			reachedLast:   true,
		},
		{
			name: "a record that survived the purge and is missing at the target is lost, not truncated",
			acks: []ack{{1, 0, 5}},
			steps: cat(
				[]step{{trunc: map[int]int64{0: 3}}},
				[]step{src(0, 3, rec(testRun, 1, 3)), src(0, 4, rec(testRun, 1, 4)), src(0, 5, rec(testRun, 1, 5))},
				seqRecs(1, 4, 5, 0, 0),
			),
			sourceChecked: true,
			want:          Counts{Produced: 6, Acked: 6, Received: 2, Lost: 1},
			truncated:     3,
			reachedLast:   true,
		},
		{
			name:        "failed sends count as produced, not acked",
			acks:        []ack{{1, 0, 2}},
			fails:       []ack{{1, 2, 4}},
			steps:       seqRecs(1, 0, 2, 0, 0),
			want:        Counts{Produced: 5, Acked: 3, Received: 3},
			reachedLast: true,
		},
		// --- identity (issue 9, class 2) ---
		{
			name:        "a wrong key is an identity mismatch, not a delivery",
			acks:        []ack{{1, 0, 2}},
			steps:       []step{seqAt(0, 0, 1, 0), withKey(seqAt(0, 1, 1, 1), []byte("s9")), seqAt(0, 2, 1, 2)},
			want:        Counts{Produced: 3, Acked: 3, Received: 2, IdentityMismatch: 1, Lost: 1},
			reachedLast: true,
			exampleCat:  CatIdentity,
		},
		{
			name:        "a nulled key is an identity mismatch",
			acks:        []ack{{1, 0, 1}},
			steps:       []step{withKey(seqAt(0, 0, 1, 0), []byte{}), seqAt(0, 1, 1, 1)},
			want:        Counts{Produced: 2, Acked: 2, Received: 1, IdentityMismatch: 1, Lost: 1},
			reachedLast: true,
		},
		{
			name:        "a record of another source topic is an identity mismatch (topic swap)",
			acks:        []ack{{1, 0, 1}},
			steps:       []step{tgt(0, 0, recTopic("u", 1, 0)), seqAt(0, 1, 1, 0), seqAt(0, 2, 1, 1)},
			want:        Counts{Produced: 2, Acked: 2, Received: 2, IdentityMismatch: 1},
			reachedLast: true,
			exampleCat:  CatIdentity,
		},
		{
			name: "a damaged kmt header is an identity mismatch; a right one or none is fine",
			acks: []ack{{1, 0, 2}},
			steps: []step{
				withHeader(seqAt(0, 0, 1, 0), wire.HeaderValue(rec(testRun, 1, 0))),
				withHeader(seqAt(0, 1, 1, 1), []byte("00000000")),
				seqAt(0, 2, 1, 2),
			},
			want:        Counts{Produced: 3, Acked: 3, Received: 2, IdentityMismatch: 1, Lost: 1},
			reachedLast: true,
		},
		// --- damaged records (class 9) ---
		{
			name:        "damaged magic bytes are this run's corruption, not foreign",
			acks:        []ack{{1, 0, 2}},
			steps:       []step{seqAt(0, 0, 1, 0), tgt(0, 1, claim(rec(testRun, 1, 1), "kmt3", "kmu3")), seqAt(0, 2, 1, 2)},
			want:        Counts{Produced: 3, Acked: 3, Received: 2, Corrupt: 1, Lost: 1},
			reachedLast: true,
			exampleCat:  CatCorrupt,
		},
		{
			name: "another run's damaged record is never this run's problem",
			acks: []ack{{1, 0, 1}},
			steps: []step{seqAt(0, 0, 1, 0), tgt(0, 1, corruptChecksum(rec("run-7", 1, 1))),
				tgt(0, 2, claim(rec("run-7", 1, 1), "kmt3", "kmu3")), seqAt(0, 3, 1, 1)},
			want:        Counts{Produced: 2, Acked: 2, Received: 2},
			otherRuns:   2,
			reachedLast: true,
		},
		{
			name: "a damaged run id one byte off is still this run's corruption",
			acks: []ack{{1, 0, 1}},
			steps: []step{seqAt(0, 0, 1, 0), tgt(0, 1, claim(rec(testRun, 1, 1), "r=run-1", "r=run*1")),
				seqAt(0, 2, 1, 1)},
			want:        Counts{Produced: 2, Acked: 2, Received: 2, Corrupt: 1},
			reachedLast: true,
		},
		{
			// class 5: a record failing its checksum never advances state,
			// so a header claiming the last sequence neither ends the drain
			// nor turns the missing tail into "lost".
			name:  "a damaged record claiming a high sequence advances nothing",
			acks:  []ack{{1, 0, 9}},
			steps: cat(seqRecs(1, 0, 4, 0, 0), []step{tgt(0, 5, claim(rec(testRun, 1, 4), "q=4 ", "q=9 "))}),
			want:  Counts{Produced: 10, Acked: 10, Received: 5, Corrupt: 1, Unseen: 5},
		},
		// --- order against the source's order (class 3) ---
		{
			name: "order the source created by adding partitions is not blamed",
			acks: []ack{{1, 0, 5}},
			steps: cat(srcRecs(1, 0, 2, 0, 0), srcRecs(1, 3, 5, 1, 0), []step{
				seqAt(0, 0, 1, 0), seqAt(0, 1, 1, 1), seqAt(0, 2, 1, 3), seqAt(0, 3, 1, 4), seqAt(0, 4, 1, 2), seqAt(0, 5, 1, 5),
			}),
			want:        Counts{Produced: 6, Acked: 6, Received: 6},
			reachedLast: true,
		},
		{
			name: "but a reordering inside one source partition's part still is",
			acks: []ack{{1, 0, 5}},
			steps: cat(srcRecs(1, 0, 2, 0, 0), srcRecs(1, 3, 5, 1, 0), []step{
				seqAt(0, 0, 1, 0), seqAt(0, 1, 1, 3), seqAt(0, 2, 1, 2), seqAt(0, 3, 1, 1), seqAt(0, 4, 1, 4), seqAt(0, 5, 1, 5),
			}),
			want:        Counts{Produced: 6, Acked: 6, Received: 6, Reordered: 1},
			reachedLast: true,
			exampleCat:  CatReordered,
		},
		{
			name: "order the source wrote out of sequence is not blamed",
			acks: []ack{{1, 0, 3}},
			steps: cat([]step{src(0, 0, rec(testRun, 1, 0)), src(0, 1, rec(testRun, 1, 2)), src(0, 2, rec(testRun, 1, 1)), src(0, 3, rec(testRun, 1, 3))},
				[]step{seqAt(0, 0, 1, 0), seqAt(0, 1, 1, 2), seqAt(0, 2, 1, 1), seqAt(0, 3, 1, 3)}),
			want:        Counts{Produced: 4, Acked: 4, Received: 4},
			reachedLast: true,
		},
		{
			name:        "without a source reader order is judged by sequence",
			acks:        []ack{{1, 0, 3}},
			bySeq:       true,
			steps:       []step{seqAt(0, 0, 1, 0), seqAt(0, 1, 1, 2), seqAt(0, 2, 1, 1), seqAt(0, 3, 1, 3)},
			want:        Counts{Produced: 4, Acked: 4, Received: 4, Reordered: 1},
			reachedLast: true,
		},
		{
			name: "a stream the source kept in one partition arriving over two is split",
			acks: []ack{{1, 0, 5}},
			steps: cat(srcRecs(1, 0, 5, 0, 0), []step{
				seqAt(0, 0, 1, 0), seqAt(0, 1, 1, 1), seqAt(1, 0, 1, 2), seqAt(0, 2, 1, 3), seqAt(1, 1, 1, 4), seqAt(0, 3, 1, 5),
			}),
			want:        Counts{Produced: 6, Acked: 6, Received: 6, Split: 2},
			reachedLast: true,
			exampleCat:  CatSplit,
		},
		{
			// the source may have moved the stream itself (partitions
			// added): without its reader a split cannot be told apart.
			name:  "without a source reader split is not judged",
			acks:  []ack{{1, 0, 2}},
			bySeq: true,
			steps: []step{seqAt(0, 0, 1, 0), seqAt(1, 0, 1, 1), seqAt(0, 1, 1, 2)},
			want:  Counts{Produced: 3, Acked: 3, Received: 3}, reachedLast: true,
		},
		{
			name: "a mirror keeping partitions after partitions were added is not split",
			acks: []ack{{1, 0, 5}},
			steps: cat(srcRecs(1, 0, 2, 0, 0), srcRecs(1, 3, 5, 1, 0),
				[]step{seqAt(0, 0, 1, 0), seqAt(0, 1, 1, 1), seqAt(1, 0, 1, 3), seqAt(0, 2, 1, 2), seqAt(1, 1, 1, 4), seqAt(1, 2, 1, 5)}),
			want:        Counts{Produced: 6, Acked: 6, Received: 6},
			reachedLast: true,
		},
		{
			name: "a mirror re-hashing keys into another partition count passes",
			acks: []ack{{1, 0, 2}, {2, 0, 2}, {3, 0, 2}},
			steps: cat(srcRecs(1, 0, 2, 0, 0), srcRecs(2, 0, 2, 1, 0), srcRecs(3, 0, 2, 1, 3), []step{
				seqAt(2, 0, 1, 0), seqAt(2, 1, 2, 0), seqAt(0, 0, 3, 0), seqAt(2, 2, 1, 1), seqAt(2, 3, 2, 1),
				seqAt(0, 1, 3, 1), seqAt(2, 4, 2, 2), seqAt(2, 5, 1, 2), seqAt(0, 2, 3, 2),
			}),
			want:        Counts{Produced: 9, Acked: 9, Received: 9},
			reachedLast: true,
		},
		{
			// class 5: the last acked seq arrived in one partition while the
			// stream's earlier records are still on their way in another:
			// the drain must not stop (AllArrived false).
			name:        "a split stream with its last record in: not all arrived",
			acks:        []ack{{1, 0, 5}},
			steps:       cat(srcRecs(1, 0, 5, 0, 0), []step{seqAt(0, 0, 1, 0), seqAt(0, 1, 1, 1), seqAt(1, 0, 1, 5)}),
			want:        Counts{Produced: 6, Acked: 6, Received: 3, Lost: 3, Split: 1},
			reachedLast: true,
		},
		// --- retention purge (class 4) ---
		{
			name: "a gap the mirror left before the purge is lost, not truncated",
			acks: []ack{{1, 0, 5}},
			steps: cat(srcRecs(1, 0, 5, 0, 0),
				[]step{seqAt(0, 0, 1, 0), seqAt(0, 1, 1, 1), seqAt(0, 2, 1, 3)},
				[]step{{trunc: map[int]int64{0: 4}}},
				[]step{seqAt(0, 3, 1, 4), seqAt(0, 4, 1, 5)}),
			sourceChecked: true,
			want:          Counts{Produced: 6, Acked: 6, Received: 5, Lost: 1},
			reachedLast:   true,
			exampleCat:    CatLost,
		},
		{
			// the old rule took the highest sequence the source reader had
			// seen as the bound, and excused seq 4 (above the purge) too.
			name: "the source reader already past the purge: only records below it are truncated",
			acks: []ack{{1, 0, 5}},
			steps: cat(srcRecs(1, 0, 5, 0, 0),
				[]step{{trunc: map[int]int64{0: 3}}},
				[]step{seqAt(0, 0, 1, 3), seqAt(0, 1, 1, 5)}),
			sourceChecked: true,
			want:          Counts{Produced: 6, Acked: 6, Received: 2, Lost: 1},
			truncated:     3,
			reachedLast:   true,
		},
		{
			// the catalogue flake: records purged before kmt's source
			// reader read them were called source_lost.
			name: "records purged before the source reader read them are truncated, not source_lost",
			acks: []ack{{1, 0, 5}},
			steps: cat(srcRecs(1, 0, 1, 0, 0),
				[]step{{trunc: map[int]int64{0: 3}}},
				srcRecs(1, 3, 5, 0, 3),
				[]step{seqAt(0, 0, 1, 0), seqAt(0, 1, 1, 3), seqAt(0, 2, 1, 4), seqAt(0, 3, 1, 5)}),
			sourceChecked: true,
			want:          Counts{Produced: 6, Acked: 6, Received: 4},
			truncated:     2,
			reachedLast:   true,
		},
		{
			// the source reader was past the purge (offsets 0..6 read) and
			// the probe that finds the first records after it never ran:
			// what the purge deleted is unknown, so nothing is excused and
			// stream 1's seqs 2..4 are unseen. (Excusing "everything above
			// what arrived" here would pass the run.)
			name: "a purge whose probe never ran excuses nothing",
			acks: []ack{{1, 0, 4}, {2, 0, 1}},
			steps: cat(srcRecs(1, 0, 4, 0, 0), srcRecs(2, 0, 1, 0, 5),
				[]step{{trunc: map[int]int64{0: 3}, probeLost: true}},
				[]step{seqAt(0, 0, 1, 0), seqAt(0, 1, 1, 1), seqAt(0, 2, 2, 0), seqAt(0, 3, 2, 1)}),
			sourceChecked: true,
			want:          Counts{Produced: 7, Acked: 7, Received: 4, Unseen: 3},
			exampleCat:    CatUnseen,
		},
		{
			// with the probe: seq 2 (offset 2) was purged, seqs 3 and 4
			// (offsets 3, 4) survived and never arrived
			name: "the same purge with its probe: the purged record is truncated, the survivors unseen",
			acks: []ack{{1, 0, 4}, {2, 0, 1}},
			steps: cat(srcRecs(1, 0, 4, 0, 0), srcRecs(2, 0, 1, 0, 5),
				[]step{{trunc: map[int]int64{0: 3}}},
				[]step{seqAt(0, 0, 1, 0), seqAt(0, 1, 1, 1), seqAt(0, 2, 2, 0), seqAt(0, 3, 2, 1)}),
			sourceChecked: true,
			want:          Counts{Produced: 7, Acked: 7, Received: 4, Unseen: 2},
			truncated:     1,
			exampleCat:    CatUnseen,
		},
		{
			// the stream moved from source partition 0 (seqs 0..2) to 1
			// (seqs 3..5) and partition 1 was purged at offset 2 before the
			// source reader read it: its segment there starts above the
			// stream's last seq in partition 0, so 3..4 are truncated and
			// the mirror's own gap 1..2 in partition 0 is lost.
			name: "a purged segment starts where the stream's previous partition ended",
			acks: []ack{{1, 0, 5}},
			steps: cat(srcRecs(1, 0, 2, 0, 0),
				[]step{{trunc: map[int]int64{1: 2}}},
				[]step{src(1, 2, rec(testRun, 1, 5))},
				[]step{seqAt(0, 0, 1, 0), seqAt(1, 0, 1, 5)}),
			sourceChecked: true,
			want:          Counts{Produced: 6, Acked: 6, Received: 2, Lost: 2},
			truncated:     2,
			reachedLast:   true,
			exampleCat:    CatLost,
		},
		{
			// the old rule excused stream 2's missing tail as truncated
			// because partition 0 was purged: stream 2 was never there.
			name: "a purge of one partition never excuses a stream of another: missing from the source stays source_lost",
			acks: []ack{{1, 0, 3}, {2, 0, 5}},
			steps: cat(srcRecs(1, 0, 3, 0, 0), srcRecs(2, 0, 2, 1, 0),
				[]step{seqAt(0, 0, 1, 0), seqAt(0, 1, 1, 1), seqAt(0, 2, 1, 2), seqAt(0, 3, 1, 3)},
				[]step{seqAt(1, 0, 2, 0), seqAt(1, 1, 2, 1), seqAt(1, 2, 2, 2)},
				[]step{{trunc: map[int]int64{0: 4}}}),
			sourceChecked: true,
			want:          Counts{Produced: 10, Acked: 10, Received: 7, SourceLost: 3},
			exampleCat:    CatSourceLost,
		},
		{
			// real Kafka: the purge is to the high watermark, so kmt's
			// source reader is usually just past the new log start when the
			// purge is noted; the probe re-reads only [logStart, next) and
			// stream 2's first record after the purge lies beyond it, read
			// by the main reader. The old rule never noted it and called
			// stream 2's purged seq 1 lost.
			name: "source reader just past the purge: a stream whose first surviving record the main reader reads is truncated too",
			acks: []ack{{1, 0, 3}, {2, 0, 3}},
			steps: cat(
				[]step{src(0, 0, rec(testRun, 1, 0)), src(0, 1, rec(testRun, 2, 0)), src(0, 2, rec(testRun, 1, 1)),
					src(0, 3, rec(testRun, 2, 1)), src(0, 4, rec(testRun, 1, 2))},
				[]step{seqAt(0, 0, 1, 0), seqAt(0, 1, 2, 0)},
				[]step{{trunc: map[int]int64{0: 4}}},
				[]step{src(0, 5, rec(testRun, 2, 2)), src(0, 6, rec(testRun, 1, 3)), src(0, 7, rec(testRun, 2, 3))},
				[]step{seqAt(0, 2, 1, 2), seqAt(0, 3, 2, 2), seqAt(0, 4, 1, 3), seqAt(0, 5, 2, 3)}),
			sourceChecked: true,
			want:          Counts{Produced: 8, Acked: 8, Received: 6},
			truncated:     2,
			reachedLast:   true,
		},
		{
			name: "a stream with nothing left after the purge: all of its missing tail is truncated",
			acks: []ack{{1, 0, 3}, {2, 0, 1}},
			steps: cat(srcRecs(1, 0, 3, 0, 0),
				[]step{seqAt(0, 0, 1, 0)},
				[]step{{trunc: map[int]int64{0: 4}}},
				srcRecs(2, 0, 1, 0, 4),
				[]step{seqAt(0, 1, 2, 0), seqAt(0, 2, 2, 1)}),
			sourceChecked: true,
			want:          Counts{Produced: 6, Acked: 6, Received: 3},
			truncated:     3,
			arrived:       true,
		},
		// --- transactions (class 1) ---
		{
			name: "an aborted transaction the mirror re-sent: aborted_read for the read_uncommitted reader, no duplicate",
			acks: []ack{{1, 0, 2}},
			steps: []step{
				seqAt(0, 0, 1, 0), ctl(0, 3), seqAt(0, 4, 1, 1), seqAt(0, 5, 1, 2), ctl(0, 6),
				unc(0, 0, rec(testRun, 1, 0)), unc(0, 1, rec(testRun, 1, 1)), unc(0, 2, rec(testRun, 1, 2)),
				unc(0, 4, rec(testRun, 1, 1)), unc(0, 5, rec(testRun, 1, 2)),
			},
			want:        Counts{Produced: 3, Acked: 3, Received: 3, AbortedRead: 2},
			reachedLast: true,
			exampleCat:  CatAbortedRead,
		},
		{
			name: "an aborted transaction never re-sent: loss, and aborted_read",
			acks: []ack{{1, 0, 2}},
			steps: []step{
				seqAt(0, 0, 1, 0), ctl(0, 3),
				unc(0, 0, rec(testRun, 1, 0)), unc(0, 1, rec(testRun, 1, 1)), unc(0, 2, rec(testRun, 1, 2)),
			},
			want: Counts{Produced: 3, Acked: 3, Received: 1, Unseen: 2, AbortedRead: 2},
		},
		{
			name: "records of an open transaction are not (yet) aborted reads",
			acks: []ack{{1, 0, 0}},
			steps: []step{
				seqAt(0, 0, 1, 0), unc(0, 0, rec(testRun, 1, 0)), unc(0, 1, rec(testRun, 1, 1)),
			},
			want:        Counts{Produced: 1, Acked: 1, Received: 1},
			reachedLast: true,
		},
	}
}

// ledgerOf is a case's ledger.
func (tc ruleCase) ledger() *ledger.Ledger {
	l := ledger.New()
	for _, a := range tc.acks {
		for q := a.from; q <= a.to; q++ {
			l.Ack(ledger.StreamKey{Topic: "t", Stream: a.stream}, q)
		}
	}
	for _, a := range tc.fails {
		for q := a.from; q <= a.to; q++ {
			l.Fail(ledger.StreamKey{Topic: "t", Stream: a.stream}, q)
		}
	}
	l.MarkDone()
	return l
}

func TestTrackerRules(t *testing.T) {
	for _, tc := range ruleCases() {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.ledger()
			tr := NewTracker(testRun, 5, t0)
			if tc.bySeq {
				tr.JudgeOrderBySequence()
			}
			runSteps(tr, tc.steps)
			j := tr.Judge(l, true, tc.sourceChecked)
			if j.Total != tc.want {
				t.Errorf("counts\n got %+v\nwant %+v", j.Total, tc.want)
			}
			if j.PerTopic["t"] != tc.want {
				t.Errorf("per-topic counts %+v, want %+v", j.PerTopic["t"], tc.want)
			}
			if j.Truncated != tc.truncated {
				t.Errorf("truncated %d, want %d", j.Truncated, tc.truncated)
			}
			if j.OtherRuns != tc.otherRuns {
				t.Errorf("other runs %d, want %d", j.OtherRuns, tc.otherRuns)
			}
			if j.AllReachedLast != tc.reachedLast {
				t.Errorf("all reached last %v, want %v", j.AllReachedLast, tc.reachedLast)
			}
			if want := tc.arrived || tc.reachedLast && tc.want.Lost+tc.want.Unseen+tc.want.SourceLost == 0; j.AllArrived != want {
				t.Errorf("all arrived %v, want %v", j.AllArrived, want)
			}
			if tc.exampleCat != "" && len(tr.Examples()[tc.exampleCat]) == 0 {
				t.Errorf("no %s evidence; examples: %+v", tc.exampleCat, tr.Examples())
			}
		})
	}
}

func TestTrackerExamplesAreBoundedAndPrecise(t *testing.T) {
	l := ledger.New()
	k := ledger.StreamKey{Topic: "t", Stream: 3}
	for q := uint64(0); q < 100; q++ {
		l.Ack(k, q)
	}
	tr := NewTracker(testRun, 2, t0)
	// deliver the even seqs only, then each even seq again (duplicates)
	var off int64
	for q := uint64(0); q < 100; q += 2 {
		tr.Observe(keyed(Observation{Topic: "t", Offset: off, Value: rec(testRun, 3, q), ReadAt: t0}))
		off++
	}
	for q := uint64(0); q < 100; q += 2 {
		tr.Observe(keyed(Observation{Topic: "t", Offset: off, Value: rec(testRun, 3, q), ReadAt: t0}))
		off++
	}
	j := tr.Judge(l, true, false)
	if j.Total.Lost != 49 || j.Total.Unseen != 1 || j.Total.Duplicate != 50 {
		t.Fatalf("got %+v, want lost 49 unseen 1 duplicate 50", j.Total)
	}
	ex := tr.Examples()
	if len(ex[CatLost]) != 2 || len(ex[CatDuplicate]) != 2 {
		t.Fatalf("examples not capped at 2: %+v", ex)
	}
	// Lost evidence names the target record that arrived right after the
	// gap (seq 2 at partition 0 offset 1), never partition -1 offset -1.
	if e := ex[CatLost][0]; e.Stream != 3 || e.Seq != 1 || e.SeqEnd != 1 || e.Partition != 0 || e.Offset != 1 {
		t.Errorf("first lost example %+v, want stream 3 seq 1..1 at partition 0 offset 1", e)
	}
	if e := ex[CatUnseen][0]; e.Seq != 99 || e.SeqEnd != 99 {
		t.Errorf("unseen example %+v, want seq 99..99", e)
	}
	if e := ex[CatDuplicate][0]; e.Seq != 0 || e.Offset != 50 {
		t.Errorf("first duplicate example %+v, want seq 0 at offset 50", e)
	}
}

func TestTrackerLiveJudgeHasNoEvidenceOrSourceLost(t *testing.T) {
	l := ledger.New()
	k := ledger.StreamKey{Topic: "t", Stream: 1}
	for q := uint64(0); q < 4; q++ {
		l.Ack(k, q)
	}
	tr := NewTracker(testRun, 5, t0)
	tr.Observe(keyed(Observation{Topic: "t", Offset: 0, Value: rec(testRun, 1, 2), ReadAt: t0}))
	j := tr.Judge(l, false, true)
	if j.Total.Lost != 2 || j.Total.Unseen != 1 || j.Total.SourceLost != 0 {
		t.Fatalf("live judge %+v, want lost 2 unseen 1 source_lost 0", j.Total)
	}
	if len(tr.Examples()[CatLost]) != 0 {
		t.Fatalf("live judge produced evidence")
	}
}

// Class 8: mirror latency is first arrival only; duplicates have their own
// figure; a negative apparent latency is counted, not clamped into the
// histogram.
func TestTrackerLatencyAndTimelines(t *testing.T) {
	tr := NewTracker(testRun, 5, t0)
	mk := func(seq uint64, produced, read time.Duration) Observation {
		v := wire.Encode(wire.Record{RunID: testRun, Stream: 1, Seq: seq, ProducedAt: t0.Add(produced)})
		return keyed(Observation{Topic: "t", Offset: int64(seq), Value: v, ReadAt: t0.Add(read)})
	}
	// second 0: 3 records at 10 ms; second 2: 1 record at 500 ms, its
	// duplicate 4 s later (a re-copy), a foreign record, and a record read
	// 100 ms before its produce time (clock skew).
	tr.Observe(mk(0, 0, 10*time.Millisecond))
	tr.Observe(mk(1, 50*time.Millisecond, 60*time.Millisecond))
	tr.Observe(mk(2, 120*time.Millisecond, 130*time.Millisecond))
	tr.Observe(mk(3, 1500*time.Millisecond, 2000*time.Millisecond))
	dup := mk(3, 1500*time.Millisecond, 5500*time.Millisecond)
	dup.Offset = 100
	tr.Observe(dup)
	tr.Observe(keyed(Observation{Topic: "t", Offset: 101, Value: []byte("junk"), ReadAt: t0.Add(2300 * time.Millisecond)}))
	tr.Observe(mk(4, 2400*time.Millisecond, 2300*time.Millisecond))

	lat := tr.Latency()
	if lat.Count != 4 {
		t.Fatalf("latency count %d, want 4 (first arrivals with a non-negative latency)", lat.Count)
	}
	if lat.P50 < 0.0099 || lat.P50 > 0.0101 || lat.Max < 0.499 || lat.Max > 0.501 {
		t.Fatalf("latency %+v, want p50 10ms max 500ms (the 4 s re-copy is not mirror latency)", lat)
	}
	if rl := tr.RedeliveryLatency(); rl.Count != 1 || rl.Max < 3.99 || rl.Max > 4.01 {
		t.Fatalf("redelivery latency %+v, want one sample of 4 s", rl)
	}
	if n, most := tr.NegativeLatency(); n != 1 || most != -100*time.Millisecond {
		t.Fatalf("negative latency %d, most %v; want 1, -100ms", n, most)
	}
	arr := tr.Arrivals()
	// first arrivals: slots 0 (10 ms), 0 (60 ms), 1 (130 ms), 20 (2.0 s), 23 (2.3 s)
	want := map[int]uint64{0: 2, 1: 1, 20: 1, 23: 1}
	if len(arr) != 24 {
		t.Fatalf("arrival buckets %d, want 24", len(arr))
	}
	for i, b := range arr {
		if b.Count != want[i] {
			t.Errorf("bucket %d (%.1fs) = %d, want %d", i, b.Start, b.Count, want[i])
		}
	}
	tl := tr.LatencyTimeline()
	if len(tl) != 2 || tl[0].Second != 0 || tl[0].Count != 3 || tl[1].Second != 2 || tl[1].Count != 1 {
		t.Fatalf("latency timeline %+v, want seconds 0 (3 records) and 2 (1 record)", tl)
	}
	if tl[0].P50 > 0.0101 || tl[1].P50 < 0.499 {
		t.Fatalf("latency timeline p50s %+v, want ~10ms then ~500ms", tl)
	}
	if tl[0].P99 > 0.0101 || tl[0].Max < 0.0099 || tl[0].Max > 0.0101 || tl[1].P99 < 0.499 || tl[1].Max < 0.499 || tl[1].Max > 0.501 {
		t.Fatalf("latency timeline p99/max %+v, want 10ms in second 0 and 500ms in second 2", tl)
	}
	// First and last arrival: first intact arrivals only (not the
	// duplicate read at 5.5 s), whatever order their read times come in:
	// one read again at the last read time, then one read before the first.
	tr.Observe(mk(5, 2200*time.Millisecond, 2300*time.Millisecond))
	tr.Observe(mk(6, 0, 5*time.Millisecond))
	if first, last := tr.Arrival(); !first.Equal(t0.Add(5*time.Millisecond)) || !last.Equal(t0.Add(2300*time.Millisecond)) {
		t.Fatalf("arrivals from %v to %v after t0, want 5ms to 2.3s", first.Sub(t0), last.Sub(t0))
	}
}

// Class 7: lag is acked and not yet delivered, nothing else: arrivals of
// failed sends do not hide missing acked records.
func TestLagIsAckedNotDelivered(t *testing.T) {
	l := ledger.New()
	k := ledger.StreamKey{Topic: "t", Stream: 1}
	for q := uint64(0); q < 5; q++ {
		l.Ack(k, q)
	}
	for q := uint64(5); q < 10; q++ {
		l.Fail(k, q) // failed sends that still made it to the log
	}
	tr := NewTracker(testRun, 5, t0)
	for q := uint64(0); q < 10; q++ {
		if q == 3 || q == 4 {
			continue
		}
		tr.Observe(keyed(Observation{Topic: "t", Offset: int64(q), Value: rec(testRun, 1, q), ReadAt: t0}))
	}
	j := tr.Judge(l, false, false)
	if got := lag(j.PerTopic["t"]); got != 2 {
		t.Fatalf("lag %v, want 2 (acked 0..4, 3 and 4 not delivered; counts %+v)", got, j.PerTopic["t"])
	}
}

// fixCRC rewrites the checksum digits so the CRC-32C holds again, as a
// faulty mirror that re-encodes would.
func fixCRC(v []byte) []byte { return wire.Reseal(v) }

// runSteps feeds a test case's steps to a tracker (topic "t"); probes a
// truncation asks for are answered from the source records the case lists.
func runSteps(tr *Tracker, steps []step) {
	for _, s := range steps {
		switch {
		case s.trunc != nil:
			probes := tr.NoteTruncation("t", s.trunc)
			if s.probeLost {
				continue
			}
			for _, pr := range probes {
				for _, o := range steps {
					if o.source && o.part == pr.Partition && o.off >= pr.From && o.off < pr.To {
						tr.ObserveProbe(pr, o.off, o.value)
					}
				}
				tr.ProbeDone(pr)
			}
		case s.source:
			tr.ObserveSource("t", s.part, s.off, s.value)
		case s.control:
			tr.ObserveControl("t", s.part, s.off)
		case s.uncommitted:
			tr.ObserveUncommitted("t", s.part, s.off, s.value)
		default:
			key := s.key
			if key == nil {
				key = keyOf(s.value)
			}
			tr.Observe(Observation{Topic: "t", Partition: s.part, Offset: s.off, Key: key, Value: s.value,
				Header: s.header, HasHeader: s.header != nil, ReadAt: t0.Add(10 * time.Millisecond)})
		}
	}
}

// keyed sets the key a correct mirror carries.
func keyed(o Observation) Observation {
	o.Key = keyOf(o.Value)
	return o
}

// TestTrackerStreamsApartByTopicAndEpoch: streams with the same id in two
// topics and two epochs (and ids 1 and 65, which share a slot of the
// tracker's stream cache) interleave record by record in one target
// partition per topic; each is its own stream: 80 deliveries, then one
// real duplicate, nothing reordered, lost or split. A stream lookup that
// confused any two of them would count duplicates (and gaps) instead.
func TestTrackerStreamsApartByTopicAndEpoch(t *testing.T) {
	tr := NewTracker(testRun, 5, t0)
	tr.JudgeOrderBySequence()
	l := ledger.New()
	offs := map[string]int64{}
	observe := func(topic string, stream, epoch uint32, seq uint64) {
		v := wire.Encode(wire.Record{RunID: testRun, Topic: topic, Epoch: epoch, Stream: stream, Seq: seq, ProducedAt: t0, Padding: 8})
		tr.Observe(Observation{Topic: topic, Partition: 0, Offset: offs[topic], Key: wire.Key(stream), Value: v, ReadAt: t0.Add(time.Second)})
		offs[topic]++
	}
	for q := range uint64(10) {
		for _, topic := range []string{"a", "b"} {
			for _, stream := range []uint32{1, 65} {
				for _, epoch := range []uint32{0, 1} {
					l.Ack(ledger.StreamKey{Topic: topic, Stream: stream, Epoch: epoch}, q)
					observe(topic, stream, epoch, q)
				}
			}
		}
	}
	observe("b", 65, 1, 4) // the one duplicate
	l.MarkDone()
	j := tr.Judge(l, true, false)
	want := Counts{Produced: 80, Acked: 80, Received: 81, Duplicate: 1}
	if j.Total != want {
		t.Errorf("counts %+v, want %+v", j.Total, want)
	}
	if j.Streams != 8 {
		t.Errorf("%d streams, want 8", j.Streams)
	}
}
