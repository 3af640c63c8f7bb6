// Package validator is kmt's checker: it reads what the mirror delivered to
// the target cluster (and what the source cluster really holds), classifies
// every record against the loadgen's ledger and produces the verdict's
// numbers and evidence.
//
// The rules live in Tracker, which is pure and in memory (no Kafka), so each
// rule is unit-tested; Validator feeds it from franz-go readers.
//
// The rules, in short (each has a table-driven case in tracker_test.go):
//
//   - Identity. A record is this run's when its run id says so. An intact
//     record (checksum over Key(stream) and value holds) under another key
//     than Key(stream), in a target topic that mirrors another source topic
//     than the one it names, or whose "kmt" header (when present) differs
//     from its checksum, is identity_mismatch (Example.What: key, topic,
//     header) and is not a delivery.
//   - Damage. A record failing its checksum (damaged framing included) is
//     corrupt when its run id reads as this run's, another run's otherwise;
//     it never advances any stream's state (its header is untrusted).
//   - Delivery. The first intact arrival of (topic, stream, epoch, seq) is a
//     delivery; another one at another target offset is a duplicate; the
//     same target offset read again is kmt's own redelivery.
//   - Order is judged per stream against the source's own order: a record
//     that arrives in a target partition after a higher sequence of its
//     stream is reordered only if the source held both in one partition and
//     the lower one first. Disorder the source created (a stream moved to
//     another partition when partitions were added, or written out of order)
//     is never blamed on the mirror.
//   - Split: a stream the source kept in one partition arriving over several
//     target partitions; the records outside the stream's main target
//     partition are counted.
//   - Truncation: after a purge to log start L of a source partition, the
//     records of a stream below the first one it has at or above L (found by
//     the source reader, or by a probe when the reader was already past L)
//     and above the highest one the target got from that part are truncated;
//     anything else missing is lost/unseen/source_lost.
//   - Aborted reads (read_uncommitted runs): records the read_uncommitted
//     reader saw at offsets a read_committed reader of the same partition
//     passed without returning are aborted_read.
package validator

