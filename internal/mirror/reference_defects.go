package mirror

// The reference mirror's opt-in defects. Each one breaks exactly one rule the
// checker enforces and counts, in kmt_mirror_defect_records_total{defect},
// the records it affected: the self-tests compare the checker's counts with
// these, which the mirror knows without applying any checker rule. Two are
// correct controls the checker must pass (txn-abort-resend, rehash).

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// cbpWindow is how long commit-before-produce waits between committing a
// batch's source offsets and writing it: a kill landing in it loses the
// whole batch (and the mirror knows exactly how many records).
const cbpWindow = 50 * time.Millisecond

// defectHit counts n records affected by a defect.
func (r *Reference) defectHit(name string, n int) {
	if n > 0 {
		r.met.defect.WithLabelValues(name).Add(float64(n))
	}
}

// every reports whether record number n is hit by a defect of period N.
func every(n uint64, N int) bool { return N > 0 && n%uint64(N) == 0 }

// plan numbers the batch's records, applies the defects and returns what to
// write, in order. It advances run.safe for records that are dealt with
// (written by this batch or dropped).
func (r *Reference) plan(run *refRun, batch []kafka.Message) []kafka.Message {
	out := make([]kafka.Message, 0, len(batch)) // sized once: a kafka.Message is large, growing it showed in profiles
	for _, m := range batch {
		r.count++
		n := r.count
		k := tp{m.Topic, m.Partition}
		if r.stalled(m) {
			// Neither written nor marked safe: the group's offset for the
			// partition stops too, as when a task dies.
			r.defectHit(scenarios.DefectPartitionStall, 1)
			continue
		}
		if every(n, r.def.drop) || r.def.dropTombstones && m.Value == nil {
			if r.def.dropTombstones && m.Value == nil {
				r.defectHit(scenarios.DefectDropTombstones, 1)
			} else {
				r.defectHit(scenarios.DefectDrop, 1)
			}
			r.markSafe(run, k, m.Offset)
			continue
		}
		t := r.transform(run, n, m)
		copies := []kafka.Message{t}
		if every(n, r.def.duplicate) {
			copies = append(copies, t)
			r.defectHit(scenarios.DefectDuplicate, 1)
		}
		if every(n, r.def.reorder) {
			// Held back until the next record of its key in this
			// partition, which then overtakes it.
			run.held[k] = append(run.held[k], held{src: m, out: copies})
			continue
		}
		out = append(out, copies...)
		r.markSafe(run, k, m.Offset)
		out = append(out, r.releaseKey(run, k, m.Key)...)
	}
	return out
}

// stalled reports whether the partition-stall defect withholds m: every
// record of the first topic's partition 0 after the first N.
func (r *Reference) stalled(m kafka.Message) bool {
	if r.def.partitionStall == 0 || m.Partition != 0 || m.Topic != r.sources[0] {
		return false
	}
	r.stallCount++
	return r.stallCount > uint64(r.def.partitionStall)
}

// transform builds the target record of source record number n, with the
// per-record defects applied.
func (r *Reference) transform(run *refRun, n uint64, m kafka.Message) kafka.Message {
	t := kafka.Message{Topic: r.dstOf[m.Topic], Partition: m.Partition, Key: m.Key, Value: m.Value, Headers: m.Headers, Time: m.Time,
		WriterData: srcPos{tp{m.Topic, m.Partition}, m.Offset}} // offset syncs (reference_checkpoints.go)
	if r.def.rehash > 0 {
		// Correct control: a mirror may re-hash keys into another
		// partition count; per-key order survives.
		h := fnv.New32a()
		h.Write(m.Key)
		t.Partition = int(h.Sum32() % uint32(r.def.rehash))
	}
	if every(n, r.def.corrupt) && len(t.Value) > 0 {
		t.Value = damage(t.Value, n/uint64(r.def.corrupt))
		r.defectHit(scenarios.DefectCorrupt, 1)
	}
	if every(n, r.def.keyDamage) {
		t.Key = append([]byte("x"), m.Key...)
		r.defectHit(scenarios.DefectKeyDamage, 1)
	}
	if every(n, r.def.topicSwap) && len(r.sources) > 1 {
		for i, s := range r.sources {
			if s == m.Topic {
				t.Topic = r.dstOf[r.sources[(i+1)%len(r.sources)]]
				break
			}
		}
		r.defectHit(scenarios.DefectTopicSwap, 1)
	}
	if every(n, r.def.keyScatter) {
		run.topo.Lock()
		parts := run.targetN[t.Topic]
		run.topo.Unlock()
		if parts > 1 {
			t.Partition = (t.Partition + 1) % parts
			r.defectHit(scenarios.DefectKeyScatter, 1)
		}
	}
	r.fidelityDefects(&t, n)
	if every(n, r.def.headerDamage) {
		hs := make([]kafka.Header, 0, len(t.Headers)+1)
		for _, h := range t.Headers {
			if h.Key != wire.HeaderKey {
				hs = append(hs, h)
			}
		}
		t.Headers = append(hs, kafka.Header{Key: wire.HeaderKey, Value: []byte("damaged!")})
		r.defectHit(scenarios.DefectHeaderDamage, 1)
	}
	return t
}

