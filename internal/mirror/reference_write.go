package mirror

// The reference mirror's write path: franz-go producers on the target, one
// batch (a round of the copy loop) in flight while the next is fetched.
//
// Why franz-go (kgo) and not kafka-go's Writer, which wrote before: a
// kafka-go WriteMessages call returns only when every partition of the
// write acknowledged, and in its asynchronous mode a partition's later
// batches go on after one failed, so writing the failed one again would
// put it after them (a reorder). The copy loop therefore
// waited for every write before fetching the next batch: at 30000 msgs/s
// on the embedded baseline a round spent 11-32 ms fetching and then 23-41 ms
// writing about 1300 records (docs/bench.md). kgo sends every partition a
// broker leads in one request, keeps up to 5 requests in flight per broker
// with idempotent sequence numbers (so retries keep the order of a
// partition and write nothing twice), and with manual flushing a batch's
// records are all buffered before any is sent, so when one fails kgo fails
// every later record of its partition too (failAllRecords): what failed is
// always a suffix of a partition's records in the batch. The transactional
// path (writeTxn) and the transactional source reader already used kgo.
//
// The rules the pipeline keeps:
//   - At most one batch is in flight (startRound after finishRound). The
//     next batch's records reach the producer only once every record of the
//     previous one has completed, so no record is sent after a failed one of
//     its partition: the failed records are written again first, in order.
//     (Not two batches: kgo fails the records it holds at the moment the
//     broker refuses one; a second batch handed over after that moment,
//     but before the failure reached the mirror, would be sent, and could
//     land, before the rewrite.)
//   - A batch's source offsets (planned with it: upTo) are committed only
//     after every one of its records was acknowledged, failed ones included
//     once rewritten; a later batch's commit follows an earlier one's.
//   - A write stays under writeChunkBytes (plus framing), so a broker's
//     default max.message.bytes (1 MiB) accepts it; a larger record goes
//     alone, through outLarge, after everything before it.

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// writeChunkBytes bounds the bytes of one write: a broker refuses a batch
// above the topic's max.message.bytes (1 MiB by default) whole, so two
// 512 KiB records written together failed MESSAGE_TOO_LARGE on every retry
// and the mirror stood still (record-fidelity, 31 partitions stuck). A
// record larger than this goes alone, as a Java producer sends a record
// above batch.size in a batch of its own; whether it fits is then the
// target topic's max.message.bytes to decide.
const writeChunkBytes = 768 << 10

// batchMaxBytes is the producer's record batch bound: writeChunkBytes plus
// room for kgo's framing, which msgSize's estimate covers per record but
// not per batch, so a record msgSize puts at or under writeChunkBytes
// always fits (kgo fails a record larger than its bound outright).
const batchMaxBytes = writeChunkBytes + 4<<10

// largeMaxBytes bounds a record written alone (what kafka-go's BatchBytes
// allowed before); the target's max.message.bytes decides below it.
const largeMaxBytes = 64 << 20

// maxBuffered is the producer's record limit; with manual flushing a
// Produce beyond it fails, so it stays far above a round (maxBatch
// records, twice that with the duplicate defect, plus held records).
const maxBuffered = 1 << 20

// round is one batch handed to a producer: its records complete (kgo
// promises) while the copy loop goes on.
type round struct {
	batch []kafka.Message // the source records (the test hook's view)
	upTo  map[tp]int64    // source offsets to commit once every record was acknowledged
	out   []kafka.Message // the target records, in order

	ctx    context.Context // done once every record completed or the run was killed
	finish context.CancelFunc
	err    error // the flush's error: the run was killed (set before finish)

	mu      sync.Mutex
	failed  []int          // indexes into out of records that failed
	failErr error          // the first failure
	acked   map[string]int // target topic -> records acknowledged
}

// roundDone reports whether the batch in flight has completed.
func (run *refRun) roundDone() bool {
	return run.inflight != nil && run.inflight.ctx.Err() != nil
}

// abandonRound waits for the flush of the batch in flight to return (it
// returns at once when the run is killed), so the producer is not closed
// under it.
func (run *refRun) abandonRound() {
	if rd := run.inflight; rd != nil {
		<-rd.ctx.Done()
		run.inflight = nil
	}
}

// startRound hands batch's target records to the producer and returns
// while they are written; finishRound completes them. A batch with a
// record above writeChunkBytes, or one whose target partitions cannot be
// checked now, is written synchronously instead (write retries).
func (r *Reference) startRound(run *refRun, batch, out []kafka.Message, upTo map[tp]int64) error {
	if len(out) == 0 { // every record dropped or held
		return r.batchWritten(run, batch, upTo)
	}
	if r.def.transactional() || r.cfg.Transactional || slices.ContainsFunc(out, isLarge) {
		return r.writeThenDone(run, batch, out, upTo)
	}
	cl, err := r.producer(run, out, false)
	if err != nil {
		return r.writeThenDone(run, batch, out, upTo)
	}
	rd := r.produce(run, cl, out)
	rd.batch, rd.upTo = batch, upTo
	run.inflight = rd
	go rd.flush(run.hardCtx, cl)
	return nil
}

