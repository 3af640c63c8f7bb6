package report

import "fmt"

// Transactions is the verdict of the transactional load (report.json
// "transactions"). Aborted records are in the source log but never
// committed; the ledger knows them, so they are never lost, and a
// read_committed reader of the target must never see one.
type Transactions struct {
	Size          int     `json:"size"`           // records per transaction
	AbortFraction float64 `json:"abort_fraction"` // of transactions aborted by the loadgen
	// Transactions and AbortedTransactions: ended by the loadgen (local
	// runs; 0 when the loadgen ran elsewhere).
	Transactions        uint64 `json:"transactions"`
	AbortedTransactions uint64 `json:"aborted_transactions"`
	AbortedRecords      uint64 `json:"aborted_records"` // from the ledger
	// AbortedCopied: aborted records a read_committed reader of the target
	// saw (the same number as counts.aborted_copied).
	AbortedCopied uint64 `json:"aborted_copied"`
	// Seen: transactions of which at least one record arrived (aborted
	// ones copied included); Torn: committed ones of which some but not
	// all records arrived (TornMissing records missing from them).
	Seen        uint64 `json:"seen"`
	Torn        uint64 `json:"torn"`
	TornMissing uint64 `json:"torn_missing"`
	// ExactlyOnce: the mirror claims exactly-once, so Duplicates (the
	// same number as counts.duplicate) fail the run.
	ExactlyOnce bool   `json:"exactly_once"`
	Duplicates  uint64 `json:"duplicates"`
}

// Fidelity is the verdict of the record-fidelity load (report.json
// "fidelity"): each part of a record the scenario asked about, with exact
// counts. Checked counts this run's records that arrived and were compared.
type Fidelity struct {
	Headers     *Check       `json:"headers,omitempty"`
	Timestamps  *Check       `json:"timestamps,omitempty"`
	Tombstones  *Tombstones  `json:"tombstones,omitempty"`
	Compaction  *Compaction  `json:"compaction,omitempty"`
	Large       *Large       `json:"large,omitempty"`
	Compression *Compression `json:"compression,omitempty"`
}

// Check is one compared property: Changed of Checked arrivals differ.
type Check struct {
	Checked uint64 `json:"checked"`
	Changed uint64 `json:"changed"`
}

// Tombstones: null-value records the source acked, how many arrived (with a
// null value, under their key) and how many did not.
type Tombstones struct {
	Acked     uint64 `json:"acked"`
	Delivered uint64 `json:"delivered"`
	Missing   uint64 `json:"missing"`
}

// Compaction compares the final key -> value maps (the last value of every
// key in offset order, a tombstone deleting the key) of the source and the
// target: Differ keys differ (missing on one side, or another value).
type Compaction struct {
	SourceKeys uint64 `json:"source_keys"`
	TargetKeys uint64 `json:"target_keys"`
	Differ     uint64 `json:"differ"`
	// SourceHeld: on a compacted source topic (cleanup.policy compact),
	// the records of the run its log still held after the drain, from a
	// scan of it; below the records acked, its cleaner ran. Nil: no scan.
	SourceHeld *uint64 `json:"source_held,omitempty"`
	// Examples name a few differing keys.
	Examples []string `json:"examples,omitempty"`
}

// Large: records of Bytes the source acked and how many arrived intact
// (byte-identical: their checksum covers every byte). Stuck names each
// target partition where copying stopped at a large record (the first
// record missing at the target is a large one): never a silent stop.
type Large struct {
	Bytes     int      `json:"bytes"`
	Acked     uint64   `json:"acked"`
	Delivered uint64   `json:"delivered"`
	Stuck     []string `json:"stuck,omitempty"`
}

// Compression: the codec the loadgen wrote with and the codecs of the
// target's batches, by this run's records read (informational: a mirror may
// recompress; the records must still arrive intact).
type Compression struct {
	Codec        string            `json:"codec"`
	TargetCodecs map[string]uint64 `json:"target_codecs"`
}

// sectionReasons are the fail reasons of the transactions and fidelity
// sections.
func (r *Report) sectionReasons() []string {
	var out []string
	add := func(n uint64, format string, a ...any) {
		if n > 0 {
			out = append(out, fmt.Sprintf("%d "+format, append([]any{n}, a...)...))
		}
	}
	if t := r.Transactions; t != nil {
		add(t.Torn, "torn transactions: some but not all of their committed records arrived (%d records missing from them)", t.TornMissing)
		if t.ExactlyOnce {
			add(t.Duplicates, "duplicates although the mirror runs exactly-once")
		}
	}
	f := r.Fidelity
	if f == nil {
		return out
	}
	if f.Headers != nil {
		add(f.Headers.Changed, "records whose headers changed (missing, reordered, other values, null turned empty) of %d checked", f.Headers.Checked)
	}
	if f.Timestamps != nil {
		add(f.Timestamps.Changed, "records whose timestamp changed (not the source's CreateTime) of %d checked", f.Timestamps.Checked)
	}
	if f.Tombstones != nil {
		add(f.Tombstones.Missing, "tombstones (null values) acked by the source that never arrived")
	}
	if f.Compaction != nil {
		add(f.Compaction.Differ, "keys whose final value differs between the source and the target (compacted topic)")
	}
	if f.Large != nil {
		add(uint64(len(f.Large.Stuck)), "target partitions where the mirror is stuck at a large record: %v", f.Large.Stuck)
	}
	return out
}

// writeSections prints the transactions and fidelity sections for a person.
func (r *Report) writeSections(p func(format string, a ...any)) {
	if t := r.Transactions; t != nil {
		p("txns      %d ended, %d aborted (%d records); aborted copied %d; torn %d (%d records missing); exactly-once %v, duplicates %d\n",
			t.Transactions, t.AbortedTransactions, t.AbortedRecords, t.AbortedCopied, t.Torn, t.TornMissing, t.ExactlyOnce, t.Duplicates)
	}
	f := r.Fidelity
	if f == nil {
		return
	}
	if f.Headers != nil {
		p("fidelity  headers changed %d of %d\n", f.Headers.Changed, f.Headers.Checked)
	}
	if f.Timestamps != nil {
		p("fidelity  timestamps changed %d of %d\n", f.Timestamps.Changed, f.Timestamps.Checked)
	}
	if f.Tombstones != nil {
		p("fidelity  tombstones acked %d delivered %d missing %d\n", f.Tombstones.Acked, f.Tombstones.Delivered, f.Tombstones.Missing)
	}
	if f.Compaction != nil {
		p("fidelity  final key map: %d source keys, %d target keys, %d differ\n", f.Compaction.SourceKeys, f.Compaction.TargetKeys, f.Compaction.Differ)
		if h := f.Compaction.SourceHeld; h != nil {
			p("fidelity  compacted source log holds %d of the run's records after the drain\n", *h)
		}
	}
	if f.Large != nil {
		p("fidelity  large records (%d bytes) acked %d delivered %d, stuck partitions %d\n", f.Large.Bytes, f.Large.Acked, f.Large.Delivered, len(f.Large.Stuck))
	}
	if f.Compression != nil {
		p("fidelity  written %s; target batches %v\n", f.Compression.Codec, f.Compression.TargetCodecs)
	}
}
