package validator

// What a shard adds to its state for the MirrorMaker 2 families (issue 12)
// and how the merge turns the shards' pieces into the sections a single
// validator writes:
//
//   - Transactions: a transaction spans partitions, so a shard sees only a
//     piece of most of them. A shard exports the transactions it saw whole
//     as a count and every other one as a piece (its id, size, how many of
//     its records this shard got, one record to ask the ledger with); the
//     merge adds the pieces of one id up and judges torn only then, over
//     the union, with the ledger (TransactionsVerdict, as unsharded).
//   - Record fidelity: counts over first arrivals (partitions belong to one
//     shard, so they add up), the target's codecs, and the last value of
//     every key on both sides (a key lives in one partition); tombstones,
//     large records and the key map are judged at the merge against the
//     ledger and the union of what arrived (FidelityVerdict).
//   - Stalls: each shard's watchdog watches its own target partitions, so
//     every partition's stalls are reported by exactly one shard; the merge
//     lists them all.
//   - Metadata sync: the target's topics are the same for every shard, so
//     shard 0 alone watches them (Note* calls on other shards are ignored)
//     and the merge takes its section.
//
// One thing the merge cannot tell apart: a record delivered intact into
// target partitions of two shards (a mirror that copies a record to another
// partition) counts for its transaction and the fidelity counts in both
// shards, where a single validator counts its first arrival only. Such a
// run already fails on the copy itself (duplicate, split).

import (
	"sort"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/intervals"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// ModesState is a shard's part of the load modes' checks.
type ModesState struct {
	Transactions *scenarios.Transactions `json:"transactions,omitempty"`
	Fidelity     *scenarios.Fidelity     `json:"fidelity,omitempty"`
	// Complete: transactions all of whose records arrived in this shard.
	Complete uint64     `json:"txn_complete,omitempty"`
	Open     []TxnPiece `json:"txn_open,omitempty"`

	Headers    report.Check     `json:"headers"`
	Timestamps report.Check     `json:"timestamps"`
	Codecs     map[uint8]uint64 `json:"codecs,omitempty"`
	Tombstones uint64           `json:"tombstones,omitempty"`
	Large      uint64           `json:"large,omitempty"`
	SourceKeys []KeyValue       `json:"source_keys,omitempty"`
	TargetKeys []KeyValue       `json:"target_keys,omitempty"`
}

// TxnPiece is the records of one transaction a shard got, when it did not
// get all of them.
type TxnPiece struct {
	ID     string `json:"id"`
	Size   int    `json:"size"`
	Got    int    `json:"got"`
	Topic  string `json:"topic"`
	Stream uint32 `json:"stream"`
	Epoch  uint32 `json:"epoch"`
	Seq    uint64 `json:"seq"` // one of its records
}

// KeyValue is the last value of one key (compaction).
type KeyValue struct {
	Topic  string `json:"topic"`
	Key    string `json:"key"`
	Offset int64  `json:"offset"`
	Epoch  uint32 `json:"epoch"`
	Seq    uint64 `json:"seq"`
	Tomb   bool   `json:"tomb,omitempty"`
}

// exportModes is the tracker's ModesState (nil without load modes).
func (t *Tracker) exportModes() *ModesState {
	m := &t.modes
	if m.txn == nil && m.fid == nil {
		return nil
	}
	s := &ModesState{Transactions: m.txn, Fidelity: m.fid, Complete: m.complete, Headers: m.headers, Timestamps: m.timestamps,
		Tombstones: m.tombs, Large: m.large}
	for id, ts := range m.txns {
		s.Open = append(s.Open, TxnPiece{ID: id, Size: ts.size, Got: ts.got, Topic: ts.sk.Topic, Stream: ts.sk.Stream, Epoch: ts.sk.Epoch, Seq: ts.seq})
	}
	sort.Slice(s.Open, func(i, j int) bool { return s.Open[i].ID < s.Open[j].ID })
	if len(m.codecs) > 0 {
		s.Codecs = map[uint8]uint64{}
		for c, n := range m.codecs {
			s.Codecs[c] = n
		}
	}
	s.SourceKeys, s.TargetKeys = keyValues(m.src), keyValues(m.dst)
	return s
}

func keyValues(m map[compKey]compVal) []KeyValue {
	out := make([]KeyValue, 0, len(m))
	for k, v := range m {
		out = append(out, KeyValue{Topic: k.topic, Key: k.key, Offset: v.offset, Epoch: v.epoch, Seq: v.seq, Tomb: v.tomb})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Topic < out[j].Topic || out[i].Topic == out[j].Topic && out[i].Key < out[j].Key
	})
	return out
}

