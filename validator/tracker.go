// Package validator is kmt's checker: it reads what the mirror delivered to
// the target cluster (and what the source cluster really holds), classifies
// every record against the loadgen's ledger and produces the verdict's
// numbers and evidence.
//
// The rules live in Tracker, which is pure and in memory (no Kafka), so each
// rule is unit-tested; Validator feeds it from kafka-go readers.
package validator

import (
	"errors"
	"fmt"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"sort"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/kmt-dev/kafka-mirror-tester/internal/intervals"
	"github.com/kmt-dev/kafka-mirror-tester/internal/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/wire"
)

// Category names, as used in Examples keys, metric labels and report.json.
const (
	CatLost       = "lost"
	CatUnseen     = "unseen"
	CatDuplicate  = "duplicate"
	CatRedelivery = "redelivery"
	CatReordered  = "reordered"
	CatCorrupt    = "corrupt"
	CatForeign    = "foreign"
	CatSourceLost = "source_lost"
	CatTruncated  = "truncated"
)

// Counts is the per-category tally: report.json's counts, so the verdict
// file and the validator cannot drift apart. A sequence acked by the source
// and missing at the target is in exactly one of Lost, Unseen, SourceLost (or
// Result.Truncated).
type Counts = report.Counts

// Example is one piece of evidence. For range categories (lost, unseen,
// source_lost, truncated) Seq..SeqEnd is the missing range and Partition and
// Offset are -1.
type Example = report.Example

// Latency summarises read time minus produce time, in seconds.
type Latency = report.Latency

// Bucket is the number of records that arrived in one 100 ms slot; Start is
// seconds since the tracker's start.
type Bucket struct {
	Start float64 `json:"start"`
	Count uint64  `json:"count"`
}

