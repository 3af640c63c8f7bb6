package validator

// The verdicts of the load modes (scenarios.Transactions, scenarios.Fidelity):
//
//   - Aborted copied: a first arrival whose sequence the ledger has as
//     aborted (judge.go counts it per stream: arrivals ∩ aborted).
//   - Torn: a committed transaction (its records carry wire.TxnHeaderKey:
//     which transaction, of how many records) of which some but not all
//     records arrived.
//   - Headers: the headers besides kmt's own must be exactly
//     wire.FidelityHeaders(stream, seq), in order, null values null.
//   - Timestamps: the record's timestamp must be its CreateTime, the
//     produce time in its value (ms), not LogAppendTime.
//   - Tombstones: null-value records (their identity in wire.TombHeaderKey)
//     are sequences of the ledger; the acked ones that never arrived count.
//   - Compaction: the last value of every key (offset order; a tombstone
//     deletes it) on the target equals the source's.
//   - Large records: counted when they arrive (their checksum covers every
//     byte); a stream whose first missing sequence is a large record names
//     its partition as stuck.
//   - Compression: the codecs of the target's batches are counted.
//
// Memory: O(transactions) for torn (a committed transaction leaves the
// map once complete) and O(keys) for compaction; nothing per record.

import (
	"fmt"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/intervals"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Evidence categories of the load modes (Examples keys).
const (
	CatTorn             = "torn"
	CatHeadersChanged   = "headers_changed"
	CatTimestampChanged = "timestamp_changed"
	CatCompaction       = "compaction"
)

type modeState struct {
	txn *scenarios.Transactions
	fid *scenarios.Fidelity

	txns     map[string]*txnSeen // by transaction id, until complete
	complete uint64              // transactions all of whose records arrived
	badTxn   uint64              // records whose transaction header did not parse

	headers, timestamps report.Check
	codecs              map[uint8]uint64
	tombs, large        uint64 // first arrivals

	src, dst map[compKey]compVal // last value per key (Compacted)
}

type txnSeen struct {
	size, got int
	sk        streamKey // one of its records, to ask the ledger whether it committed
	seq       uint64
}

type compKey struct{ topic, key string }

type compVal struct {
	offset int64
	epoch  uint32
	seq    uint64
	tomb   bool
}

// SetLoadModes tells the tracker which load modes the run used (nil: not used).
func (t *Tracker) SetLoadModes(txn *scenarios.Transactions, fid *scenarios.Fidelity) {
	t.modes = modeState{txn: txn, fid: fid, txns: map[string]*txnSeen{}, codecs: map[uint8]uint64{},
		src: map[compKey]compVal{}, dst: map[compKey]compVal{}}
}

// withLoadModes sets the load modes of s (nil: none) on the config.
func (c Config) withLoadModes(s *scenarios.Scenario) Config {
	if s != nil {
		c.Transactions, c.Fidelity = s.Spec.Load.Transactions, s.Spec.Load.Fidelity
		c.CompactedTopics = s.CompactedTopics()
	}
	return c
}

// DecodeObservation decodes o's value; a null value with a
// wire.TombHeaderKey header is a tombstone of the fidelity load, whose
// identity that header gives (o.Tombstone is set and the header taken out of
// o.Extra).
func DecodeObservation(dec *wire.Decoder, o *Observation) (wire.Record, error) {
	var r wire.Record
	err := decodeObservationInto(dec, o, &r)
	return r, err
}

// decodeObservationInto is DecodeObservation into *rec (overwritten).
func decodeObservationInto(dec *wire.Decoder, o *Observation, rec *wire.Record) error {
	if o.Value == nil {
		for i, h := range o.Extra {
			if h.Key != wire.TombHeaderKey {
				continue
			}
			run, epoch, seq, err := wire.ParseTombHeader(h.Value)
			stream, ok := wire.StreamOfKey(o.Key)
			if err != nil || !ok {
				break
			}
			o.Tombstone = true
			o.Extra = append(o.Extra[:i:i], o.Extra[i+1:]...)
			*rec = wire.Record{RunID: run, Epoch: epoch, Stream: stream, Seq: seq, ProducedAt: o.Timestamp}
			return nil
		}
	}
	return dec.DecodeInto(o.Value, rec)
}

// observeModes judges a first intact arrival for the load modes.
func (t *Tracker) observeModes(o *Observation, sk streamKey, rec *wire.Record) {
	m := &t.modes
	if m.txn != nil && o.Txn != nil {
		t.observeTxn(o, sk, rec)
	}
	f := m.fid
	if f == nil {
		return
	}
	if f.Headers {
		m.headers.Checked++
		if !wire.FidelityHeadersMatch(o.Extra, rec.Stream, rec.Seq) {
			m.headers.Changed++
			t.example(CatHeadersChanged, Example{Topic: o.Topic, Stream: rec.Stream, Seq: rec.Seq, Partition: o.Partition, Offset: o.Offset,
				Detail: fmt.Sprintf("headers %s, want %s", headerList(o.Extra), headerList(wire.FidelityHeaders(rec.Stream, rec.Seq)))})
		}
	}
	if f.Timestamps && !o.Tombstone {
		m.timestamps.Checked++
		if o.LogAppendTime || o.Timestamp.UnixMilli() != rec.ProducedAt.UnixMilli() {
			m.timestamps.Changed++
			t.example(CatTimestampChanged, Example{Topic: o.Topic, Stream: rec.Stream, Seq: rec.Seq, Partition: o.Partition, Offset: o.Offset,
				ProducedAt: ptr(rec.ProducedAt), Detail: fmt.Sprintf("timestamp %s (log append time %v), produced (CreateTime) %s",
					o.Timestamp.UTC().Format(time.RFC3339Nano), o.LogAppendTime, rec.ProducedAt.UTC().Truncate(time.Millisecond).Format(time.RFC3339Nano))})
		}
	}
	if o.Tombstone {
		m.tombs++
	}
	if f.IsLarge(rec.Seq) {
		m.large++
	}
	if f.Compression != "" {
		m.codecs[o.Codec]++
	}
}

func (t *Tracker) observeTxn(o *Observation, sk streamKey, rec *wire.Record) {
	m := &t.modes
	id, size, err := wire.ParseTxnHeader(o.Txn)
	if err != nil {
		m.badTxn++
		return
	}
	ts := m.txns[id]
	if ts == nil {
		ts = &txnSeen{size: size, sk: sk, seq: rec.Seq}
		m.txns[id] = ts
	}
	if ts.got++; ts.got == ts.size {
		delete(m.txns, id)
		m.complete++
	}
}

// lastValue keeps the last value of every key of the target (Compacted).
func (t *Tracker) lastValue(o *Observation, rec *wire.Record) {
	if f := t.modes.fid; f != nil && f.Compacted {
		setLast(t.modes.dst, compKey{o.Topic, string(o.Key)}, compVal{o.Offset, rec.Epoch, rec.Seq, o.Tombstone})
	}
}

func setLast(m map[compKey]compVal, k compKey, v compVal) {
	if cur, ok := m[k]; !ok || v.offset >= cur.offset {
		m[k] = v
	}
}

// ObserveSourceRecord is ObserveSource for a record with its key and
// headers: a tombstone of the fidelity load is a sequence of the source
// too, and with Compacted the last value of every key is kept (the source
// reader reads each partition in offset order).
func (t *Tracker) ObserveSourceRecord(topic string, partition int, offset int64, key, value []byte, headers []kgo.RecordHeader) {
	o := Observation{Key: key, Value: value}
	if value == nil {
		for _, h := range headers {
			if h.Key == wire.TombHeaderKey {
				o.Extra = append(o.Extra, wire.Header{Key: h.Key, Value: h.Value})
			}
		}
	}
	rec, err := DecodeObservation(&t.dec, &o)
	t.observeSourceDecoded(topic, partition, offset, rec, err)
	if f := t.modes.fid; f != nil && f.Compacted && err == nil && rec.RunID == t.runID {
		setLast(t.modes.src, compKey{topic, string(key)}, compVal{offset, rec.Epoch, rec.Seq, o.Tombstone})
	}
}

// TransactionsVerdict is report.json's transactions section (nil without
// the transactional load). Final: the transactions still incomplete are
// judged torn when the ledger has them committed.
func (t *Tracker) TransactionsVerdict(l *ledger.Ledger, total Counts) *report.Transactions {
	m := &t.modes
	if m.txn == nil {
		return nil
	}
	v := &report.Transactions{Size: m.txn.Size, AbortFraction: m.txn.Abort, ExactlyOnce: m.txn.ExactlyOnce,
		AbortedCopied: total.AbortedCopied, Duplicates: total.Duplicate, Seen: m.complete}
	if l != nil {
		v.AbortedRecords = l.TotalAborted()
	}
	ids := make([]string, 0, len(m.txns))
	for id := range m.txns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ts := m.txns[id]
		if l == nil || !l.Acked(ts.sk, ts.seq) {
			continue // aborted (counted as aborted_copied) or failed: not a committed transaction
		}
		v.Seen++
		v.Torn++
		v.TornMissing += uint64(ts.size - ts.got)
		t.example(CatTorn, Example{Topic: ts.sk.Topic, Stream: ts.sk.Stream, Seq: ts.seq, Partition: -1, Offset: -1,
			Detail: fmt.Sprintf("transaction %s: %d of its %d committed records arrived", id, ts.got, ts.size)})
	}
	return v
}