// absorbModes adds every shard's load-mode counts to the tracker (its
// modes set from shard 0's) and rebuilds the open transactions from the
// shards' pieces (mergeTxns).
func (t *Tracker) absorbModes(byShard []*ShardState) {
	first := byShard[0].Modes
	if first == nil {
		return
	}
	t.SetLoadModes(first.Transactions, first.Fidelity)
	m := &t.modes
	for _, s := range byShard {
		ms := s.Modes
		if ms == nil {
			continue
		}
		m.complete += ms.Complete
		m.headers.Checked += ms.Headers.Checked
		m.headers.Changed += ms.Headers.Changed
		m.timestamps.Checked += ms.Timestamps.Checked
		m.timestamps.Changed += ms.Timestamps.Changed
		for c, n := range ms.Codecs {
			m.codecs[c] += n
		}
		m.tombs += ms.Tombstones
		m.large += ms.Large
		for _, kv := range ms.SourceKeys {
			setLast(m.src, compKey{kv.Topic, kv.Key}, compVal{kv.Offset, kv.Epoch, kv.Seq, kv.Tomb})
		}
		for _, kv := range ms.TargetKeys {
			setLast(m.dst, compKey{kv.Topic, kv.Key}, compVal{kv.Offset, kv.Epoch, kv.Seq, kv.Tomb})
		}
	}
	if m.txn != nil {
		t.mergeTxns(byShard)
	}
}

// mergeTxns adds up the pieces of each transaction over the shards: one
// whose pieces hold all its records is complete; one with a record that a
// shard without a piece of it got was complete in that shard (a shard that
// got a record of a transaction has it either complete or as a piece), so
// it was counted there already. What remains open is judged torn by
// TransactionsVerdict exactly as in a single validator.
func (t *Tracker) mergeTxns(byShard []*ShardState) {
	m := &t.modes
	type group struct {
		ts     *txnSeen
		shards map[int]bool
	}
	groups := map[string]*group{}
	var ids []string
	for _, s := range byShard {
		if s.Modes == nil {
			continue
		}
		for _, p := range s.Modes.Open {
			g := groups[p.ID]
			if g == nil {
				g = &group{ts: &txnSeen{size: p.Size, sk: streamKey{Topic: p.Topic, Stream: p.Stream, Epoch: p.Epoch}, seq: p.Seq}, shards: map[int]bool{}}
				groups[p.ID] = g
				ids = append(ids, p.ID)
			}
			g.ts.got += p.Got
			g.shards[s.Shard] = true
		}
	}
	seen := shardSeen(byShard)
	for _, id := range ids {
		g := groups[id]
		if g.ts.got >= g.ts.size {
			m.complete++
			continue
		}
		if completeElsewhere(seen, g.shards, g.ts.sk, g.ts.seq) {
			continue
		}
		m.txns[id] = g.ts
	}
}

// shardSeen is, per shard, the sequences each stream delivered intact to it
// (built once, for mergeTxns' lookups).
func shardSeen(byShard []*ShardState) map[int]map[streamKey]*intervals.Set {
	out := map[int]map[streamKey]*intervals.Set{}
	for _, s := range byShard {
		m := map[streamKey]*intervals.Set{}
		for _, ss := range s.Streams {
			m[streamKey{Topic: ss.Topic, Stream: ss.Stream, Epoch: ss.Epoch}] = setFrom(ss.Seen)
		}
		out[s.Shard] = m
	}
	return out
}

// completeElsewhere reports whether a shard that has no piece of a
// transaction got its record (k, seq).
func completeElsewhere(seen map[int]map[streamKey]*intervals.Set, pieces map[int]bool, k streamKey, seq uint64) bool {
	for shard, streams := range seen {
		if pieces[shard] {
			continue
		}
		if set := streams[k]; set != nil && set.Contains(seq) {
			return true
		}
	}
	return false
}

// mergeStalls lists every shard's stalls (each shard watched its own target
// partitions); nil when the watchdog was off.
func mergeStalls(byShard []*ShardState) *report.Stalls {
	var out *report.Stalls
	for _, s := range byShard {
		if s.Stalls == nil {
			continue
		}
		if out == nil {
			out = &report.Stalls{AfterSeconds: s.Stalls.AfterSeconds, Events: []report.StallEvent{}}
		}
		out.Partitions += s.Stalls.Partitions
		out.Events = append(out.Events, s.Stalls.Events...)
	}
	if out != nil {
		sort.SliceStable(out.Events, func(i, j int) bool { return out.Events[i].Start.Before(out.Events[j].Start) })
	}
	return out
}
