package scenarios

import "math"

// Transactions makes the loadgen write in transactions (franz-go's
// transactional producer) and abort a chosen fraction of them. Records of an
// aborted transaction are in the source log but never committed: the ledger
// records them as aborted (never lost), and a read_committed consumer of the
// target must never see one. Each record carries its transaction and the
// transaction's size in a header (see internal/check/wire TxnHeaderKey), so a
// transaction that arrives in part (torn) is counted.
type Transactions struct {
	// Size is the number of records per transaction (spread round-robin over
	// topics and streams like all load); default 10.
	Size int `yaml:"size,omitempty" json:"size,omitempty"`
	// Abort is the fraction of transactions aborted, in [0, 1): transaction
	// n (from 0) is aborted when floor((n+1)*Abort) > floor(n*Abort), so the
	// count is exact (0.2: every fifth).
	Abort float64 `yaml:"abort,omitempty" json:"abort,omitempty"`
	// ExactlyOnce: the mirror claims exactly-once delivery (MirrorMaker 2's
	// exactlyOnce, say): a duplicate then fails the run, even after a kill.
	ExactlyOnce bool `yaml:"exactlyOnce,omitempty" json:"exactlyOnce,omitempty"`
}

// DefaultTxnSize is the records per transaction when Size is unset.
const DefaultTxnSize = 10

// Aborted reports whether transaction n is one the loadgen aborts.
func (t Transactions) Aborted(n uint64) bool {
	return math.Floor(float64(n+1)*t.Abort) > math.Floor(float64(n)*t.Abort)
}

// Fidelity makes the loadgen write records whose every part a mirror must
// copy unchanged, each checked with exact counts (report.json "fidelity").
type Fidelity struct {
	// Headers: every record carries extra headers besides kmt's own: a
	// repeated key, a null value, binary bytes (all 256 byte values turn
	// up), in a fixed order that is a function of (stream, seq). A copy
	// whose headers differ in any way (missing, reordered, changed) counts.
	Headers bool `yaml:"headers,omitempty" json:"headers,omitempty"`
	// Timestamps: the record's CreateTime (the produce time, in ms) must
	// arrive unchanged, timestamp type CreateTime.
	Timestamps bool `yaml:"timestamps,omitempty" json:"timestamps,omitempty"`
	// TombstoneEvery: sequence q of a stream is a tombstone (null value,
	// the stream's key) when q % TombstoneEvery == TombstoneEvery-1; 0: none.
	// Tombstones are records of the ledger like any other: a dropped one is
	// lost. With Compacted the final key -> value maps are compared too.
	TombstoneEvery int `yaml:"tombstoneEvery,omitempty" json:"tombstoneEvery,omitempty"`
	// Compacted: the final key -> value map on the target (the last value
	// of every key, a tombstone deleting it) must equal the source's.
	Compacted bool `yaml:"compacted,omitempty" json:"compacted,omitempty"`
	// LargeEvery and LargeBytes: sequence q of a stream is LargeBytes long
	// when q % LargeEvery == LargeEvery-1 (records near or above the
	// topic's max.message.bytes). They must arrive byte-identical, or the
	// run names the partition the mirror is stuck on.
	LargeEvery int `yaml:"largeEvery,omitempty" json:"largeEvery,omitempty"`
	LargeBytes int `yaml:"largeBytes,omitempty" json:"largeBytes,omitempty"`
	// Compression: the codec the loadgen's producer uses (none, gzip,
	// snappy, lz4, zstd); the codecs the target's batches carry are counted.
	Compression string `yaml:"compression,omitempty" json:"compression,omitempty"`
}

// Compression codecs the loadgen can use.
var Codecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// IsTombstone reports whether sequence seq is a tombstone.
func (f *Fidelity) IsTombstone(seq uint64) bool {
	return f != nil && f.TombstoneEvery > 0 && seq%uint64(f.TombstoneEvery) == uint64(f.TombstoneEvery-1)
}

// IsLarge reports whether sequence seq is a large record. A tombstone is
// never large: its value is null, so a sequence that both rules pick stays a
// tombstone and is not counted as a large record (with largeEvery 50 and
// tombstoneEvery 10 every large record would otherwise have been a null
// value counted as a large one delivered).
func (f *Fidelity) IsLarge(seq uint64) bool {
	return f != nil && f.LargeEvery > 0 && f.LargeBytes > 0 && seq%uint64(f.LargeEvery) == uint64(f.LargeEvery-1) && !f.IsTombstone(seq)
}

// validateLoadModes checks spec.load.transactions and spec.load.fidelity.
func (s *Scenario) validateLoadModes() Errors {
	var es Errors
	ld := &s.Spec.Load
	if t := ld.Transactions; t != nil {
		if t.Size < 1 || t.Size > 10000 {
			es = append(es, s.errAt("spec.load.transactions.size", "must be between 1 and 10000 records, got %d", t.Size))
		}
		if t.Abort < 0 || t.Abort >= 1 || math.IsNaN(t.Abort) {
			es = append(es, s.errAt("spec.load.transactions.abort", "must be a fraction in [0, 1), got %g", t.Abort))
		}
	}
	f := ld.Fidelity
	if f == nil {
		return es
	}
	if f.TombstoneEvery < 0 || f.TombstoneEvery == 1 {
		es = append(es, s.errAt("spec.load.fidelity.tombstoneEvery", "must be 0 (none) or at least 2, got %d", f.TombstoneEvery))
	}
	if f.Compacted && f.TombstoneEvery == 0 {
		es = append(es, s.errAt("spec.load.fidelity.compacted", "compares the final key -> value maps: give tombstoneEvery too, or the map has no deletions to check"))
	}
	if (f.LargeEvery > 0) != (f.LargeBytes > 0) || f.LargeEvery < 0 || f.LargeEvery == 1 || f.LargeBytes < 0 || f.LargeBytes > 16<<20 {
		es = append(es, s.errAt("spec.load.fidelity.largeEvery", "largeEvery (>= 2) and largeBytes (1..16 MiB) go together, got %d and %d", f.LargeEvery, f.LargeBytes))
	}
	if f.LargeEvery > 1 && f.TombstoneEvery > 1 && f.LargeEvery%f.TombstoneEvery == 0 {
		es = append(es, s.errAt("spec.load.fidelity.largeEvery", "largeEvery %d is a multiple of tombstoneEvery %d: every large record would be a tombstone (a null value), so no large record would be written; pick numbers with no common factor, e.g. largeEvery %d", f.LargeEvery, f.TombstoneEvery, f.LargeEvery-1))
	}
	if f.Compression != "" {
		known := false
		for _, c := range Codecs {
			known = known || c == f.Compression
		}
		if !known {
			es = append(es, s.errAt("spec.load.fidelity.compression", "unknown codec %q (use one of %v)", f.Compression, Codecs))
		}
	}
	if ld.Transactions != nil && (f.TombstoneEvery > 0 || f.LargeEvery > 0) {
		es = append(es, s.errAt("spec.load.fidelity", "tombstones and large records are not written in transactions: run them in a scenario without spec.load.transactions"))
	}
	return es
}