// FidelityVerdict is report.json's fidelity section (nil without the
// fidelity load).
func (t *Tracker) FidelityVerdict(l *ledger.Ledger) *report.Fidelity {
	m := &t.modes
	f := m.fid
	if f == nil {
		return nil
	}
	out := &report.Fidelity{}
	if f.Headers {
		out.Headers = ptr(m.headers)
	}
	if f.Timestamps {
		out.Timestamps = ptr(m.timestamps)
	}
	if f.Compression != "" {
		out.Compression = &report.Compression{Codec: f.Compression, TargetCodecs: map[string]uint64{}}
		for c, n := range m.codecs {
			out.Compression.TargetCodecs[codecName(c)] += n
		}
	}
	if f.TombstoneEvery > 0 {
		out.Tombstones = &report.Tombstones{Delivered: m.tombs}
	}
	if f.LargeEvery > 0 && f.LargeBytes > 0 {
		out.Large = &report.Large{Bytes: f.LargeBytes, Delivered: m.large}
	}
	if l != nil {
		l.View(func(k ledger.StreamKey, s *ledger.Stream) { t.fidelityStream(out, k, s) })
	}
	if f.Compacted {
		out.Compaction = t.compaction()
	}
	return out
}

// fidelityStream counts one stream's acked tombstones and large records,
// the tombstones missing, and whether the stream stopped at a large record.
func (t *Tracker) fidelityStream(out *report.Fidelity, k ledger.StreamKey, s *ledger.Stream) {
	f := t.modes.fid
	st := t.streams[k]
	if st == nil {
		st = newStreamState()
	}
	every := func(n int) func(r intervals.Range) uint64 {
		return func(r intervals.Range) uint64 { return patternCount(r, uint64(n)) }
	}
	var missing intervals.Set
	s.Acked.Minus(&st.seen, func(r intervals.Range) bool { missing.AddRange(r.Lo, r.Hi); return true })
	if gone := t.compactedAway(k, st); gone != nil {
		// the source's cleaner removed them: counted truncated (judge.go)
		kept := missing.Clone()
		missing = intervals.Set{}
		kept.Minus(gone, func(r intervals.Range) bool { missing.AddRange(r.Lo, r.Hi); return true })
	}
	if out.Tombstones != nil {
		out.Tombstones.Acked += sumRanges(&s.Acked, every(f.TombstoneEvery))
		out.Tombstones.Missing += sumRanges(&missing, every(f.TombstoneEvery))
	}
	if out.Large == nil {
		return
	}
	// A sequence both rules pick is a tombstone (Fidelity.IsLarge), and
	// those are exactly the multiples of lcm(largeEvery, tombstoneEvery).
	out.Large.Acked += sumRanges(&s.Acked, every(f.LargeEvery)) - sumRanges(&s.Acked, every(bothEvery(f)))
	first, ok := missing.Min()
	if !ok {
		return
	}
	// Stuck at a large record: the stream stopped (nothing from its first
	// missing sequence on arrived) at a large record, or up to
	// stuckLead records before it (fetched with the large one in the
	// mirror's batch, which it could not write past).
	large := first + (uint64(f.LargeEvery)-1-first%uint64(f.LargeEvery))%uint64(f.LargeEvery)
	for i := 0; i < f.TombstoneEvery && f.IsTombstone(large); i++ {
		large += uint64(f.LargeEvery) // that one is a tombstone, not large
	}
	last, _ := s.Acked.Max()
	if large-first > stuckLead || !s.Acked.Contains(large) || missing.CountIn(first, last) != s.Acked.CountIn(first, last) {
		return
	}
	where := fmt.Sprintf("topic %s stream %d", k.Topic, k.Stream)
	if p, ok := st.srcPartOf(first); ok {
		where = fmt.Sprintf("topic %s source partition %d (stream %d)", k.Topic, p, k.Stream)
	}
	at := fmt.Sprintf("seq %d, a record of %d bytes", first, f.LargeBytes)
	if large != first {
		at = fmt.Sprintf("seq %d, %d before seq %d, a record of %d bytes", first, large-first, large, f.LargeBytes)
	}
	out.Large.Stuck = append(out.Large.Stuck, fmt.Sprintf("%s: stops at %s; %d acked records of the stream from there never arrived",
		where, at, missing.Len()))
}

