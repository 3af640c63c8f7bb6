package validator

import (
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/intervals"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
)

// uncommitted finds aborted reads. In a read_uncommitted run two readers
// read each target partition: the judged one (read_committed, control
// records kept so its position passes every transaction marker) and a
// read_uncommitted one. A record of this run the read_uncommitted reader saw
// at an offset the read_committed reader went past without returning it
// belonged to an aborted transaction. Offsets are interval sets, so memory
// grows with aborted transactions, not records.
type uncommitted struct {
	pos     map[partKey]int64          // past the last transaction marker the read_committed reader returned
	seen    map[partKey]*intervals.Set // this run's offsets the read_uncommitted reader saw
	pending []uncRec                   // evidence whose fate is not known yet (bounded)
}

type uncRec struct {
	pk  partKey
	off int64
	rec wire.Record
}

// maxUncPending bounds the evidence kept for records read ahead of the
// read_committed reader (counts never depend on it).
const maxUncPending = 1024

func newUncommitted() uncommitted {
	return uncommitted{pos: map[partKey]int64{}, seen: map[partKey]*intervals.Set{}}
}

func (u *uncommitted) committedAt(pk partKey, off int64) {
	if off+1 > u.pos[pk] {
		u.pos[pk] = off + 1
	}
}

// committedPos is the read_committed reader's next offset in pk: past its
// last record or transaction marker.
func (t *Tracker) committedPos(pk partKey) int64 {
	pos := t.unc.pos[pk]
	if r := t.read[pk]; r != nil {
		if top, ok := r.Max(); ok && int64(top)+1 > pos {
			pos = int64(top) + 1
		}
	}
	return pos
}

// ObserveControl records a control record (a transaction marker) the judged
// reader returned: never a record, it only advances the reader's position.
func (t *Tracker) ObserveControl(topic string, partition int, offset int64) {
	t.unc.committedAt(partKey{topic, partition}, offset)
}

// ObserveUncommitted records a target record read by the read_uncommitted
// reader (topic is the source topic the target mirrors).
func (t *Tracker) ObserveUncommitted(topic string, partition int, offset int64, value []byte) {
	rec, err := t.dec.Decode(value)
	if err != nil || rec.RunID != t.runID || offset < 0 {
		return
	}
	pk := partKey{topic, partition}
	s := t.unc.seen[pk]
	if s == nil {
		s = &intervals.Set{}
		t.unc.seen[pk] = s
	}
	if !s.Add(uint64(offset)) {
		return
	}
	if !t.abortedEvidence(pk, offset, rec) && len(t.unc.pending) < maxUncPending && !t.full(CatAbortedRead) {
		t.unc.pending = append(t.unc.pending, uncRec{pk, offset, rec})
	}
}

// abortedEvidence records an example if the record at off is known to be
// aborted; it reports whether its fate is known.
func (t *Tracker) abortedEvidence(pk partKey, off int64, rec wire.Record) bool {
	if off >= t.committedPos(pk) {
		return false
	}
	if r := t.read[pk]; r == nil || !r.Contains(uint64(off)) {
		t.example(CatAbortedRead, Example{Topic: pk.topic, Stream: rec.Stream, Seq: rec.Seq, Partition: pk.partition, Offset: off,
			ProducedAt: ptr(rec.ProducedAt), Detail: "read by a read_uncommitted reader; a read_committed reader passed this offset without it (aborted transaction)"})
	}
	return true
}

// aborted counts, per source topic, this run's records the read_uncommitted
// reader saw below the read_committed reader's position that the latter did
// not return, and settles the pending evidence.
func (t *Tracker) aborted() map[string]uint64 {
	keep := t.unc.pending[:0]
	for _, p := range t.unc.pending {
		if !t.abortedEvidence(p.pk, p.off, p.rec) {
			keep = append(keep, p)
		}
	}
	t.unc.pending = keep
	out := map[string]uint64{}
	for pk, s := range t.unc.seen {
		pos := t.committedPos(pk)
		if pos <= 0 {
			continue
		}
		read := t.read[pk]
		if read == nil {
			read = &intervals.Set{}
		}
		s.Minus(read, func(r intervals.Range) bool {
			if r.Lo >= uint64(pos) {
				return false
			}
			out[pk.topic] += intervals.Range{Lo: r.Lo, Hi: min(r.Hi, uint64(pos)-1)}.Len()
			return true
		})
	}
	return out
}
