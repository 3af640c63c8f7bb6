package validator

import (
	"math"
	"sort"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/intervals"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
)

// srcPart is the source reader's state for one source partition.
type srcPart struct {
	next   int64 // next offset to read (last read + 1), -1 before any record
	purges []*purge
	// offsets the source reader read (as ranges: O(gaps)). When it read
	// every offset below a purge's log start, it knows exactly which
	// records the purge deleted, and only those can be truncated.
	offsets intervals.Set
}

// sawAllBelow says the source reader read every offset of the partition
// from 0 up to (not including) logStart.
func (p *srcPart) sawAllBelow(logStart int64) bool {
	return logStart <= 0 || p.offsets.CountIn(0, uint64(logStart-1)) == uint64(logStart)
}

// purge is one truncation of a source partition to logStart. What it
// deleted is decided from the first record of each stream at or above
// logStart: the main source reader finds those when it had not passed
// logStart when the purge was noted (viaMain), a probe re-reading from
// logStart finds them otherwise.
type purge struct {
	logStart int64
	viaMain  bool
	// covered: [logStart, end) was read completely, so a stream with no
	// record at or above logStart had all of its records in this
	// partition below it. The main reader's coverage is the drain's
	// sourceChecked; a probe's is ProbeDone.
	covered bool
}

// Probe asks the validator to re-read Partition of Topic from From up to
// (not including) To and feed the records to Tracker.ObserveProbe, then call
// ProbeDone: the source reader was already past a purge's new log start when
// it was noted, so the first records at or above it must be read again.
type Probe struct {
	Topic     string
	Partition int
	From, To  int64
}

func (t *Tracker) srcPart(topic string, partition int) *srcPart {
	pk := partKey{topic, partition}
	p := t.srcParts[pk]
	if p == nil {
		p = &srcPart{next: -1}
		t.srcParts[pk] = p
	}
	return p
}

// ObserveSource records a record read from the SOURCE log (topic is the
// source topic). Only this run's intact records count; anything else is
// ignored here (the target side judges records).
func (t *Tracker) ObserveSource(topic string, partition int, offset int64, value []byte) {
	rec, err := t.dec.Decode(value)
	t.observeSourceDecoded(topic, partition, offset, rec, err)
}

// observeSourceDecoded is ObserveSource with the value decoded (modes.go
// decodes tombstones from their header).
func (t *Tracker) observeSourceDecoded(topic string, partition int, offset int64, rec wire.Record, err error) {
	p := t.srcPart(topic, partition)
	if offset+1 > p.next {
		p.next = offset + 1
	}
	if offset >= 0 {
		p.offsets.Add(uint64(offset))
	}
	if err != nil || rec.RunID != t.runID {
		return
	}
	st := t.stream(streamKey{Topic: topic, Stream: rec.Stream, Epoch: rec.Epoch})
	s := setOf(st.src, partition)
	if top, ok := s.Max(); ok && rec.Seq < top {
		// The source itself holds this sequence after a higher one.
		setOf(st.srcInv, partition).Add(rec.Seq)
	}
	s.Add(rec.Seq)
	// Every purge, not only those the main reader had not passed: when it
	// had (a probe re-reads [logStart, next)), a stream's first record at or
	// above logStart may lie beyond the probe's range, and only this reader
	// sees it. The lowest offset wins whichever reader saw it first.
	for _, pg := range p.purges {
		if offset >= pg.logStart {
			st.noteFirst(partition, pg.logStart, offset, rec.Seq)
		}
	}
}

// firstAfter is a stream's record at the lowest offset read at or above a
// purge's log start: the first one the purge left.
type firstAfter struct {
	offset int64
	seq    uint64
}

// noteFirst keeps, per purge, the stream's record at the lowest offset at or
// above the purge's log start (the main reader and a probe may see records
// of one partition in either order).
func (st *streamState) noteFirst(partition int, logStart, offset int64, seq uint64) {
	if st.first == nil {
		st.first = map[int]map[int64]firstAfter{}
	}
	m := st.first[partition]
	if m == nil {
		m = map[int64]firstAfter{}
		st.first[partition] = m
	}
	if f, ok := m[logStart]; !ok || offset < f.offset {
		m[logStart] = firstAfter{offset: offset, seq: seq}
	}
}

// ObserveProbe feeds a record a Probe re-read (offsets from the purge's log
// start upwards, in order).
func (t *Tracker) ObserveProbe(pr Probe, offset int64, value []byte) {
	if offset < pr.From {
		return
	}
	rec, err := t.dec.Decode(value)
	if err != nil || rec.RunID != t.runID {
		return
	}
	t.stream(streamKey{Topic: pr.Topic, Stream: rec.Stream, Epoch: rec.Epoch}).noteFirst(pr.Partition, pr.From, offset, rec.Seq)
}

