package loadgen

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// The record-fidelity load (Config.Fidelity): records whose every part a
// mirror must copy unchanged. What each record carries is a function of its
// (stream, seq), so the validator checks it without per-record state:
//
//   - Headers: wire.FidelityHeaders after kmt's own header (a repeated key,
//     binary and empty values, a null value, in order).
//   - Tombstones: sequence q with Fidelity.IsTombstone(q) has a null value
//     and wire.TombHeaderKey naming it (no kmt header: there is no value
//     to checksum).
//   - Large records: Fidelity.IsLarge(q) makes the value LargeBytes long.
//   - Compression: the producer's batch codec.
//
// Timestamps need nothing here: every record's CreateTime is its produce
// time, the t= field of its value.

// modeOpts are the client options of the load modes.
func modeOpts(cfg Config) []kgo.Opt {
	opts := txnOpts(cfg)
	if f := cfg.Fidelity; f != nil && f.Compression != "" {
		opts = append(opts, kgo.ProducerBatchCompression(codec(f.Compression)))
	}
	if f := cfg.Fidelity; f != nil && f.LargeBytes > 0 {
		// A record may be larger than kgo's 1 MiB default batch limit;
		// the broker (its max.message.bytes) decides whether it fits.
		opts = append(opts, kgo.ProducerBatchMaxBytes(int32(min(f.LargeBytes+(64<<10), 1<<30))))
	}
	return opts
}

func codec(name string) kgo.CompressionCodec {
	switch name {
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "lz4":
		return kgo.Lz4Compression()
	case "zstd":
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

// checkModes checks Transactions and Fidelity (the scenario validated them
// too; a library caller may not have).
func (cfg *Config) checkModes() error {
	if t := cfg.Transactions; t != nil && (t.Size < 1 || t.Abort < 0 || t.Abort >= 1) {
		return badConfig("transactions: size %d must be >= 1 and abort %g in [0, 1)", t.Size, t.Abort)
	}
	f := cfg.Fidelity
	if f == nil {
		return nil
	}
	if f.LargeBytes < 0 || f.LargeBytes > wire.MaxPadding || f.TombstoneEvery < 0 || f.LargeEvery < 0 {
		return badConfig("fidelity: largeBytes %d (at most %d), largeEvery %d and tombstoneEvery %d must not be negative", f.LargeBytes, wire.MaxPadding, f.LargeEvery, f.TombstoneEvery)
	}
	known := f.Compression == ""
	for _, c := range scenarios.Codecs {
		known = known || c == f.Compression
	}
	if !known {
		return badConfig("fidelity: unknown compression %q (use one of %v)", f.Compression, scenarios.Codecs)
	}
	return nil
}

// recordSize is the value size of sequence seq: LargeBytes for the large
// records of the fidelity load, else size.
func (p *producer) recordSize(size int, seq uint64) int {
	if p.cfg.Fidelity.IsLarge(seq) {
		return p.cfg.Fidelity.LargeBytes
	}
	return size
}

// decorate adds what the load modes put on a record built by send: the
// transaction header, the fidelity headers, a tombstone's null value.
func (p *producer) decorate(rec *kgo.Record, stream uint32, seq uint64) {
	if t := p.txn.Load(); t != nil {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: wire.TxnHeaderKey, Value: t.header})
	}
	f := p.cfg.Fidelity
	if f == nil {
		return
	}
	if f.IsTombstone(seq) {
		rec.Value = nil
		rec.Headers = []kgo.RecordHeader{{Key: wire.TombHeaderKey, Value: wire.TombHeader(p.cfg.RunID, p.cfg.Epoch, seq)}}
	}
	if f.Headers {
		for _, h := range wire.FidelityHeaders(stream, seq) {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
	}
}
