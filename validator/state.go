package validator

// The tracker's state as plain data, so one shard of a sharded validator can
// hand everything it knows to the merge (merge.go). Every field is what the
// tracker keeps (interval sets, never records), so a state is as small as the
// tracker: O(streams × partitions + gaps + anomalies).

import (
	"fmt"
	"sort"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/intervals"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// StateVersion is the ShardState format written today.
const StateVersion = 2 // 2: the load modes, stalls and metadata sync (mergemodes.go)

// ShardState is one validator shard's tracker, drain outcome and the ledger
// it read: what the merge needs to produce the verdict a single validator
// would have produced.
type ShardState struct {
	Version  int    `json:"v"`
	RunID    string `json:"run"`
	Shard    int    `json:"shard"`
	Shards   int    `json:"shards"`
	Examples int    `json:"examples"`
	// SourceOrder: a source reader ran (order judged against the source).
	SourceOrder bool `json:"source_order"`
	Isolation   string

	Streams  []StreamState     `json:"streams"`
	Read     []PartSet         `json:"read"` // target offsets read
	Counts   map[string]Counts `json:"counts"`
	Other    uint64            `json:"other_runs"`
	Pending  []PendingOrder    `json:"order_pending,omitempty"`
	Jumps    []Jump            `json:"jumps,omitempty"`
	Sources  []SourcePart      `json:"source_parts,omitempty"`
	UncPos   []PartPos         `json:"uncommitted_pos,omitempty"`
	UncSeen  []PartSet         `json:"uncommitted_seen,omitempty"`
	Evidence map[string][]Example

	// Latency and Redelivery are HdrHistogram's compressed encoding
	// (base64 text, as its Encode writes it).
	Latency      string        `json:"latency"`
	Redelivery   string        `json:"redelivery_latency"`
	Negative     uint64        `json:"negative"`
	MostNegative time.Duration `json:"most_negative"`
	NegRedeliv   uint64        `json:"negative_redelivery"`
	First, Last  time.Time

	// The shard's drain (Result's fields of the same names).
	DrainComplete bool    `json:"drain_complete"`
	DrainSeconds  float64 `json:"drain_seconds"`
	TargetUnread  bool    `json:"target_unread"`
	TargetMissing string  `json:"target_missing,omitempty"`
	SourceChecked bool    `json:"source_checked"`
	SourceNote    string  `json:"source_note,omitempty"`

	Ledger LedgerState `json:"ledger"`

	// The MirrorMaker 2 families (mergemodes.go): the load modes' pieces,
	// this shard's stall watchdog (its target partitions), and shard 0's
	// metadata sync watch.
	Modes        *ModesState          `json:"modes,omitempty"`
	Stalls       *report.Stalls       `json:"stalls,omitempty"`
	MetadataSync *report.MetadataSync `json:"metadata_sync,omitempty"`
	// SourceFinal is shard 0's scan, after its drain, of what each
	// compacted source topic still holds of the run (Drain's
	// scanCompacted): one snapshot of the whole topic, so the merged
	// judge tells records the source's cleaner removed from records the
	// mirror failed to copy, as a single validator does.
	SourceFinal *SourceFinalState `json:"source_final,omitempty"`
	// Compacted names the compacted source topics (Tracker.SetCompacted):
	// without them the merged judge would excuse nothing their cleaner
	// removed.
	Compacted []string `json:"compacted,omitempty"`

	// Set by a shard Job (RunShard): when it first saw the load and when
	// the load ended, and why its drain was cut short, if it was.
	LoadSeen  time.Time `json:"load_seen,omitzero"`
	LoadEnded time.Time `json:"load_ended,omitzero"`
	Error     string    `json:"error,omitempty"`
}

// SourceFinalState is a compacted-topic scan (Tracker.SetSourceFinal):
// the topics scanned, and per stream the sequences the source log held.
type SourceFinalState struct {
	Topics  []string     `json:"topics"`
	Streams []HeldStream `json:"streams,omitempty"`
}

// HeldStream is what the source log of a compacted topic held of one stream.
type HeldStream struct {
	Topic  string            `json:"topic"`
	Stream uint32            `json:"stream"`
	Epoch  uint32            `json:"epoch"`
	Held   []intervals.Range `json:"held"`
}

// StreamState is one stream's streamState.
type StreamState struct {
	Topic  string                      `json:"topic"`
	Stream uint32                      `json:"stream"`
	Epoch  uint32                      `json:"epoch"`
	Seen   []intervals.Range           `json:"seen,omitempty"`
	Bad    []intervals.Range           `json:"bad,omitempty"`
	TParts map[int][]intervals.Range   `json:"target_parts,omitempty"`
	Src    map[int][]intervals.Range   `json:"source,omitempty"`
	SrcInv map[int][]intervals.Range   `json:"source_inverted,omitempty"`
	First  map[int]map[int64]FirstSeen `json:"first_after_purge,omitempty"`
	Top    PartPos                     `json:"top"`
}

// FirstSeen is a stream's first record at or above a purge's log start.
type FirstSeen struct {
	Offset int64  `json:"offset"`
	Seq    uint64 `json:"seq"`
}

// PartSet is a set of offsets of one (source topic, partition).
type PartSet struct {
	Topic     string            `json:"topic"`
	Partition int               `json:"partition"`
	Offsets   []intervals.Range `json:"offsets"`
}

// PartPos is one position in a (topic, partition).
type PartPos struct {
	Topic     string `json:"topic,omitempty"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
}

// PendingOrder is an order candidate whose source order was not known.
type PendingOrder struct {
	Topic     string    `json:"topic"`
	Stream    uint32    `json:"stream"`
	Epoch     uint32    `json:"epoch"`
	Seq       uint64    `json:"seq"`
	Next      uint64    `json:"next"`
	Partition int       `json:"partition"`
	Offset    int64     `json:"offset"`
	Produced  time.Time `json:"produced"`
}

// Jump is a gapJump (evidence for lost examples).
type Jump struct {
	Topic     string `json:"topic"`
	Stream    uint32 `json:"stream"`
	Epoch     uint32 `json:"epoch"`
	From, To  uint64
	Partition int   `json:"partition"`
	Offset    int64 `json:"offset"`
}

// SourcePart is the source reader's srcPart.
type SourcePart struct {
	Topic     string            `json:"topic"`
	Partition int               `json:"partition"`
	Next      int64             `json:"next"`
	Offsets   []intervals.Range `json:"offsets"`
	Purges    []PurgeState      `json:"purges,omitempty"`
}

// PurgeState is one purge of a source partition.
type PurgeState struct {
	LogStart int64 `json:"log_start"`
	ViaMain  bool  `json:"via_main"`
	Covered  bool  `json:"covered"`
}

// LedgerState is the ledger a shard judged against.
type LedgerState struct {
	Done     bool          `json:"done"`
	Problems []string      `json:"problems,omitempty"`
	Streams  []LedgerEntry `json:"streams"`
}

// LedgerEntry is one ledger stream.
type LedgerEntry struct {
	ledger.StreamKey
	Acked  []intervals.Range `json:"acked,omitempty"`
	Failed []intervals.Range `json:"failed,omitempty"`
	// Aborted: sequences of aborted transactions (aborted_copied is judged
	// against them at the merge).
	Aborted []intervals.Range `json:"aborted,omitempty"`
}

// ledgerState copies l.
func ledgerState(l *ledger.Ledger) LedgerState {
	s := LedgerState{Done: l.Done(), Problems: l.Problems()}
	l.View(func(k ledger.StreamKey, st *ledger.Stream) {
		s.Streams = append(s.Streams, LedgerEntry{StreamKey: k, Acked: st.Acked.Ranges(), Failed: st.Failed.Ranges(), Aborted: st.Aborted.Ranges()})
	})
	return s
}

// ledger rebuilds the ledger.
func (s LedgerState) ledger() *ledger.Ledger {
	l := ledger.New()
	for _, e := range s.Streams {
		l.AddAllRanges(e.StreamKey, e.Acked, e.Failed, e.Aborted)
	}
	for _, p := range s.Problems {
		l.AddProblem(p)
	}
	if s.Done {
		l.MarkDone()
	}
	return l
}

func setFrom(rs []intervals.Range) *intervals.Set {
	s := &intervals.Set{}
	for _, r := range rs {
		s.AddRange(r.Lo, r.Hi)
	}
	return s
}

func rangesOf(m map[int]*intervals.Set) map[int][]intervals.Range {
	if len(m) == 0 {
		return nil
	}
	out := make(map[int][]intervals.Range, len(m))
	for k, s := range m {
		out[k] = s.Ranges()
	}
	return out
}

func partSets(m map[partKey]*intervals.Set) []PartSet {
	out := make([]PartSet, 0, len(m))
	for pk, s := range m {
		out = append(out, PartSet{Topic: pk.topic, Partition: pk.partition, Offsets: s.Ranges()})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Topic < out[j].Topic || out[i].Topic == out[j].Topic && out[i].Partition < out[j].Partition
	})
	return out
}

// exportState copies everything the tracker knows into a ShardState (the
// drain fields and the ledger are the caller's).
func (t *Tracker) exportState() *ShardState {
	s := &ShardState{
		Version: StateVersion, RunID: t.runID, Examples: t.examples, SourceOrder: t.sourceOrder,
		Read: partSets(t.read), Counts: map[string]Counts{}, Other: t.other, UncSeen: partSets(t.unc.seen),
		Evidence: t.Examples(), Latency: encodeHist(t.lat.hist), Redelivery: encodeHist(t.lat.redeliv),
		Negative: t.lat.negative, MostNegative: t.lat.minNeg, NegRedeliv: t.lat.negRedeli, First: t.first, Last: t.last,
		Modes: t.exportModes(),
	}
	for topic, c := range t.counts {
		s.Counts[topic] = *c
	}
	for k, st := range t.streams {
		ss := StreamState{Topic: k.Topic, Stream: k.Stream, Epoch: k.Epoch, Seen: st.seen.Ranges(), Bad: st.bad.Ranges(),
			TParts: rangesOf(st.tparts), Src: rangesOf(st.src), SrcInv: rangesOf(st.srcInv), Top: PartPos{Partition: st.topPart, Offset: st.topOff}}
		if len(st.first) > 0 {
			ss.First = map[int]map[int64]FirstSeen{}
			for p, m := range st.first {
				ss.First[p] = map[int64]FirstSeen{}
				for ls, f := range m {
					ss.First[p][ls] = FirstSeen{Offset: f.offset, Seq: f.seq}
				}
			}
		}
		s.Streams = append(s.Streams, ss)
	}
	sort.Slice(s.Streams, func(i, j int) bool {
		a, b := s.Streams[i], s.Streams[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.Stream != b.Stream {
			return a.Stream < b.Stream
		}
		return a.Epoch < b.Epoch
	})
	for _, c := range t.orderPending {
		s.Pending = append(s.Pending, PendingOrder{Topic: c.k.Topic, Stream: c.k.Stream, Epoch: c.k.Epoch, Seq: c.seq, Next: c.next,
			Partition: c.partition, Offset: c.offset, Produced: c.produced})
	}
	for _, g := range t.jumps {
		s.Jumps = append(s.Jumps, Jump{Topic: g.k.Topic, Stream: g.k.Stream, Epoch: g.k.Epoch, From: g.from, To: g.to, Partition: g.partition, Offset: g.offset})
	}
	for pk, p := range t.srcParts {
		sp := SourcePart{Topic: pk.topic, Partition: pk.partition, Next: p.next, Offsets: p.offsets.Ranges()}
		for _, pg := range p.purges {
			sp.Purges = append(sp.Purges, PurgeState{LogStart: pg.logStart, ViaMain: pg.viaMain, Covered: pg.covered})
		}
		s.Sources = append(s.Sources, sp)
	}
	sort.Slice(s.Sources, func(i, j int) bool {
		a, b := s.Sources[i], s.Sources[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && a.Partition < b.Partition
	})
	for pk, pos := range t.unc.pos {
		s.UncPos = append(s.UncPos, PartPos{Topic: pk.topic, Partition: pk.partition, Offset: pos})
	}
	s.SourceFinal = t.exportSourceFinal()
	for topic := range t.compacted {
		s.Compacted = append(s.Compacted, topic)
	}
	sort.Strings(s.Compacted)
	return s
}

// exportSourceFinal is the compacted-topic scan, nil when none was made.
func (t *Tracker) exportSourceFinal() *SourceFinalState {
	if len(t.finalScanned) == 0 {
		return nil
	}
	sf := &SourceFinalState{}
	for topic := range t.finalScanned {
		sf.Topics = append(sf.Topics, topic)
	}
	sort.Strings(sf.Topics)
	for k, set := range t.finalSrc {
		sf.Streams = append(sf.Streams, HeldStream{Topic: k.Topic, Stream: k.Stream, Epoch: k.Epoch, Held: set.Ranges()})
	}
	sort.Slice(sf.Streams, func(i, j int) bool {
		a, b := sf.Streams[i], sf.Streams[j]
		return a.Topic < b.Topic || a.Topic == b.Topic && (a.Stream < b.Stream || a.Stream == b.Stream && a.Epoch < b.Epoch)
	})
	return sf
}

// absorbSourceFinal takes a shard's compacted-topic scan.
func (t *Tracker) absorbSourceFinal(sf *SourceFinalState) {
	if sf == nil {
		return
	}
	byTopic := map[string]map[streamKey]*intervals.Set{}
	for _, topic := range sf.Topics {
		byTopic[topic] = map[streamKey]*intervals.Set{}
	}
	for _, h := range sf.Streams {
		if m := byTopic[h.Topic]; m != nil {
			m[streamKey{Topic: h.Topic, Stream: h.Stream, Epoch: h.Epoch}] = setFrom(h.Held)
		}
	}
	for topic, held := range byTopic {
		t.SetSourceFinal(topic, held)
	}
}

// absorb adds a shard's state to the tracker. Partitions are owned by one
// shard each, so per-partition state (target offsets read, source partitions,
// the read_uncommitted reader's) never overlaps; per-stream state is the
// union over shards. A sequence that arrived intact in partitions of two
// shards was a first arrival in each: every copy beyond the first is a
// duplicate, as a single validator would have counted it.
func (t *Tracker) absorb(s *ShardState) error {
	for topic, c := range s.Counts {
		t.topicCounts(topic).Add(c)
	}
	t.other += s.Other
	t.absorbSourceFinal(s.SourceFinal)
	for _, ss := range s.Streams {
		k := streamKey{Topic: ss.Topic, Stream: ss.Stream, Epoch: ss.Epoch}
		st := t.stream(k)
		seen := setFrom(ss.Seen)
		if dup := intersectLen(seen, &st.seen); dup > 0 {
			t.topicCounts(k.Topic).Duplicate += dup
			if !t.full(CatDuplicate) {
				t.example(CatDuplicate, crossShardDuplicate(k, ss, intersect(seen, &st.seen)))
			}
		}
		if mx, ok := seen.Max(); ok {
			if cur, any := st.seen.Max(); !any || mx > cur {
				st.topPart, st.topOff = ss.Top.Partition, ss.Top.Offset
			}
		}
		st.seen.Union(seen)
		st.bad.Union(setFrom(ss.Bad))
		for _, m := range []struct {
			from map[int][]intervals.Range
			into map[int]*intervals.Set
		}{{ss.TParts, st.tparts}, {ss.Src, st.src}, {ss.SrcInv, st.srcInv}} {
			for p, rs := range m.from {
				setOf(m.into, p).Union(setFrom(rs))
			}
		}
		for p, m := range ss.First {
			for ls, f := range m {
				st.noteFirst(p, ls, f.Offset, f.Seq)
			}
		}
	}
	for _, ps := range s.Read {
		if err := t.absorbPartSet(t.read, ps, "target offsets read"); err != nil {
			return err
		}
	}
	for _, ps := range s.UncSeen {
		if err := t.absorbPartSet(t.unc.seen, ps, "read_uncommitted offsets"); err != nil {
			return err
		}
	}
	for _, pp := range s.UncPos {
		t.unc.committedAt(partKey{pp.Topic, pp.Partition}, pp.Offset-1)
	}
	for _, sp := range s.Sources {
		pk := partKey{sp.Topic, sp.Partition}
		if t.srcParts[pk] != nil {
			return fmt.Errorf("source partition %s[%d] was read by two shards: each partition belongs to one shard (same --shards on every shard?)", sp.Topic, sp.Partition)
		}
		p := &srcPart{next: sp.Next, offsets: *setFrom(sp.Offsets)}
		for _, pg := range sp.Purges {
			p.purges = append(p.purges, &purge{logStart: pg.LogStart, viaMain: pg.ViaMain, covered: pg.Covered})
		}
		t.srcParts[pk] = p
	}
	for _, c := range s.Pending {
		t.orderPending = append(t.orderPending, orderCand{k: streamKey{Topic: c.Topic, Stream: c.Stream, Epoch: c.Epoch}, seq: c.Seq, next: c.Next,
			partition: c.Partition, offset: c.Offset, produced: c.Produced})
	}
	for _, g := range s.Jumps {
		if len(t.jumps) < maxJumps {
			t.jumps = append(t.jumps, gapJump{k: streamKey{Topic: g.Topic, Stream: g.Stream, Epoch: g.Epoch}, from: g.From, to: g.To, partition: g.Partition, offset: g.Offset})
		}
	}
	cats := make([]string, 0, len(s.Evidence))
	for cat := range s.Evidence {
		cats = append(cats, cat)
	}
	sort.Strings(cats)
	for _, cat := range cats {
		for _, e := range s.Evidence[cat] {
			t.example(cat, e)
		}
	}
	return t.absorbLatency(s)
}

func (t *Tracker) absorbPartSet(m map[partKey]*intervals.Set, ps PartSet, what string) error {
	pk := partKey{ps.Topic, ps.Partition}
	if m[pk] != nil {
		return fmt.Errorf("%s of %s[%d] come from two shards: each partition belongs to one shard (same --shards on every shard?)", what, ps.Topic, ps.Partition)
	}
	m[pk] = setFrom(ps.Offsets)
	return nil
}

func (t *Tracker) absorbLatency(s *ShardState) error {
	for _, h := range []struct {
		into *hdrhistogram.Histogram
		from string
	}{{t.lat.hist, s.Latency}, {t.lat.redeliv, s.Redelivery}} {
		if h.from == "" {
			continue
		}
		from, err := hdrhistogram.Decode([]byte(h.from))
		if err != nil {
			return fmt.Errorf("shard %d's latency histogram does not decode: %w", s.Shard, err)
		}
		if dropped := h.into.Merge(from); dropped != 0 {
			return fmt.Errorf("merging shard %d's latency histogram dropped %d values", s.Shard, dropped)
		}
	}
	t.lat.negative += s.Negative
	t.lat.minNeg = min(t.lat.minNeg, s.MostNegative)
	t.lat.negRedeli += s.NegRedeliv
	if !s.First.IsZero() && (t.first.IsZero() || s.First.Before(t.first)) {
		t.first = s.First
	}
	if s.Last.After(t.last) {
		t.last = s.Last
	}
	return nil
}

// crossShardDuplicate is the evidence for sequences a shard got that another
// shard had already got: the first one, in the shard's partition that holds it.
func crossShardDuplicate(k streamKey, ss StreamState, both *intervals.Set) Example {
	seq, _ := both.Min()
	e := Example{Topic: k.Topic, Stream: k.Stream, Seq: seq, Partition: -1, Offset: -1,
		Detail: "sequence delivered in target partitions of two shards (another partition than its first arrival)"}
	for p, rs := range ss.TParts {
		if setFrom(rs).Contains(seq) {
			e.Partition = p
		}
	}
	return e
}

// encodeHist is h's compressed encoding ("" when empty: nothing to merge).
func encodeHist(h *hdrhistogram.Histogram) string {
	if h.TotalCount() == 0 {
		return ""
	}
	b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		// Encoding an in-memory histogram fails only on a bug in it.
		panic(fmt.Sprintf("validator: encoding a latency histogram: %v", err))
	}
	return string(b)
}