// damage returns a copy of v with one byte damaged, in turn: the magic
// (a damaged record must still be judged, not called foreign), a digit of
// the sequence number (the header itself, not just the payload) and the
// padding.
func damage(v []byte, turn uint64) []byte {
	v = bytes.Clone(v)
	switch turn % 3 {
	case 0:
		if len(v) > 2 {
			v[2] ^= 0x01 // "kmt3" -> "kmu3"
			return v
		}
	case 1:
		if i := bytes.Index(v, []byte(" q=")); i >= 0 && i+3 < len(v) && v[i+3] >= '0' && v[i+3] <= '9' {
			v[i+3] = '0' + (v[i+3]-'0'+1)%10
			return v
		}
	}
	v[len(v)-1] ^= 0x01
	return v
}

// releaseKey returns the held (reorder) records of partition k with key:
// they are written right after a later record of their key, so each one is
// exactly one record the checker must find reordered.
func (r *Reference) releaseKey(run *refRun, k tp, key []byte) []kafka.Message {
	hs := run.held[k]
	var out []kafka.Message
	keep := hs[:0]
	for _, h := range hs {
		if bytes.Equal(h.src.Key, key) {
			out = append(out, h.out...)
			r.markSafe(run, k, h.src.Offset)
			r.defectHit(scenarios.DefectReorder, 1)
			continue
		}
		keep = append(keep, h)
	}
	if len(keep) == 0 {
		delete(run.held, k)
	} else {
		run.held[k] = keep
	}
	return out
}

// flushHeld releases every held record (no later record of its key came):
// written in order, so not counted as reordered.
func (r *Reference) flushHeld(run *refRun) []kafka.Message {
	var out []kafka.Message
	for k, hs := range run.held {
		for _, h := range hs {
			out = append(out, h.out...)
			r.markSafe(run, k, h.src.Offset)
		}
		delete(run.held, k)
	}
	return out
}

// commitThenWrite is commit-before-produce: the batch's offsets are committed
// first, then (after cbpWindow) it is written. Killed in between, the batch
// is lost and counted; killed during the commit (it may have landed) or the
// write (part may have landed), how much is lost is unknown (counted under
// "commit-before-produce-unsure").
func (r *Reference) commitThenWrite(run *refRun, batch, out []kafka.Message) error {
	r.gateStep(run)
	if err := r.commitOffsets(run, maxOffsets(batch)); err != nil {
		r.defectHit(scenarios.DefectCommitBeforeProduce+"-unsure", len(out))
		return err
	}
	if r.hook != nil {
		r.hook(run.hardCtx, stageCommittedBeforeWrite, batch)
	}
	select {
	case <-run.hardCtx.Done():
		r.defectHit(scenarios.DefectCommitBeforeProduce, len(out))
		return run.hardCtx.Err()
	case <-time.After(cbpWindow):
	}
	r.gateStep(run)
	if err := r.write(run, out); err != nil {
		r.defectHit(scenarios.DefectCommitBeforeProduce+"-unsure", len(out))
		return err
	}
	return nil
}