// ProbeDone records that pr read its whole range.
func (t *Tracker) ProbeDone(pr Probe) {
	for _, pg := range t.srcPart(pr.Topic, pr.Partition).purges {
		if pg.logStart == pr.From && !pg.viaMain {
			pg.covered = true
		}
	}
}

// NoteTruncation records that every record below logStart[partition] of the
// source topic was deleted (a purge or retention), and returns the probes
// the validator must run for partitions its source reader had already read
// past the new log start.
func (t *Tracker) NoteTruncation(topic string, logStart map[int]int64) []Probe {
	var probes []Probe
	parts := make([]int, 0, len(logStart))
	for part := range logStart {
		parts = append(parts, part)
	}
	sort.Ints(parts)
	for _, part := range parts {
		ls := logStart[part]
		if ls <= 0 {
			continue
		}
		p := t.srcPart(topic, part)
		pg := &purge{logStart: ls, viaMain: p.next <= ls}
		p.purges = append(p.purges, pg)
		if !pg.viaMain {
			probes = append(probes, Probe{Topic: topic, Partition: part, From: ls, To: p.next})
		}
	}
	return probes
}

// truncated returns the sequences of stream k that purges deleted before the
// mirror copied them. For each purge of a source partition the stream's
// segment there ends just below the first sequence it has at or above the
// purge's log start; of that segment, only what lies above the highest
// sequence the target got from it is truncated: anything at or below that
// was skipped by the mirror while it copied later records of the partition.
// mainCovered says the main source reader read every partition to its end.
func (t *Tracker) truncated(k streamKey, st *streamState, mainCovered bool) *intervals.Set {
	var out *intervals.Set
	for pk, p := range t.srcParts {
		if pk.topic != k.Topic || len(p.purges) == 0 {
			continue
		}
		for _, pg := range p.purges {
			hi := uint64(math.MaxUint64)
			if f, ok := st.first[pk.partition][pg.logStart]; ok {
				if f.seq == 0 {
					continue
				}
				hi = f.seq - 1
			} else if !mainCovered || !pg.viaMain && !pg.covered {
				// A stream with no record at or above the purge is known
				// to have lost everything there only when every reader
				// that could have seen one (the main reader to the end,
				// and the probe for what the main reader had passed) has
				// read its whole range. Otherwise excuse nothing.
				continue
			}
			lo := st.segmentStart(pk.partition, hi)
			if lo > hi {
				continue
			}
			if got, ok := st.seen.MaxIn(lo, hi); ok {
				if got == hi {
					continue
				}
				lo = got + 1
			}
			if hi == math.MaxUint64 {
				var ok bool
				if hi, ok = st.segmentEnd(pk.partition, lo); !ok {
					continue
				}
			}
			if out == nil {
				out = &intervals.Set{}
			}
			if !p.sawAllBelow(pg.logStart) {
				// Some records below the purge were never read: which
				// streams they belonged to is unknown, so the segment's
				// bounds are the best knowledge.
				out.AddRange(lo, hi)
				continue
			}
			// The reader read every record the purge deleted: only the
			// stream's sequences it read in this partition can be truncated
			// (a stream that was never in this partition loses nothing to
			// its purge, and what is missing from the source log stays
			// source_lost).
			if src := st.src[pk.partition]; src != nil {
				for _, r := range src.Ranges() {
					out.AddRange(max(r.Lo, lo), min(r.Hi, hi))
				}
			}
		}
	}
	return out
}

// segmentStart is the lowest sequence that can belong to the stream's
// segment in partition that ends at or below hi: just above the highest
// sequence the source reader read in another partition below hi (the
// previous segment), else 0.
func (st *streamState) segmentStart(partition int, hi uint64) uint64 {
	var lo uint64
	for q, s := range st.src {
		if q == partition {
			continue
		}
		if v, ok := s.MaxIn(0, hi); ok && v+1 > lo {
			if own := st.src[partition]; own != nil {
				if m, ok := own.MaxIn(0, hi); ok && m < v {
					continue // that other segment is after this one's records
				}
			}
			lo = v + 1
		}
	}
	return lo
}

// segmentEnd is the highest sequence of a segment starting at lo that has
// no record at or above the purge: just below the next sequence the source
// reader read in another partition, else the largest sequence. ok is false
// when the segment is empty.
func (st *streamState) segmentEnd(partition int, lo uint64) (hi uint64, ok bool) {
	hi = math.MaxUint64
	for q, s := range st.src {
		if q == partition {
			continue
		}
		v, found := lo, s.Contains(lo)
		if !found {
			v, found = s.Next(lo)
		}
		if !found {
			continue
		}
		if v == lo {
			return 0, false
		}
		hi = min(hi, v-1)
	}
	return hi, true
}