// writeThenDone writes out synchronously and completes its batch.
func (r *Reference) writeThenDone(run *refRun, batch, out []kafka.Message, upTo map[tp]int64) error {
	if err := r.write(run, out); err != nil {
		return err
	}
	return r.batchWritten(run, batch, upTo)
}

// finishRound waits for the batch in flight, writes its failed records
// again (in order, until they are acknowledged or the run is killed), and
// starts the commit of its offsets. No batch in flight: nothing to do.
func (r *Reference) finishRound(run *refRun) error {
	rd := run.inflight
	if rd == nil {
		return nil
	}
	<-rd.ctx.Done()
	run.inflight = nil
	failed := r.settle(rd)
	if rd.err != nil {
		return rd.err
	}
	if len(failed) > 0 {
		r.met.errors.WithLabelValues(r.srcOf[failed[0].Topic]).Inc()
		r.log.Warn("write to target failed; writing the failed records again, in order", "records", len(failed), "err", rd.failErr)
		if err := r.write(run, failed); err != nil {
			return err
		}
	}
	return r.batchWritten(run, rd.batch, rd.upTo)
}

// batchWritten: every record of batch is on the target; commit upTo in
// the background.
func (r *Reference) batchWritten(run *refRun, batch []kafka.Message, upTo map[tp]int64) error {
	if r.hook != nil {
		// The previous batch's commit first, so the hook sees exactly
		// this batch written and not committed.
		if err := r.awaitCommit(run); err != nil {
			return err
		}
		r.hook(run.hardCtx, stageWrittenBeforeCommit, batch)
	}
	return r.commitAsync(run, upTo)
}

// write sends msgs to the target and returns once every one of them was
// acknowledged (acks=all), writing failed records again, in order. It
// gives up only when the run is killed. Call it with no batch in flight.
func (r *Reference) write(run *refRun, msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if r.def.transactional() || r.cfg.Transactional {
		return r.writeTxn(run, msgs) // kgo splits its batches by bytes itself
	}
	for len(msgs) > 0 {
		n := pieceLen(msgs)
		if err := r.writePiece(run, msgs[:n]); err != nil {
			return err
		}
		msgs = msgs[n:]
	}
	return nil
}

// writePiece is write for records that share a producer: any number of
// records up to writeChunkBytes each, or one larger record.
func (r *Reference) writePiece(run *refRun, msgs []kafka.Message) error {
	ctx := run.hardCtx
	backoff := retryBackoffLo
	pending := msgs
	for {
		cl, err := r.producer(run, pending, isLarge(pending[0]))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			r.met.errors.WithLabelValues(r.srcOf[pending[0].Topic]).Inc()
			r.log.Warn("preparing the target (partitions, producer) failed; retrying", "err", err)
			sleepCtx(ctx, backoff)
			backoff = min(2*backoff, retryBackoffHi)
			continue
		}
		rd := r.produce(run, cl, pending)
		rd.flush(ctx, cl)
		failed := r.settle(rd)
		if rd.err != nil {
			return rd.err
		}
		if len(failed) == 0 {
			return nil
		}
		r.met.errors.WithLabelValues(r.srcOf[failed[0].Topic]).Inc() // one error per attempt, not per record
		r.log.Warn("write to target failed; retrying the failed records", "records", len(failed), "err", rd.failErr)
		pending = failed
		sleepCtx(ctx, backoff)
		backoff = min(2*backoff, retryBackoffHi)
	}
}

// produce buffers msgs in cl (manual flushing: nothing is sent until the
// flush) and returns their round.
func (r *Reference) produce(run *refRun, cl *kgo.Client, msgs []kafka.Message) *round {
	rd := &round{out: msgs, acked: map[string]int{}}
	rd.ctx, rd.finish = context.WithCancel(context.Background())
	for i := range msgs {
		cl.Produce(run.hardCtx, kgoRecord(msgs[i]), func(rec *kgo.Record, err error) { r.completed(rd, i, rec, err) })
	}
	return rd
}

// flush sends the round's records and returns when every one completed
// (promises included) or ctx ended.
func (rd *round) flush(ctx context.Context, cl *kgo.Client) {
	rd.err = cl.Flush(ctx)
	rd.finish()
}