import (
	"errors"
	"fmt"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/intervals"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// Category names, as used in Examples keys, metric labels and report.json.
const (
	CatLost        = "lost"
	CatUnseen      = "unseen"
	CatDuplicate   = "duplicate"
	CatRedelivery  = "redelivery"
	CatReordered   = "reordered"
	CatCorrupt     = "corrupt"
	CatForeign     = "foreign"
	CatSourceLost  = "source_lost"
	CatTruncated   = "truncated"
	CatAbortedRead = "aborted_read"
	CatIdentity    = "identity_mismatch"
	CatSplit       = "split"
	// CatAbortedCopied: records of aborted source transactions a
	// read_committed reader of the target saw (modes.go).
	CatAbortedCopied = "aborted_copied"
)

// What differs in an identity_mismatch (Example.What).
const (
	WhatKey    = "key"
	WhatTopic  = "topic"
	WhatHeader = "header"
)

// Counts is the per-category tally: report.json's counts, so the verdict
// file and the validator cannot drift apart. A sequence acked by the source
// and missing at the target is in exactly one of Lost, Unseen, SourceLost (or
// Result.Truncated).
type Counts = report.Counts

// Example is one piece of evidence. For range categories (lost, unseen,
// source_lost, truncated) Seq..SeqEnd is the missing range; Partition and
// Offset are the target position of the record that arrived right after the
// gap when one did, -1 otherwise.
type Example = report.Example

// Latency summarises read time minus produce time, in seconds.
type Latency = report.Latency

// Observation is one record read from the target cluster.
type Observation struct {
	Topic     string // the SOURCE topic name the target topic mirrors
	Partition int    // target partition
	Offset    int64  // target offset
	Key       []byte
	Value     []byte
	// Header is the value of the record's wire.HeaderKey header; HasHeader
	// says whether it had one (a mirror that drops headers is not judged).
	Header    []byte
	HasHeader bool
	ReadAt    time.Time
	// What the load modes judge (modes.go): the wire.TxnHeaderKey value,
	// the other headers in order (not kmt's own), the record's timestamp
	// and whether it is LogAppendTime, its batch's codec, and whether it is
	// a tombstone (null value) of the fidelity load.
	Txn           []byte
	Extra         []wire.Header
	Timestamp     time.Time
	LogAppendTime bool
	Codec         uint8
	Tombstone     bool
}

// Outcome says what the tracker made of one observation.
type Outcome int

// Outcomes of Observe.
const (
	OutcomeOK         Outcome = iota // first intact arrival
	OutcomeDuplicate                 // intact, (stream, seq) already at another offset
	OutcomeRedelivery                // this (partition, offset) was already read
	OutcomeReordered                 // first arrival, behind a higher seq the source had after it
	OutcomeCorrupt
	OutcomeForeign
	OutcomeOtherRun
	OutcomeIdentity // intact value, wrong key/topic/header
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
	case OutcomeIdentity:
		return CatIdentity
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

type streamKey = ledger.StreamKey

type partKey struct {
	topic     string
	partition int
}

// streamState is everything known about one stream, as interval sets: it
// grows with gaps and partitions, never with records.
type streamState struct {
	seen intervals.Set // first intact deliveries at the target
	// bad: sequences that arrived only with another payload (corrupt, the
	// checksum holding): they are reported corrupt, not also lost, and a
	// later intact copy is their first intact delivery, not a duplicate.
	bad    intervals.Set
	tparts map[int]*intervals.Set // deliveries per target partition
	src    map[int]*intervals.Set // sequences read per source partition
	srcInv map[int]*intervals.Set // read in a source partition after a higher one of the stream
	// first: per source partition, per purge (log start), the stream's
	// record at the lowest offset at or above that log start.
	first map[int]map[int64]firstAfter
	// top: where the highest delivered sequence arrived (evidence for gaps
	// below it).
	topPart int
	topOff  int64
	// lastTP is tparts[lastTPart], the target partition the stream's last
	// delivery arrived in (its deliveries come in runs per partition).
	lastTP    *intervals.Set
	lastTPart int
}

func newStreamState() *streamState {
	return &streamState{tparts: map[int]*intervals.Set{}, src: map[int]*intervals.Set{}, srcInv: map[int]*intervals.Set{}}
}

func setOf(m map[int]*intervals.Set, k int) *intervals.Set {
	s := m[k]
	if s == nil {
		s = &intervals.Set{}
		m[k] = s
	}
	return s
}

// srcPartOf returns the source partition that held seq (ok false when the
// source reader never read it).
func (st *streamState) srcPartOf(seq uint64) (int, bool) {
	for p, s := range st.src {
		if s.Contains(seq) {
			return p, true
		}
	}
	return 0, false
}

// orderCand is a record that arrived in a target partition after a higher
// sequence of its stream (next: the smallest such sequence); whether that is
// the mirror's reordering depends on the source's order, which may not be
// known yet.
type orderCand struct {
	k         streamKey
	seq, next uint64
	partition int
	offset    int64
	produced  time.Time
}

// gapJump is where a target partition's stream jumped forward over missing
// sequences (from < seq): evidence for lost examples.
type gapJump struct {
	k         streamKey
	from, to  uint64 // to arrived right after from in this partition
	partition int
	offset    int64
}

// maxPending bounds the evidence buffers (order candidates are counts, not
// evidence, and are not bounded; see orderCand).
const maxJumps = 10000

// Tracker classifies observations. It is not safe for concurrent use: the
// Validator serialises calls. Memory is O(streams × partitions + gaps +
// anomalies + examples), never O(records).
type Tracker struct {
	runID    string
	examples int
	start    time.Time

	streams map[streamKey]*streamState
	read    map[partKey]*intervals.Set // target offsets read (the judged reader)
	counts  map[string]*Counts         // per topic: Received and the arrival categories
	other   uint64

	orderPending []orderCand
	// sourceOrder: false when no source reader runs: order is then judged
	// against sequence order (the loadgen writes each stream in order).
	sourceOrder bool
	jumps       []gapJump

	srcParts map[partKey]*srcPart
	unc      uncommitted

	ex map[string][]Example

	modes modeState // transactions and fidelity (modes.go)
	// compacted: source topics whose cleaner removes superseded records
	// (SetCompacted; judge.go excuses what it removed).
	compacted map[string]bool
	// finalSrc: per stream, what the source log of a compacted topic held
	// after the drain (SetSourceFinal); finalScanned: the topics scanned.
	finalSrc     map[streamKey]*intervals.Set
	finalScanned map[string]bool

	lat latencies
	dec wire.Decoder // decodes source and uncommitted records (reuses strings)

	lastPart struct { // see ObserveDecoded
		pk     partKey
		offs   *intervals.Set
		counts *Counts
	}
	// recent caches streams entries by stream id (direct-mapped): a
	// partition's records come from a few streams at a time, and a hit
	// spares hashing the key's topic on every record. Entries of streams
	// are never replaced, so a cached pointer stays valid.
	recent [64]struct {
		k  streamKey
		st *streamState
	}

	first, last time.Time
}

// NewTracker returns a tracker for runID keeping at most examples pieces of
// evidence per category (5 if examples <= 0). start anchors the timelines.
func NewTracker(runID string, examples int, start time.Time) *Tracker {
	if examples <= 0 {
		examples = 5
	}
	return &Tracker{
		runID:       runID,
		examples:    examples,
		start:       start,
		streams:     map[streamKey]*streamState{},
		read:        map[partKey]*intervals.Set{},
		counts:      map[string]*Counts{},
		srcParts:    map[partKey]*srcPart{},
		unc:         newUncommitted(),
		ex:          map[string][]Example{},
		lat:         newLatencies(),
		sourceOrder: true,
	}
}

// SetCompacted names the source topics with cleanup.policy compact.
func (t *Tracker) SetCompacted(topics []string) {
	t.compacted = map[string]bool{}
	for _, tp := range topics {
		t.compacted[tp] = true
	}
}

// JudgeOrderBySequence tells the tracker no source reader runs: order is
// judged against sequence order instead of the source's.
func (t *Tracker) JudgeOrderBySequence() { t.sourceOrder = false }

func (t *Tracker) stream(k streamKey) *streamState {
	e := &t.recent[k.Stream%uint32(len(t.recent))]
	if e.st != nil && e.k == k {
		return e.st
	}
	st := t.streams[k]
	if st == nil {
		st = newStreamState()
		t.streams[k] = st
	}
	e.k, e.st = k, st
	return st
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

func (t *Tracker) full(cat string) bool { return len(t.ex[cat]) >= t.examples }

func ptr[T any](v T) *T { return &v }

// Observe classifies one target record and returns what it was and, for
// first intact arrivals of this run, its latency (read time minus produce
// time; ok is false otherwise).
func (t *Tracker) Observe(o Observation) (out Outcome, lat time.Duration, ok bool) {
	rec, err := DecodeObservation(&t.dec, &o)
	return t.ObserveDecoded(&o, &rec, err)
}

// ObserveDecoded is Observe with o.Value already decoded by wire.Decode
// (rec, err are its results), so callers can decode outside their lock. It
// reads *o and *rec and keeps neither: they are pointers only so that the
// hot path does not copy them (an Observation and a Record are about 280
// bytes) into every rule it calls.
func (t *Tracker) ObserveDecoded(o *Observation, rec *wire.Record, err error) (out Outcome, lat time.Duration, ok bool) {
	// Records come partition by partition: the last partition's read set
	// and counts spare two map lookups per record (entries are never
	// replaced, so the pointers stay valid).
	pk, lp := partKey{o.Topic, o.Partition}, &t.lastPart
	if lp.offs == nil || lp.pk != pk {
		lp.pk, lp.counts, lp.offs = pk, t.topicCounts(o.Topic), t.read[pk]
		if lp.offs == nil {
			lp.offs = &intervals.Set{}
			t.read[pk] = lp.offs
		}
	}
	c, offs := lp.counts, lp.offs
	// A re-read offset is the validator's own doing (a reader restarted
	// behind its position): count it apart and judge nothing else.
	if o.Offset < 0 || !offs.Add(uint64(o.Offset)) {
		c.Redelivery++
		if !t.full(CatRedelivery) { // evidence only while there is room: no allocation per re-read
			t.example(CatRedelivery, Example{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, Detail: "offset read twice by the validator"})
		}
		return OutcomeRedelivery, 0, false
	}
	if err != nil {
		return t.bad(o, c, err), 0, false
	}
	if rec.RunID != t.runID {
		t.other++
		return OutcomeOtherRun, 0, false
	}
	sk := streamKey{Topic: o.Topic, Stream: rec.Stream, Epoch: rec.Epoch}
	if what, detail := identityDiff(o, rec); what != "" {
		c.IdentityMismatch++
		if !t.full(CatIdentity) {
			t.example(CatIdentity, Example{Topic: o.Topic, Stream: rec.Stream, Seq: rec.Seq, Partition: o.Partition, Offset: o.Offset,
				What: what, Detail: detail, ProducedAt: ptr(rec.ProducedAt)})
		}
		return OutcomeIdentity, 0, false
	}

	lat = latencyOf(o.ReadAt, rec.ProducedAt)
	c.Received++
	st := t.stream(sk)
	t.lastValue(o, rec) // modes.go: the compacted map, duplicates included
	if !st.seen.Add(rec.Seq) {
		c.Duplicate++
		t.lat.redelivered(lat)
		if !t.full(CatDuplicate) { // a restart re-copies many: no allocation per duplicate
			t.example(CatDuplicate, Example{Topic: o.Topic, Stream: rec.Stream, Seq: rec.Seq, Partition: o.Partition, Offset: o.Offset,
				ProducedAt: ptr(rec.ProducedAt), Detail: "sequence already delivered at another target offset"})
		}
		return OutcomeDuplicate, lat, false
	}
	if top, _ := st.seen.Max(); top == rec.Seq {
		st.topPart, st.topOff = o.Partition, o.Offset
	}
	t.observeModes(o, sk, rec) // modes.go
	t.lat.record(t.start, o.ReadAt, lat)
	// The records of a poll share one read time: once t.last is it, and
	// t.first (the least read time, so not after t.last) is set, neither
	// can change.
	if o.ReadAt != t.last || t.first.IsZero() {
		if t.first.IsZero() || o.ReadAt.Before(t.first) {
			t.first = o.ReadAt
		}
		if o.ReadAt.After(t.last) {
			t.last = o.ReadAt
		}
	}
	return t.order(sk, st, o, rec), lat, true
}

// order notes rec's place in its target partition: a forward jump is kept as
// evidence for gaps, an arrival behind a higher sequence is an order
// candidate judged against the source's order.
func (t *Tracker) order(sk streamKey, st *streamState, o *Observation, rec *wire.Record) Outcome {
	tp := st.lastTP
	if tp == nil || st.lastTPart != o.Partition {
		tp = setOf(st.tparts, o.Partition)
		st.lastTP, st.lastTPart = tp, o.Partition
	}
	top, any := tp.Max()
	if !any || rec.Seq > top {
		if any && rec.Seq > top+1 && len(t.jumps) < maxJumps {
			t.jumps = append(t.jumps, gapJump{k: sk, from: top, to: rec.Seq, partition: o.Partition, offset: o.Offset})
		}
		tp.Add(rec.Seq)
		return OutcomeOK
	}
	next, _ := tp.Next(rec.Seq)
	tp.Add(rec.Seq)
	cand := orderCand{k: sk, seq: rec.Seq, next: next, partition: o.Partition, offset: o.Offset, produced: rec.ProducedAt}
	switch t.judgeOrder(st, cand, false) {
	case orderBroken:
		return OutcomeReordered
	case orderUnknown:
		t.orderPending = append(t.orderPending, cand)
	}
	return OutcomeOK
}

type orderVerdict int

const (
	orderKept orderVerdict = iota
	orderBroken
	orderUnknown
)

// judgeOrder decides a candidate: the mirror broke order iff the source held
// seq and next in one partition and seq was not itself read there after a
// higher sequence (then seq preceded next in the source). Without a source
// reader, sequence order stands in for the source's. With final, what is
// still unknown is not blamed.
func (t *Tracker) judgeOrder(st *streamState, c orderCand, final bool) orderVerdict {
	verdict := orderBroken
	if t.sourceOrder {
		p, ok1 := st.srcPartOf(c.seq)
		q, ok2 := st.srcPartOf(c.next)
		switch {
		case !ok1 || !ok2:
			if final {
				return orderKept
			}
			return orderUnknown
		case p != q:
			return orderKept // the source itself had them in different partitions
		}
		if inv := st.srcInv[p]; inv != nil && inv.Contains(c.seq) {
			return orderKept // the source itself had seq after a higher one
		}
	}
	t.topicCounts(c.k.Topic).Reordered++
	e := Example{Topic: c.k.Topic, Stream: c.k.Stream, Seq: c.seq, Partition: c.partition, Offset: c.offset, ProducedAt: ptr(c.produced),
		Detail: fmt.Sprintf("arrived after seq %d in the same target partition; the source had it before", c.next)}
	if p, ok := st.srcPartOf(c.seq); ok {
		e.SourcePartition = ptr(p)
	}
	t.example(CatReordered, e)
	return verdict
}

// resolveOrder judges the pending candidates whose source order is now known
// (all of them when final).
func (t *Tracker) resolveOrder(final bool) {
	keep := t.orderPending[:0]
	for _, c := range t.orderPending {
		if t.judgeOrder(t.streams[c.k], c, final) == orderUnknown {
			keep = append(keep, c)
		}
	}
	t.orderPending = keep
}

// identityDiff compares an intact record's identity with where it arrived.
func identityDiff(o *Observation, rec *wire.Record) (what, detail string) {
	switch {
	case !wire.KeyMatches(o.Key, rec.Stream):
		return WhatKey, fmt.Sprintf("key %q, the record's stream %d needs %q", prefix(o.Key, 32), rec.Stream, wire.Key(rec.Stream))
	case rec.Topic != "" && rec.Topic != o.Topic:
		return WhatTopic, fmt.Sprintf("produced to source topic %q, arrived in the target topic that mirrors %q", rec.Topic, o.Topic)
	case o.HasHeader && !wire.HeaderMatches(o.Header, o.Value):
		return WhatHeader, fmt.Sprintf("%s header %q does not match the record", wire.HeaderKey, prefix(o.Header, 32))
	}
	return "", ""
}

// bad classifies a record that did not decode.
func (t *Tracker) bad(o *Observation, c *Counts, err error) Outcome {
	var de *wire.DecodeError
	errors.As(err, &de)
	switch {
	case errors.Is(err, wire.ErrForeign):
		c.Foreign++
		t.example(CatForeign, Example{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, Detail: fmt.Sprintf("%v; value starts %q", err, prefix(o.Value, 24))})
		return OutcomeForeign
	case errors.Is(err, wire.ErrPayloadMismatch):
		// The checksum holds, so the header is trustworthy.
		if de == nil || de.Partial.RunID != t.runID {
			t.other++
			return OutcomeOtherRun
		}
		c.Corrupt++
		t.example(CatCorrupt, Example{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, Stream: de.Partial.Stream, Seq: de.Partial.Seq,
			ProducedAt: ptr(de.Partial.ProducedAt), Detail: err.Error()})
		// It did arrive, with another payload: corrupt says so, and it is
		// not also reported lost.
		t.stream(streamKey{Topic: o.Topic, Stream: de.Partial.Stream, Epoch: de.Partial.Epoch}).bad.Add(de.Partial.Seq)
		return OutcomeCorrupt
	}
	// ErrChecksum: damaged, its header is evidence only.
	if !t.ownDamaged(de) {
		// Another run's damaged record is never this run's problem.
		t.other++
		return OutcomeOtherRun
	}
	c.Corrupt++
	e := Example{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, Detail: err.Error()}
	if de.HeaderOK {
		e.Stream, e.Seq = de.Partial.Stream, de.Partial.Seq
		e.Detail += fmt.Sprintf(" (header, untrusted, claims stream %d seq %d)", de.Partial.Stream, de.Partial.Seq)
	}
	// A record failing its checksum never advances any stream's state: its
	// claimed sequence is judged by what arrives intact.
	t.example(CatCorrupt, e)
	return OutcomeCorrupt
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