// writeTxn writes msgs in one transaction of a transactional producer. With
// txn-abort every Nth transaction is aborted and its records are never
// written again (loss); with txn-abort-resend the aborted records are
// written again in the next transaction (correct exactly-once behaviour).
func (r *Reference) writeTxn(run *refRun, msgs []kafka.Message) error {
	if run.txn == nil {
		cl, err := r.newTxnClient()
		if err != nil {
			return err
		}
		run.txn = cl
	}
	r.txns++
	abortN := max(r.def.txnAbort, r.def.txnAbortResend)
	abort := every(r.txns, abortN)
	for {
		err := r.oneTxn(run, msgs, abort)
		switch {
		case err == nil && abort && r.def.txnAbortResend > 0:
			r.defectHit(scenarios.DefectTxnAbortResend, len(msgs))
			abort = false // re-send what was aborted
			continue
		case err == nil && abort:
			r.defectHit(scenarios.DefectTxnAbort, len(msgs))
			return nil
		case err == nil:
			for _, m := range msgs {
				r.met.produced.WithLabelValues(r.srcOf[m.Topic]).Inc()
			}
			// The committed transaction's records are on the target at the
			// offsets oneTxn filled in: each is an offset sync, as the
			// producer's promises make them on the plain path (without
			// this the failover drill found no offsets to translate).
			r.recordSyncs(msgs)
			return nil
		}
		if run.hardCtx.Err() != nil {
			return run.hardCtx.Err()
		}
		r.met.errors.WithLabelValues(r.srcOf[msgs[0].Topic]).Inc()
		r.log.Warn("transactional write to target failed; retrying the transaction", "records", len(msgs), "err", err)
		sleepCtx(run.hardCtx, retryBackoffLo)
	}
}

func (r *Reference) newTxnClient() (*kgo.Client, error) {
	cl, err := r.target("kmt-reference-mirror").NewKgo(
		kgo.TransactionalID("kmt-reference-"+r.cfg.Group),
		kgo.TransactionTimeout(10*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
	)
	if err != nil {
		return nil, fmt.Errorf("reference mirror: transactional producer: %w", err)
	}
	return cl, nil
}

// oneTxn runs one transaction of msgs and commits it, or aborts it when
// abort is set (after every record was acknowledged, so the aborted
// records are really in the log).
func (r *Reference) oneTxn(run *refRun, msgs []kafka.Message, abort bool) error {
	ctx := run.hardCtx
	if err := r.ensureTargetPartitions(run, msgs); err != nil {
		return err
	}
	cl := run.txn
	if err := cl.BeginTransaction(); err != nil {
		return err
	}
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		rec := &kgo.Record{Topic: m.Topic, Partition: int32(m.Partition), Key: m.Key, Value: m.Value, Timestamp: m.Time}
		for _, h := range m.Headers {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		recs[i] = rec
	}
	perr := cl.ProduceSync(ctx, recs...).FirstErr()
	commit := kgo.TryCommit
	if perr != nil || abort {
		commit = kgo.TryAbort
	}
	if err := cl.EndTransaction(ctx, commit); err != nil {
		return errors.Join(perr, err)
	}
	if perr == nil {
		for i, rec := range recs {
			msgs[i].Offset = rec.Offset // where the record landed (offset syncs)
		}
	}
	return perr
}

// closeTxn releases the transactional producer of a run.
func (run *refRun) closeTxn() {
	if run.txn != nil {
		run.txn.Close()
		run.txn = nil
	}
}

// fidelityDefects apply drop-headers (every header but kmt's own, the
// transaction's and the tombstone's: the fidelity headers) and
// rewrite-timestamp (the copy time instead of the source's CreateTime).
func (r *Reference) fidelityDefects(t *kafka.Message, n uint64) {
	if every(n, r.def.dropHeaders) {
		hs := make([]kafka.Header, 0, len(t.Headers))
		for _, h := range t.Headers {
			if h.Key == wire.HeaderKey || h.Key == wire.TxnHeaderKey || h.Key == wire.TombHeaderKey {
				hs = append(hs, h)
			}
		}
		if len(hs) < len(t.Headers) {
			r.defectHit(scenarios.DefectDropHeaders, 1)
		}
		t.Headers = hs
	}
	if every(n, r.def.rewriteTimestamp) && t.Value != nil { // a tombstone's identity is its timestamp
		t.Time = time.Now().Add(time.Second) // a second later: never the same millisecond as CreateTime
		r.defectHit(scenarios.DefectRewriteTimestamp, 1)
	}
}