// completed is a record's promise (kgo calls them one at a time).
func (r *Reference) completed(rd *round, i int, rec *kgo.Record, err error) {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if err != nil {
		rd.failed = append(rd.failed, i)
		if rd.failErr == nil {
			rd.failErr = err
		}
		return
	}
	rd.acked[rec.Topic]++
	r.recordSync(rd.out[i], rec.Offset)
}

// settle counts a completed round's acknowledged records and returns its
// failed ones, in their order.
func (r *Reference) settle(rd *round) []kafka.Message {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	for t, n := range rd.acked {
		r.met.produced.WithLabelValues(r.srcOf[t]).Add(float64(n))
	}
	rd.acked = nil
	slices.Sort(rd.failed)
	failed := make([]kafka.Message, len(rd.failed))
	for j, i := range rd.failed {
		failed[j] = rd.out[i]
	}
	return failed
}

// kgoRecord is m as a kgo record: key, value, headers (nil and empty kept
// apart) and timestamp as they came from the source.
func kgoRecord(m kafka.Message) *kgo.Record {
	rec := &kgo.Record{Topic: m.Topic, Partition: int32(m.Partition), Key: m.Key, Value: m.Value, Timestamp: m.Time}
	if len(m.Headers) > 0 {
		rec.Headers = make([]kgo.RecordHeader, len(m.Headers))
		for i, h := range m.Headers {
			rec.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	return rec
}

// producer returns the producer for msgs (large: outLarge), after making
// sure every partition they name exists on the target; it rebuilds the
// producers after the target grew, so their metadata knows the new
// partitions. Call it with no batch in flight.
func (r *Reference) producer(run *refRun, msgs []kafka.Message, large bool) (*kgo.Client, error) {
	if err := r.ensureTargetPartitions(run, msgs); err != nil {
		return nil, err
	}
	run.topo.Lock()
	gen := run.topoGen
	run.topo.Unlock()
	if gen != run.outGen {
		run.closeProducers()
		run.outGen = gen
	}
	var err error
	if large {
		if run.outLarge == nil {
			run.outLarge, err = r.newProducer(largeMaxBytes)
		}
		return run.outLarge, err
	}
	if run.out == nil {
		run.out, err = r.newProducer(batchMaxBytes)
	}
	return run.out, err
}

// newProducer is an idempotent acks=all producer that keeps each record's
// partition and sends only when flushed.
func (r *Reference) newProducer(batchBytes int32) (*kgo.Client, error) {
	cl, err := r.target("kmt-reference-mirror").NewKgo(
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ManualFlushing(),
		kgo.ProducerBatchMaxBytes(batchBytes),
		kgo.MaxBufferedRecords(maxBuffered),
		// Uncompressed, as kafka-go's writer wrote (kgo would use snappy):
		// compressing costs the shared CPU and proves nothing here.
		kgo.ProducerBatchCompression(kgo.NoCompression()),
	)
	if err != nil {
		return nil, fmt.Errorf("reference mirror: target producer for %v: %w", r.dst, err)
	}
	return cl, nil
}

// closeProducers closes the target producers (records still buffered
// fail: they were not acknowledged, so they are not committed).
func (run *refRun) closeProducers() {
	for _, cl := range []*kgo.Client{run.out, run.outLarge} {
		if cl != nil {
			cl.Close()
		}
	}
	run.out, run.outLarge = nil, nil
}

// isLarge reports whether m goes alone (above writeChunkBytes).
func isLarge(m kafka.Message) bool { return msgSize(m) > writeChunkBytes }

// pieceLen is how many of msgs, from the first, one producer writes: a
// record above writeChunkBytes alone, otherwise every record up to the
// next such one (the producer cuts them into batches of batchMaxBytes).
func pieceLen(msgs []kafka.Message) int {
	if isLarge(msgs[0]) {
		return 1
	}
	for i, m := range msgs {
		if isLarge(m) {
			return i
		}
	}
	return len(msgs)
}

// msgSize estimates a record's bytes on the wire: key, value, headers and
// the record overhead, generously.
func msgSize(m kafka.Message) int {
	size := len(m.Key) + len(m.Value) + 64
	for _, h := range m.Headers {
		size += len(h.Key) + len(h.Value) + 8
	}
	return size
}

// ensureTargetPartitions makes sure every partition msgs name exists on the
// target, growing it first if the source grew and the poller has not
// caught up.
func (r *Reference) ensureTargetPartitions(run *refRun, msgs []kafka.Message) error {
	need := map[string]int{}
	for _, m := range msgs {
		if m.Partition+1 > need[m.Topic] {
			need[m.Topic] = m.Partition + 1
		}
	}
	for topic, n := range need {
		run.topo.Lock()
		have := run.targetN[topic]
		run.topo.Unlock()
		if n > have {
			if err := r.growTarget(run, topic, n); err != nil {
				return err
			}
		}
	}
	return nil
}
