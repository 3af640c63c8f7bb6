// Package ledger is the loadgen's record of exactly which sequences of each
// stream the source cluster acknowledged and which sends failed. The validator
// judges the target against it: "acknowledged" comes from the producer's own
// acks, never from counters.
//
// In a local run the validator reads the Ledger in memory. In a cluster run
// the loadgen publishes Entry batches to a ledger topic on the source cluster
// (see topic.go) that the validator, in the other datacenter, reads back.
package ledger

import (
	"sort"
	"sync"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/intervals"
)

// StreamKey identifies one stream of one topic (source topic name) written
// by one loadgen instance (Epoch: a restarted loadgen starts a new epoch, so
// its sequences from 0 are a different stream, never duplicates).
type StreamKey struct {
	Topic  string `json:"topic"`
	Stream uint32 `json:"stream"`
	Epoch  uint32 `json:"epoch,omitempty"`
}

// Stream is what the source said about one stream.
type Stream struct {
	Acked  intervals.Set // sequences acknowledged with acks=all
	Failed intervals.Set // sequences whose send returned an error
	// Aborted: sequences written in a transaction the loadgen aborted. They
	// are in the source log, never committed: a read_committed consumer
	// must never see them, and they are never lost.
	Aborted intervals.Set
}

// Ledger is safe for concurrent use.
type Ledger struct {
	mu      sync.Mutex
	streams map[StreamKey]*Stream
	done    bool      // the loadgen finished: no more sequences will be added
	start   time.Time // when the load really started (MarkStart); zero: unknown
	// problems say why the ledger as read cannot be trusted (a ledger topic
	// that does not add up); a verdict built on it is incomplete.
	problems []string
}

// New returns an empty ledger.
func New() *Ledger { return &Ledger{streams: map[StreamKey]*Stream{}} }

func (l *Ledger) stream(k StreamKey) *Stream {
	s := l.streams[k]
	if s == nil {
		s = &Stream{}
		l.streams[k] = s
	}
	return s
}

// Ack records that the source acknowledged seq of k.
func (l *Ledger) Ack(k StreamKey, seq uint64) {
	l.mu.Lock()
	l.stream(k).Acked.Add(seq)
	l.mu.Unlock()
}

// Handle is one stream of a Ledger, for a writer that records every
// sequence of it: Ack and Fail through a Handle skip hashing the stream's
// key (its topic name included), which the loadgen would otherwise do for
// every record it sends. The stream enters the ledger at its first record,
// as with Ledger.Ack. Safe for concurrent use.
type Handle struct {
	l *Ledger
	k StreamKey
	s *Stream // nil until the first record; guarded by l.mu
}

// Handle returns the Handle of stream k.
func (l *Ledger) Handle(k StreamKey) *Handle { return &Handle{l: l, k: k} }

// Ack is Ledger.Ack of the handle's stream.
func (h *Handle) Ack(seq uint64) {
	h.l.mu.Lock()
	h.stream().Acked.Add(seq)
	h.l.mu.Unlock()
}

// Fail is Ledger.Fail of the handle's stream.
func (h *Handle) Fail(seq uint64) {
	h.l.mu.Lock()
	h.stream().Failed.Add(seq)
	h.l.mu.Unlock()
}

// stream is the handle's Stream; the caller holds h.l.mu.
func (h *Handle) stream() *Stream {
	if h.s == nil {
		h.s = h.l.stream(h.k)
	}
	return h.s
}

// Fail records that the send of seq of k failed. Should both ever be
// recorded for one sequence (ledger topics merged from several writers),
// Acked wins when judging.
func (l *Ledger) Fail(k StreamKey, seq uint64) {
	l.mu.Lock()
	l.stream(k).Failed.Add(seq)
	l.mu.Unlock()
}

// Abort records that seq of k was written in a transaction that was aborted.
func (l *Ledger) Abort(k StreamKey, seq uint64) {
	l.mu.Lock()
	l.stream(k).Aborted.Add(seq)
	l.mu.Unlock()
}