// stuckLead: how many records before a large one a stream that stopped
// may stop and still count as stuck at it: records fetched with the large
// one that the mirror never wrote (MirrorMaker 2 4.3.0, whose task died on
// RecordTooLargeException, stopped streams up to 3 records before it).
const stuckLead = 4

// patternCount is how many q in r have q % n == n-1.
// bothEvery is the period of the sequences that are picked as large and as
// tombstones (lcm of the two; 0 when either is off).
func bothEvery(f *scenarios.Fidelity) int {
	a, b := f.LargeEvery, f.TombstoneEvery
	if a <= 0 || b <= 0 {
		return 0
	}
	g, h := a, b
	for h != 0 {
		g, h = h, g%h
	}
	return a / g * b
}

func patternCount(r intervals.Range, n uint64) uint64 {
	if n == 0 {
		return 0
	}
	return (r.Hi+1)/n - r.Lo/n
}

func sumRanges(s *intervals.Set, f func(intervals.Range) uint64) uint64 {
	var n uint64
	s.Minus(&intervals.Set{}, func(r intervals.Range) bool { n += f(r); return true })
	return n
}

// compaction compares the final key -> value maps.
func (t *Tracker) compaction() *report.Compaction {
	live := func(m map[compKey]compVal) map[compKey]compVal {
		out := map[compKey]compVal{}
		for k, v := range m {
			if !v.tomb {
				out[k] = v
			}
		}
		return out
	}
	src, dst := live(t.modes.src), live(t.modes.dst)
	c := &report.Compaction{SourceKeys: uint64(len(src)), TargetKeys: uint64(len(dst))}
	if len(t.finalScanned) > 0 {
		var held uint64
		for _, set := range t.finalSrc {
			held += set.Len()
		}
		c.SourceHeld = &held
	}
	keys := map[compKey]bool{}
	for k := range src {
		keys[k] = true
	}
	for k := range dst {
		keys[k] = true
	}
	sorted := make([]compKey, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Slice(sorted, func(i, j int) bool {
		return sorted[i].topic < sorted[j].topic || sorted[i].topic == sorted[j].topic && sorted[i].key < sorted[j].key
	})
	for _, k := range sorted {
		s, inS := src[k]
		d, inD := dst[k]
		if inS && inD && s.epoch == d.epoch && s.seq == d.seq {
			continue
		}
		c.Differ++
		if len(c.Examples) < t.examples {
			c.Examples = append(c.Examples, fmt.Sprintf("topic %s key %q: source %s, target %s", k.topic, k.key, valueName(s, inS), valueName(d, inD)))
		}
	}
	return c
}

func valueName(v compVal, ok bool) string {
	if !ok {
		return "deleted or absent"
	}
	return fmt.Sprintf("seq %d (epoch %d)", v.seq, v.epoch)
}

func codecName(c uint8) string {
	switch c {
	case 0:
		return "none"
	case 1:
		return "gzip"
	case 2:
		return "snappy"
	case 3:
		return "lz4"
	case 4:
		return "zstd"
	}
	return fmt.Sprintf("codec-%d", c)
}

func headerList(hs []wire.Header) string {
	out := "["
	for i, h := range hs {
		if i > 0 {
			out += " "
		}
		if h.Value == nil {
			out += h.Key + "=null"
		} else {
			out += fmt.Sprintf("%s=%q", h.Key, h.Value)
		}
	}
	return out + "]"
}
