package validator

import (
	"fmt"
	"sort"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/intervals"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
)

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
	// AllArrived: every acked sequence arrived (or was truncated): nothing
	// is still missing, in any partition.
	AllArrived bool
	// MissingBySource counts the lost and unseen records per source
	// partition the source reader read them in; set only by a final
	// judgement with the source checked (nil otherwise: unknown).
	MissingBySource map[SourcePartition]uint64
}

// SourcePartition names a source topic's partition.
type SourcePartition struct {
	Topic     string
	Partition int
}

// Judge classifies the ledger's acked sequences against the target. With
// final, the gaps become evidence (examples), order candidates whose source
// order is still unknown are settled (not blamed), and source_lost is judged
// if sourceChecked (the source reader read every partition to its end);
// without final it is the live view (no evidence, no source_lost).
func (t *Tracker) Judge(l *ledger.Ledger, final, sourceChecked bool) Judgement {
	t.resolveOrder(final)
	j := Judgement{PerTopic: map[string]Counts{}, OtherRuns: t.other, AllReachedLast: true, AllArrived: true}
	if final && sourceChecked {
		j.MissingBySource = map[SourcePartition]uint64{}
	}
	for topic, c := range t.counts {
		j.PerTopic[topic] = *c
	}
	for topic, n := range t.aborted() {
		pc := j.PerTopic[topic]
		pc.AbortedRead += n
		j.PerTopic[topic] = pc
	}
	if l != nil {
		l.View(func(k ledger.StreamKey, s *ledger.Stream) {
			j.Streams++
			pc := j.PerTopic[k.Topic]
			t.judgeStream(&j, &pc, k, s, final, sourceChecked)
			j.PerTopic[k.Topic] = pc
		})
	}
	for k, st := range t.streams {
		pc := j.PerTopic[k.Topic]
		pc.Split += t.split(k, st, final)
		j.PerTopic[k.Topic] = pc
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

// judgeStream classifies one ledger stream's acked sequences.
func (t *Tracker) judgeStream(j *Judgement, pc *Counts, k ledger.StreamKey, s *ledger.Stream, final, sourceChecked bool) {
	acked := s.Acked.Len()
	pc.Acked += acked
	var failedOnly uint64
	s.Failed.Minus(&s.Acked, func(r intervals.Range) bool { failedOnly += r.Len(); return true })
	pc.Produced += acked + failedOnly

	st := t.streams[k]
	if st == nil {
		st = newStreamState()
	}
	// What arrived, intact or with another payload (reported corrupt).
	arrived := &st.seen
	if !st.bad.Empty() {
		arrived = st.seen.Clone()
		arrived.Union(&st.bad)
	}
	pc.AbortedCopied += intersectLen(&st.seen, &s.Aborted) // the mirror copied aborted records
	maxSeen, anySeen := arrived.Max()
	if last, ok := s.Acked.Max(); ok && (!anySeen || maxSeen < last) {
		j.AllReachedLast = false
	}
	trunc := t.truncated(k, st, final && sourceChecked)
	var srcAll intervals.Set
	for _, set := range st.src {
		srcAll.Union(set)
	}
	comp := t.compactedAway(k, st)
	s.Acked.Minus(arrived, func(r intervals.Range) bool {
		for _, part := range cutBoth(r, trunc, comp) {
			if part.in && part.compacted {
				j.Truncated += part.r.Len()
				if final {
					t.example(CatTruncated, t.rangeExample(k, st, part.r, "compacted away on the source (a later record of its key is there): not judged"))
				}
				continue
			}
			if part.in {
				j.Truncated += part.r.Len()
				if final {
					t.example(CatTruncated, t.rangeExample(k, st, part.r, "purged from the source before the mirror copied it"))
				}
				continue
			}
			j.AllArrived = false
			if !(final && sourceChecked) {
				t.missing(pc, k, st, part.r, anySeen, maxSeen, final)
				continue
			}
			for _, sp := range cut(part.r, &srcAll) {
				if sp.in {
					t.missing(pc, k, st, sp.r, anySeen, maxSeen, final)
					for p, set := range st.src {
						if n := set.CountIn(sp.r.Lo, sp.r.Hi); n > 0 {
							j.MissingBySource[SourcePartition{k.Topic, p}] += n
						}
					}
					continue
				}
				pc.SourceLost += sp.r.Len()
				t.example(CatSourceLost, t.rangeExample(k, st, sp.r, "acked by the source but absent from the source log"))
			}
		}
		return true
	})
}

// missing classifies a range absent at the target (and, if checked, present
// in the source): below the highest seen it is lost, above it unseen.
func (t *Tracker) missing(pc *Counts, k ledger.StreamKey, st *streamState, r intervals.Range, anySeen bool, maxSeen uint64, final bool) {
	if anySeen && r.Lo < maxSeen {
		lo := intervals.Range{Lo: r.Lo, Hi: min(r.Hi, maxSeen-1)}
		pc.Lost += lo.Len()
		if final && !t.full(CatLost) {
			t.example(CatLost, t.lostExample(k, st, lo, maxSeen))
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
		t.example(CatUnseen, t.rangeExample(k, st, r, "not at the target by the end of the drain (above the highest seq that arrived)"))
	}
}

// lostExample names the target record that proves the gap: the one that
// arrived right after it in its partition, else the highest that arrived.
func (t *Tracker) lostExample(k ledger.StreamKey, st *streamState, r intervals.Range, maxSeen uint64) Example {
	e := t.rangeExample(k, st, r, "")
	for _, g := range t.jumps {
		if g.k == k && g.from < r.Lo && g.to > r.Hi {
			e.Partition, e.Offset = g.partition, g.offset
			e.Detail = fmt.Sprintf("missing at the target; seq %d arrived right after seq %d at this partition and offset", g.to, g.from)
			return e
		}
	}
	e.Partition, e.Offset = st.topPart, st.topOff
	e.Detail = fmt.Sprintf("missing at the target below seq %d, which arrived at this partition and offset", maxSeen)
	return e
}

func (t *Tracker) rangeExample(k ledger.StreamKey, st *streamState, r intervals.Range, detail string) Example {
	e := Example{Topic: k.Topic, Stream: k.Stream, Seq: r.Lo, SeqEnd: r.Hi, Partition: -1, Offset: -1, Detail: detail}
	if p, ok := st.srcPartOf(r.Lo); ok {
		e.SourcePartition = ptr(p)
	}
	return e
}

type piece struct {
	r         intervals.Range
	in        bool
	compacted bool // cutBoth: in the compacted-away set, not the truncated one
}

// cut splits r into its parts inside and outside s (nil: all outside), in
// order.
func cut(r intervals.Range, s *intervals.Set) []piece {
	if s == nil || s.Empty() {
		return []piece{{r: r}}
	}
	var rs intervals.Set
	rs.AddRange(r.Lo, r.Hi)
	var out []piece
	lo := r.Lo
	rs.Minus(s, func(o intervals.Range) bool {
		if o.Lo > lo {
			out = append(out, piece{r: intervals.Range{Lo: lo, Hi: o.Lo - 1}, in: true})
		}
		out = append(out, piece{r: o})
		lo = o.Hi + 1
		return o.Hi < r.Hi
	})
	if lo <= r.Hi && (len(out) == 0 || out[len(out)-1].r.Hi < r.Hi) {
		out = append(out, piece{r: intervals.Range{Lo: lo, Hi: r.Hi}, in: true})
	}
	return out
}

// split counts the records of stream k that arrived outside the stream's
// main target partition while the source held them in one partition: for
// each source partition's part of the stream, the target partition that got
// most of it is the main one. Without a source reader it is not judged: a
// stream the source itself moved (partitions added) looks the same.
func (t *Tracker) split(k streamKey, st *streamState, final bool) uint64 {
	if len(st.tparts) < 2 || !t.sourceOrder {
		return 0
	}
	parts := st.src
	var total uint64
	srcIDs := make([]int, 0, len(parts))
	for p := range parts {
		srcIDs = append(srcIDs, p)
	}
	sort.Ints(srcIDs)
	for _, p := range srcIDs {
		total += t.splitPart(k, st, p, parts[p], final)
	}
	return total
}

func (t *Tracker) splitPart(k streamKey, st *streamState, srcP int, seg *intervals.Set, final bool) uint64 {
	type share struct {
		tp int
		n  uint64
	}
	var shares []share
	var sum uint64
	for tp, got := range st.tparts {
		if n := intersectLen(got, seg); n > 0 {
			shares = append(shares, share{tp, n})
			sum += n
		}
	}
	if len(shares) < 2 {
		return 0
	}
	sort.Slice(shares, func(i, j int) bool {
		if shares[i].n != shares[j].n {
			return shares[i].n > shares[j].n
		}
		return shares[i].tp < shares[j].tp
	})
	if final && !t.full(CatSplit) {
		minor := shares[1]
		var first uint64
		st.tparts[minor.tp].Minus(&intervals.Set{}, func(r intervals.Range) bool {
			for _, pc := range cut(r, seg) {
				if pc.in {
					first = pc.r.Lo
					return false
				}
			}
			return true
		})
		e := Example{Topic: k.Topic, Stream: k.Stream, Seq: first, Partition: minor.tp, Offset: -1,
			Detail: fmt.Sprintf("the source kept this stream's records in one partition; %d of them arrived in target partition %d, %d elsewhere", shares[0].n, shares[0].tp, sum-shares[0].n)}
		if srcP >= 0 {
			e.SourcePartition = ptr(srcP)
		}
		t.example(CatSplit, e)
	}
	return sum - shares[0].n
}

// intersectLen is |a ∩ b|.
func intersectLen(a, b *intervals.Set) uint64 {
	var outside uint64
	a.Minus(b, func(r intervals.Range) bool { outside += r.Len(); return true })
	return a.Len() - outside
}

// compactedAway is what the source's cleaner removed of stream k on a
// compacted topic: the sequences below the stream's last one in the source
// log that the source log no longer holds (compaction removes the records
// of a key before its last one, never the last). The source log is the
// final scan of the topic when the drain made one (SetSourceFinal), else
// what the source reader read. nil for other topics.
func (t *Tracker) compactedAway(k ledger.StreamKey, st *streamState) *intervals.Set {
	if !t.compacted[k.Topic] {
		return nil
	}
	held := t.finalSrc[k]
	if _, scanned := t.finalScanned[k.Topic]; !scanned {
		held = &intervals.Set{}
		for _, set := range st.src {
			held.Union(set)
		}
	}
	if held == nil {
		return nil // the final scan found nothing of the stream
	}
	last, ok := held.Max()
	if !ok || last == 0 {
		return nil
	}
	var below, gone intervals.Set
	below.AddRange(0, last-1)
	below.Minus(held, func(r intervals.Range) bool { gone.AddRange(r.Lo, r.Hi); return true })
	return &gone
}

// SetSourceFinal records what the source log of a compacted topic holds
// at the end of the run (a scan after the drain), per stream.
func (t *Tracker) SetSourceFinal(topic string, held map[ledger.StreamKey]*intervals.Set) {
	if t.finalSrc == nil {
		t.finalSrc, t.finalScanned = map[ledger.StreamKey]*intervals.Set{}, map[string]bool{}
	}
	t.finalScanned[topic] = true
	for k, set := range held {
		t.finalSrc[k] = set
	}
}

// cutBoth is cut by trunc, then the parts outside it cut by comp (those
// marked compacted).
func cutBoth(r intervals.Range, trunc, comp *intervals.Set) []piece {
	var out []piece
	for _, p := range cut(r, trunc) {
		if p.in || comp == nil {
			out = append(out, p)
			continue
		}
		for _, c := range cut(p.r, comp) {
			c.compacted = c.in
			out = append(out, c)
		}
	}
	return out
}