// LatencyPoint is the median latency of the records that arrived during one
// second (Second counts from the tracker's start).
type LatencyPoint struct {
	Second int64   `json:"second"`
	P50    float64 `json:"p50"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
	Count  uint64  `json:"count"`
}

// Observation is one record read from the target cluster.
type Observation struct {
	Topic     string // the SOURCE topic name the target topic mirrors
	Partition int    // target partition
	Offset    int64  // target offset
	Value     []byte
	ReadAt    time.Time
}

// Outcome says what the tracker made of one observation.
type Outcome int

// Outcomes of Observe.
const (
	OutcomeOK         Outcome = iota // first intact arrival
	OutcomeDuplicate                 // intact, (stream, seq) already at another offset
	OutcomeRedelivery                // this (partition, offset) was already read
	OutcomeReordered                 // first arrival, but behind a higher seq at a lower offset of the partition
	OutcomeCorrupt
	OutcomeForeign
	OutcomeOtherRun
)

func (o Outcome) String() string {
	switch o {
	case OutcomeOK:
		return "ok"
	case OutcomeDuplicate:
		return CatDuplicate
	case OutcomeRedelivery:
		return CatRedelivery
	case OutcomeReordered:
		return CatReordered
	case OutcomeCorrupt:
		return CatCorrupt
	case OutcomeForeign:
		return CatForeign
	case OutcomeOtherRun:
		return "other_run"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Latency histogram bounds: 1 µs resolution, up to one hour, 3 digits.
const (
	latLowest  = 1
	latHighest = int64(time.Hour / time.Microsecond)
	latDigits  = 3

	arrivalSlot     = 100 * time.Millisecond
	maxArrivalSlots = int(30 * time.Minute / arrivalSlot)
	maxLatencySecs  = 3600
)

type streamKey = ledger.StreamKey

type partKey struct {
	topic     string
	partition int
}

// streamPart is the per-(stream, partition) order state: the highest seq
// seen for the stream in that partition, and where.
type streamPart struct {
	key       streamKey
	partition int
}

type orderState struct {
	maxSeq    uint64
	maxOffset int64
}

// srcPart is the source reader's state for one source partition.
type srcPart struct {
	next      int64             // next offset to read (last read + 1), -1 before any record
	firstRead int64             // first offset ever read, -1 before any record
	maxSeq    map[streamKey]uint64 // per stream (and loadgen epoch), highest seq seen in this partition
	firstSeq  map[streamKey]uint64 // per stream (and loadgen epoch), first seq seen in this partition
	pending   int64             // log start of a noted truncation not yet passed, -1 none
	noted     int64             // log start of the last truncation applied, -1 none
}

// Tracker classifies observations. It is not safe for concurrent use: the
// Validator serialises calls. Memory is O(streams × partitions + gaps +
// examples), never O(records).
type Tracker struct {
	runID    string
	examples int
	start    time.Time

	seen   map[streamKey]*intervals.Set // sequences that arrived at the target
	read   map[partKey]*intervals.Set   // target offsets read, per target partition
	order  map[streamPart]*orderState
	counts map[string]*Counts // per topic: Received and the arrival categories
	other  uint64

	source     map[streamKey]*intervals.Set // sequences present in the source log
	srcParts   map[partKey]*srcPart
	truncBound map[streamKey]uint64 // acked seqs <= bound missing everywhere are truncated

	ex map[string][]Example

	hist *hdrhistogram.Histogram

	// Arrival timeline: slot i counts records that arrived during
	// [start+(arrBase+i)*100ms, +100ms).
	arrBase int64
	arr     []uint64
	// Per-second latency medians.
	secHist *hdrhistogram.Histogram
	secCur  int64
	secPts  []LatencyPoint

	first, last time.Time
}

// NewTracker returns a tracker for runID keeping at most examples pieces of
// evidence per category (5 if examples <= 0). start anchors the timelines.
func NewTracker(runID string, examples int, start time.Time) *Tracker {
	if examples <= 0 {
		examples = 5
	}
	return &Tracker{
		runID:      runID,
		examples:   examples,
		start:      start,
		seen:       map[streamKey]*intervals.Set{},
		read:       map[partKey]*intervals.Set{},
		order:      map[streamPart]*orderState{},
		counts:     map[string]*Counts{},
		source:     map[streamKey]*intervals.Set{},
		srcParts:   map[partKey]*srcPart{},
		truncBound: map[streamKey]uint64{},
		ex:         map[string][]Example{},
		hist:       hdrhistogram.New(latLowest, latHighest, latDigits),
		secHist:    hdrhistogram.New(latLowest, latHighest, latDigits),
		secCur:     -1,
	}
}

func (t *Tracker) topicCounts(topic string) *Counts {
	c := t.counts[topic]
	if c == nil {
		c = &Counts{}
		t.counts[topic] = c
	}
	return c
}

func (t *Tracker) example(cat string, e Example) {
	if len(t.ex[cat]) < t.examples {
		t.ex[cat] = append(t.ex[cat], e)
	}
}

// Observe classifies one target record and returns what it was and, for
// intact records of this run, its latency (read time minus produce time;
// ok is false otherwise).
func (t *Tracker) Observe(o Observation) (out Outcome, lat time.Duration, ok bool) {
	rec, err := wire.Decode(o.Value)
	return t.ObserveDecoded(o, rec, err)
}

// ObserveDecoded is Observe with o.Value already decoded by wire.Decode
// (rec, err are its results), so callers can decode outside their lock.
func (t *Tracker) ObserveDecoded(o Observation, rec wire.Record, err error) (out Outcome, lat time.Duration, ok bool) {
	c := t.topicCounts(o.Topic)
	pk := partKey{o.Topic, o.Partition}
	offs := t.read[pk]
	if offs == nil {
		offs = &intervals.Set{}
		t.read[pk] = offs
	}
	// A re-read offset is the validator's own doing (a reader restarted
	// behind its position): count it apart and judge nothing else.
	if o.Offset < 0 || !offs.Add(uint64(o.Offset)) {
		c.Redelivery++
		t.example(CatRedelivery, Example{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, Detail: "offset read twice by the validator"})
		return OutcomeRedelivery, 0, false
	}

	if err != nil {
		var de *wire.DecodeError
		errors.As(err, &de)
		switch {
		case errors.Is(err, wire.ErrForeign):
			c.Foreign++
			t.example(CatForeign, Example{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, Detail: fmt.Sprintf("%v; value starts %q", err, prefix(o.Value, 24))})
			return OutcomeForeign, 0, false
		case errors.Is(err, wire.ErrPayloadMismatch):
			// The checksum holds, so the header is trustworthy.
			if de == nil || de.Partial.RunID != t.runID {
				t.other++
				return OutcomeOtherRun, 0, false
			}
			c.Corrupt++
			t.example(CatCorrupt, Example{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, Stream: de.Partial.Stream, Seq: de.Partial.Seq, Detail: err.Error()})
			// The record did arrive, with another payload: corrupt says so,
			// and it is not also reported lost.
			t.seenSet(streamKey{Topic: o.Topic, Stream: de.Partial.Stream, Epoch: de.Partial.Epoch}).Add(de.Partial.Seq)
			return OutcomeCorrupt, 0, false
		default: // ErrChecksum: damaged, its header is evidence only
			if !t.ownDamaged(de) {
				// Another run's damaged record is never this run's problem.
				t.other++
				return OutcomeOtherRun, 0, false
			}
			c.Corrupt++
			e := Example{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, Detail: err.Error()}
			if de.HeaderOK {
				e.Stream, e.Seq = de.Partial.Stream, de.Partial.Seq
				e.Detail += fmt.Sprintf(" (header, untrusted, claims stream %d seq %d)", de.Partial.Stream, de.Partial.Seq)
			}
			// A record failing its checksum never advances any stream's
			// state: its claimed sequence is judged by what arrives intact.
			t.example(CatCorrupt, e)
			return OutcomeCorrupt, 0, false
		}
	}
	if rec.RunID != t.runID {
		t.other++
		return OutcomeOtherRun, 0, false
	}

	lat = o.ReadAt.Sub(rec.ProducedAt)
	t.recordLatency(o.ReadAt, lat)
	c.Received++
	if t.first.IsZero() || o.ReadAt.Before(t.first) {
		t.first = o.ReadAt
	}
	if o.ReadAt.After(t.last) {
		t.last = o.ReadAt
	}

	sk := streamKey{Topic: o.Topic, Stream: rec.Stream, Epoch: rec.Epoch}
	if !t.seenSet(sk).Add(rec.Seq) {
		c.Duplicate++
		t.example(CatDuplicate, Example{Topic: o.Topic, Stream: rec.Stream, Seq: rec.Seq, Partition: o.Partition, Offset: o.Offset, Detail: "sequence already delivered at another target offset"})
		return OutcomeDuplicate, lat, true
	}

	// Order is only promised per key within one partition, and offsets only
	// compare within one partition.
	sp := streamPart{sk, o.Partition}
	st := t.order[sp]
	if st == nil {
		t.order[sp] = &orderState{maxSeq: rec.Seq, maxOffset: o.Offset}
		return OutcomeOK, lat, true
	}
	if rec.Seq < st.maxSeq && o.Offset > st.maxOffset {
		c.Reordered++
		t.example(CatReordered, Example{Topic: o.Topic, Stream: rec.Stream, Seq: rec.Seq, Partition: o.Partition, Offset: o.Offset,
			Detail: fmt.Sprintf("after seq %d at offset %d", st.maxSeq, st.maxOffset)})
		return OutcomeReordered, lat, true
	}
	if rec.Seq > st.maxSeq {
		st.maxSeq, st.maxOffset = rec.Seq, o.Offset
	}
	return OutcomeOK, lat, true
}

// ownDamaged reports whether a damaged record (checksum failed) is this
// run's: its run id field reads as this run's id, or, when the field itself
// is damaged (not a valid run id), it differs from this run's id in exactly
// one byte. Anything else is another run's damaged record (if it was ours,
// the sequence it carried is missing and judged lost).
func (t *Tracker) ownDamaged(de *wire.DecodeError) bool {
	if de == nil {
		return false
	}
	if de.Partial.RunID != "" {
		return de.Partial.RunID == t.runID
	}
	tok := de.RunToken
	if wire.ValidRunID(tok) || len(tok) != len(t.runID) {
		return false
	}
	diff := 0
	for i := 0; i < len(tok); i++ {
		if tok[i] != t.runID[i] {
			diff++
		}
	}
	return diff <= 1
}

func prefix(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

func (t *Tracker) seenSet(k streamKey) *intervals.Set {
	s := t.seen[k]
	if s == nil {
		s = &intervals.Set{}
		t.seen[k] = s
	}
	return s
}

func (t *Tracker) recordLatency(at time.Time, lat time.Duration) {
	us := lat.Microseconds()
	if us < latLowest {
		us = latLowest // clock skew or sub-µs: clamp, never drop
	}
	if us > latHighest {
		us = latHighest
	}
	_ = t.hist.RecordValue(us)

	el := at.Sub(t.start)
	if el < 0 {
		el = 0
	}
	slot := int64(el / arrivalSlot)
	if slot < t.arrBase {
		slot = t.arrBase
	}
	for slot-t.arrBase >= int64(len(t.arr)) {
		if len(t.arr) >= maxArrivalSlots {
			// Keep the newest 30 minutes: drop the oldest half at once
			// so this stays amortised O(1).
			drop := len(t.arr) / 2
			t.arr = append(t.arr[:0], t.arr[drop:]...)
			t.arrBase += int64(drop)
			continue
		}
		t.arr = append(t.arr, 0)
	}
	t.arr[slot-t.arrBase]++

	sec := int64(el / time.Second)
	if sec != t.secCur {
		t.flushSecond()
		t.secCur = sec
	}
	_ = t.secHist.RecordValue(us)
}

func (t *Tracker) flushSecond() {
	if t.secCur < 0 || t.secHist.TotalCount() == 0 {
		return
	}
	t.secPts = append(t.secPts, t.secPoint())
	if len(t.secPts) > maxLatencySecs {
		t.secPts = append(t.secPts[:0], t.secPts[len(t.secPts)-maxLatencySecs:]...)
	}
	t.secHist.Reset()
}

// secPoint summarises the current second's latencies.
func (t *Tracker) secPoint() LatencyPoint {
	h := t.secHist
	return LatencyPoint{Second: t.secCur, P50: usToSec(h.ValueAtQuantile(50)), P99: usToSec(h.ValueAtQuantile(99)),
		Max: usToSec(h.Max()), Count: uint64(h.TotalCount())}
}

func usToSec(us int64) float64 { return float64(us) / 1e6 }

// Arrivals returns records received per 100 ms slot (the newest 30 minutes).
func (t *Tracker) Arrivals() []Bucket {
	out := make([]Bucket, len(t.arr))
	for i, n := range t.arr {
		out[i] = Bucket{Start: float64(t.arrBase+int64(i)) * arrivalSlot.Seconds(), Count: n}
	}
	return out
}

// LatencyTimeline returns the per-second latency medians, the current
// (partial) second included.
func (t *Tracker) LatencyTimeline() []LatencyPoint {
	out := append([]LatencyPoint(nil), t.secPts...)
	if t.secCur >= 0 && t.secHist.TotalCount() > 0 {
		out = append(out, t.secPoint())
	}
	return out
}

// Latency returns the latency summary so far.
func (t *Tracker) Latency() Latency {
	if t.hist.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		P50:   usToSec(t.hist.ValueAtQuantile(50)),
		P95:   usToSec(t.hist.ValueAtQuantile(95)),
		P99:   usToSec(t.hist.ValueAtQuantile(99)),
		Max:   usToSec(t.hist.Max()),
		Count: uint64(t.hist.TotalCount()),
	}
}

func (t *Tracker) srcPart(topic string, partition int) *srcPart {
	pk := partKey{topic, partition}
	p := t.srcParts[pk]
	if p == nil {
		p = &srcPart{next: -1, firstRead: -1, pending: -1, noted: -1,
			maxSeq: map[streamKey]uint64{}, firstSeq: map[streamKey]uint64{}}
		t.srcParts[pk] = p
	}
	return p
}

// ObserveSource records a record read from the SOURCE log (topic is the
// source topic). Only this run's intact records count; anything else is
// ignored here (the target side judges records).
func (t *Tracker) ObserveSource(topic string, partition int, offset int64, value []byte) {
	p := t.srcPart(topic, partition)
	if p.pending >= 0 && offset >= p.pending {
		// The reader is past the purged range: snapshot before this
		// record, which survived the purge and must not raise the bound.
		t.snapshot(topic, p)
	}
	if p.firstRead < 0 {
		p.firstRead = offset
	}
	if offset+1 > p.next {
		p.next = offset + 1
	}
	rec, err := wire.Decode(value)
	if err == nil && rec.RunID == t.runID {
		sk := streamKey{Topic: topic, Stream: rec.Stream, Epoch: rec.Epoch}
		s := t.source[sk]
		if s == nil {
			s = &intervals.Set{}
			t.source[sk] = s
		}
		s.Add(rec.Seq)
		if m, ok := p.maxSeq[sk]; !ok || rec.Seq > m {
			p.maxSeq[sk] = rec.Seq
		}
		if _, ok := p.firstSeq[sk]; !ok {
			p.firstSeq[sk] = rec.Seq
			// The reader jumped over a purged range (its first record
			// here is at or past the log start): whatever this stream had
			// before its first surviving record in this partition is gone.
			if p.noted > 0 && p.firstRead >= p.noted && offset >= p.noted && rec.Seq > 0 {
				t.raiseBound(sk, rec.Seq-1)
			}
		}
	}
	if p.pending >= 0 && p.next >= p.pending {
		t.snapshot(topic, p)
	}
}

// SourceProgress tells the tracker the source reader's position in a
// partition advanced to next (e.g. an empty or purged partition), so that a
// pending truncation can be resolved without a record.
func (t *Tracker) SourceProgress(topic string, partition int, next int64) {
	p := t.srcPart(topic, partition)
	if next > p.next {
		p.next = next
	}
	if p.pending >= 0 && p.next >= p.pending {
		t.snapshot(topic, p)
	}
}

func (t *Tracker) snapshot(topic string, p *srcPart) {
	for k, m := range p.maxSeq {
		t.raiseBound(k, m) // k carries the epoch: the bound is per loadgen instance
	}
	p.noted = p.pending
	p.pending = -1
}

func (t *Tracker) raiseBound(k streamKey, b uint64) {
	if cur, ok := t.truncBound[k]; !ok || b > cur {
		t.truncBound[k] = b
	}
}

// NoteTruncation records that every record below logStart[partition] of the
// source topic was deleted (a purge or retention). Acked sequences missing at
// the target that the source held only below that point are reported
// truncated, not as mirror loss.
func (t *Tracker) NoteTruncation(topic string, logStart map[int]int64) {
	for part, ls := range logStart {
		if ls <= 0 {
			continue
		}
		p := t.srcPart(topic, part)
		if ls > p.pending {
			p.pending = ls
		}
		if p.next >= p.pending {
			t.snapshot(topic, p)
		}
	}
}

// Judgement is the classification of every acked sequence against what
// arrived.
type Judgement struct {
	Total    Counts
	PerTopic map[string]Counts
	Streams  int
	// Truncated: acked, missing at the target, purged from the source.
	Truncated uint64
	OtherRuns uint64
	// AllReachedLast: every ledger stream's last acked seq has arrived.
	AllReachedLast bool
}

// Judge classifies the ledger's acked sequences against the target. With
// final, the gaps become evidence (examples) and source_lost is judged if
// sourceChecked; without, it is the live view (no evidence, no source_lost).
func (t *Tracker) Judge(l *ledger.Ledger, final, sourceChecked bool) Judgement {
	j := Judgement{PerTopic: map[string]Counts{}, OtherRuns: t.other, AllReachedLast: true}
	for topic, c := range t.counts {
		j.PerTopic[topic] = *c
	}
	if l != nil {
		l.View(func(k ledger.StreamKey, s *ledger.Stream) {
			j.Streams++
			pc := j.PerTopic[k.Topic]
			acked := s.Acked.Len()
			pc.Acked += acked
			var failedOnly uint64
			s.Failed.Minus(&s.Acked, func(r intervals.Range) bool { failedOnly += r.Len(); return true })
			pc.Produced += acked + failedOnly

			seen := t.seen[k]
			if seen == nil {
				seen = &intervals.Set{}
			}
			maxSeen, anySeen := seen.Max()
			if last, ok := s.Acked.Max(); ok && (!anySeen || maxSeen < last) {
				j.AllReachedLast = false
			}
			bound, hasBound := t.truncBound[k]
			src := t.source[k]
			if src == nil {
				src = &intervals.Set{}
			}
			s.Acked.Minus(seen, func(r intervals.Range) bool {
				// Truncated first: the source no longer holds anything at or
				// below the bound (whether or not its reader saw it before
				// the purge), so a gap there is not the mirror's fault.
				if hasBound && r.Lo <= bound {
					tr := intervals.Range{Lo: r.Lo, Hi: min(r.Hi, bound)}
					j.Truncated += tr.Len()
					if final {
						t.example(CatTruncated, rangeExample(k, tr, "purged from the source before the mirror copied it"))
					}
					if r.Hi <= bound {
						return true
					}
					r.Lo = bound + 1
				}
				if final && sourceChecked {
					t.split(r, src, func(part intervals.Range, inSource bool) {
						if inSource {
							t.missing(&j, &pc, k, part, anySeen, maxSeen, final)
							return
						}
						pc.SourceLost += part.Len()
						t.example(CatSourceLost, rangeExample(k, part, "acked by the source but absent from the source log"))
					})
					return true
				}
				t.missing(&j, &pc, k, r, anySeen, maxSeen, final)
				return true
			})
			j.PerTopic[k.Topic] = pc
		})
	}
	topics := make([]string, 0, len(j.PerTopic))
	for tp := range j.PerTopic {
		topics = append(topics, tp)
	}
	sort.Strings(topics)
	for _, tp := range topics {
		j.Total.Add(j.PerTopic[tp])
	}
	return j
}

// missing classifies a range absent at the target (and, if checked, present
// in the source): below the highest seen it is lost, above it unseen.
func (t *Tracker) missing(j *Judgement, pc *Counts, k streamKey, r intervals.Range, anySeen bool, maxSeen uint64, final bool) {
	if anySeen && r.Lo < maxSeen {
		lo := intervals.Range{Lo: r.Lo, Hi: min(r.Hi, maxSeen-1)}
		pc.Lost += lo.Len()
		if final {
			t.example(CatLost, rangeExample(k, lo, fmt.Sprintf("missing at the target below seq %d, which arrived", maxSeen)))
		}
		if r.Hi < maxSeen {
			return
		}
		r.Lo = maxSeen + 1 // maxSeen itself arrived
	}
	if r.Lo > r.Hi {
		return
	}
	pc.Unseen += r.Len()
	if final {
		t.example(CatUnseen, rangeExample(k, r, "not at the target by the end of the drain (above the highest seq that arrived)"))
	}
}

// split calls fn for the parts of r inside and outside set s, in order.
func (t *Tracker) split(r intervals.Range, s *intervals.Set, fn func(intervals.Range, bool)) {
	var rs intervals.Set
	rs.AddRange(r.Lo, r.Hi)
	var outside intervals.Set
	rs.Minus(s, func(o intervals.Range) bool { outside.AddRange(o.Lo, o.Hi); return true })
	// Walk r, alternating between inside and outside parts.
	lo := r.Lo
	for _, o := range outside.Ranges() {
		if o.Lo > lo {
			fn(intervals.Range{Lo: lo, Hi: o.Lo - 1}, true)
		}
		fn(o, false)
		if o.Hi == r.Hi {
			return
		}
		lo = o.Hi + 1
	}
	if lo <= r.Hi {
		fn(intervals.Range{Lo: lo, Hi: r.Hi}, true)
	}
}

func rangeExample(k streamKey, r intervals.Range, detail string) Example {
	return Example{Topic: k.Topic, Stream: k.Stream, Seq: r.Lo, SeqEnd: r.Hi, Partition: -1, Offset: -1, Detail: detail}
}

// Examples returns a copy of the evidence gathered so far.
func (t *Tracker) Examples() map[string][]Example {
	out := make(map[string][]Example, len(t.ex))
	for k, v := range t.ex {
		out[k] = append([]Example(nil), v...)
	}
	return out
}

// Arrival returns the read times of the first and last intact arrivals.
func (t *Tracker) Arrival() (first, last time.Time) { return t.first, t.last }

// SourceNext returns the source reader's next offset per partition of topic.
func (t *Tracker) SourceNext(topic string, partition int) int64 {
	p := t.srcParts[partKey{topic, partition}]
	if p == nil {
		return -1
	}
	return p.next
}