// FailUnanswered records as failed every sequence below sent of k that is
// neither acked nor failed (sends the producer never heard back about
// before it closed: they may or may not be in the source log, so they are
// not acked), and returns how many it added. Without it such a sequence is
// in neither set and the ledger's totals would still add up.
func (l *Ledger) FailUnanswered(k StreamKey, sent uint64) uint64 {
	if sent == 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stream(k)
	answered := s.Acked.Clone()
	answered.Union(&s.Failed)
	answered.Union(&s.Aborted)
	all := &intervals.Set{}
	all.AddRange(0, sent-1)
	var n uint64
	all.Minus(answered, func(r intervals.Range) bool {
		n += s.Failed.AddRange(r.Lo, r.Hi)
		return true
	})
	return n
}

// AddRanges merges acked and failed ranges (from a ledger topic entry).
func (l *Ledger) AddRanges(k StreamKey, acked, failed []intervals.Range) {
	l.AddAllRanges(k, acked, failed, nil)
}

// AddAllRanges merges acked, failed and aborted ranges (from a ledger topic entry).
func (l *Ledger) AddAllRanges(k StreamKey, acked, failed, aborted []intervals.Range) {
	l.mu.Lock()
	s := l.stream(k)
	for _, r := range aborted {
		s.Aborted.AddRange(r.Lo, r.Hi)
	}
	for _, r := range acked {
		s.Acked.AddRange(r.Lo, r.Hi)
	}
	for _, r := range failed {
		s.Failed.AddRange(r.Lo, r.Hi)
	}
	l.mu.Unlock()
}

// MarkStart records when the load started producing (the earliest call
// wins). Cluster runs carry it in the ledger topic, so the validator and the
// fault agents place phases and faults on the load's real clock.
func (l *Ledger) MarkStart(t time.Time) {
	l.mu.Lock()
	if l.start.IsZero() || t.Before(l.start) {
		l.start = t
	}
	l.mu.Unlock()
}

// Start is when the load started (zero: not marked).
func (l *Ledger) Start() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.start
}

// MarkDone records that no more sequences will be added.
func (l *Ledger) MarkDone() {
	l.mu.Lock()
	l.done = true
	l.mu.Unlock()
}

// Done reports whether MarkDone was called.
func (l *Ledger) Done() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.done
}

// AddProblem records that the ledger cannot be trusted, and why (see
// Problems).
func (l *Ledger) AddProblem(why string) {
	l.mu.Lock()
	l.problems = append(l.problems, why)
	l.mu.Unlock()
}

// Problems returns why the ledger cannot be trusted: empty for a ledger
// that adds up. A non-empty answer makes the verdict incomplete (the
// validator cannot tell loss from a ledger entry that never arrived).
func (l *Ledger) Problems() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.problems...)
}

// View calls fn with every stream under the lock, in key order. fn must not
// keep the *Stream past its return.
func (l *Ledger) View(fn func(StreamKey, *Stream)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	keys := make([]StreamKey, 0, len(l.streams))
	for k := range l.streams {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Topic != keys[j].Topic {
			return keys[i].Topic < keys[j].Topic
		}
		if keys[i].Stream != keys[j].Stream {
			return keys[i].Stream < keys[j].Stream
		}
		return keys[i].Epoch < keys[j].Epoch
	})
	for _, k := range keys {
		fn(k, l.streams[k])
	}
}

// TotalAborted returns the number of aborted sequences over all streams.
func (l *Ledger) TotalAborted() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n uint64
	for _, s := range l.streams {
		n += s.Aborted.Len()
	}
	return n
}

// Totals returns the number of acked and failed sequences over all streams.
func (l *Ledger) Totals() (acked, failed uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.streams {
		acked += s.Acked.Len()
		failed += s.Failed.Len()
	}
	return acked, failed
}

// Acked reports whether seq of k was acknowledged.
func (l *Ledger) Acked(k StreamKey, seq uint64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.streams[k]
	return s != nil && s.Acked.Contains(seq)
}

// LastAcked returns the highest acked sequence of k.
func (l *Ledger) LastAcked(k StreamKey) (uint64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.streams[k]
	if s == nil {
		return 0, false
	}
	return s.Acked.Max()
}
