package loadgen

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// The producer is franz-go's kgo (kafka-go's Writer reached 0.5x of a bare
// franz-go producer at 1000-byte records on the same brokers; see the bench
// table in the closing note), configured so the ledger knows exactly which
// sequences were acknowledged and which failed, and so the source log never
// holds a sequence twice:
//
//   - Every record has its own promise: nil error = acknowledged by all
//     in-sync replicas (acks=all), recorded acked; an error = failed (it may
//     or may not be in the log, which is what "failed" means to the
//     validator). Every record handed over gets exactly one promise call;
//     records still unanswered when the loadgen stops are failed by
//     Client.Close, so none stays unknown.
//   - Retries are idempotent (kgo's default idempotent producer): each batch
//     carries a producer id, epoch and per-partition sequence, and the broker
//     appends a retried batch at most once (Kafka dedupes the last 5 batches
//     per producer and partition; kgo keeps at most 5 requests in flight per
//     broker). A retry after a lost response therefore cannot forge a
//     duplicate the validator would blame on the mirror, and kgo fails a
//     batch only when it knows the outcome or it is safe to (after a failed
//     batch it fails everything buffered behind it on that partition and
//     starts a new sequence, so no later sequence overtakes a failed one).
//     A non-idempotent producer with retries can resend a batch that was
//     appended (for instance when a partition moves to another broker while
//     a request is in flight), so idempotence is not optional here.
//   - Per-key order: a key always hashes to one partition (kgo's default,
//     Kafka's murmur2, as long as the partition count does not change) and
//     idempotent batches of a partition are appended in sequence order.
//
// deliveryTimeout bounds how long a record may wait for an answer (broker
// down, paused) before it is failed, where kgo can fail it safely.
const deliveryTimeout = 10 * time.Second

// preflightTimeout bounds the metadata check, so an unreachable or hung
// bootstrap fails within it (a var so a test can shorten it).
var preflightTimeout = 10 * time.Second

// producer is one run's kgo client, schedule state and outcome counters.
type producer struct {
	cfg       Config
	log       *slog.Logger
	cl        *kgo.Client
	m         []perTopic               // by topic index
	keys      [][]byte                 // by stream
	encs      [][]*wire.Encoder        // by topic index, stream
	streams   [][]*ledger.Handle       // by topic index, stream
	seqs      [][]uint64               // next sequence by topic index, stream
	ti, si    int                      // next (topic, stream), round-robin
	sentBatch []int                    // per topic, records of the current send not yet in the metrics
	promise   func(*kgo.Record, error) // p.promised, bound once
	chunks    sync.Pool                // free *sendChunk (send)
	first     uint32                   // the number of stream 0 (Config.Instance)
	clock     clock                    // every record's produce time

	sent, acked, failed atomic.Uint64
	wake                chan struct{} // a completion arrived

	cmu       sync.Mutex // completions vs finish
	closed    bool       // finished: the ledger is done, late completions are dropped
	closeOnce sync.Once

	lastErrLog atomic.Int64

	aborted atomic.Uint64           // records of aborted transactions (transactional.go)
	txn     atomic.Pointer[openTxn] // the transaction being written (cfg.Transactions)
}

func newProducer(ctx context.Context, cfg Config, log *slog.Logger) (*producer, error) {
	addrs := bootstrap.Split(cfg.Bootstrap)
	base, err := kafkaclient.Config{Brokers: addrs, Dial: cfg.Dial, ClientID: "kmt-loadgen", Security: cfg.Security}.KgoOpts()
	if err != nil {
		return nil, badConfig("producer for %s: %v", cfg.Bootstrap, err)
	}
	opts := append(base,
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0), // a linger would add to every measured latency; batches form while requests are in flight
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(cfg.MaxInFlight+2*chunk), // never reached: the in-flight bound comes first
		kgo.RecordDeliveryTimeout(deliveryTimeout),
		kgo.MetadataMinAge(250*time.Millisecond), // find a moved leader quickly after a broker fault
		// see partitions added mid-run within seconds (franz-go's default
		// is 5 min: a short run never wrote to them)
		kgo.MetadataMaxAge(2*time.Second),
	)
	opts = append(opts, modeOpts(cfg)...) // transactional.go, fidelity.go
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, badConfig("producer for %s: %v", cfg.Bootstrap, err)
	}
	if err := preflight(ctx, cl, addrs, cfg.Topics); err != nil {
		cl.Close()
		return nil, err
	}
	p := &producer{cfg: cfg, log: log, cl: cl, wake: make(chan struct{}, 1), first: cfg.firstStream(), clock: clock{start: time.Now()}}
	p.promise = p.promised
	mc := newCounters(cfg.Registerer)
	mc.rate.Set(cfg.Rate)
	for _, t := range cfg.Topics {
		p.m = append(p.m, perTopic{
			sent: mc.sent.WithLabelValues(t), acked: mc.acked.WithLabelValues(t),
			failed: mc.failed.WithLabelValues(t), bytes: mc.bytes.WithLabelValues(t),
		})
		p.seqs = append(p.seqs, make([]uint64, cfg.Streams))
		encs := make([]*wire.Encoder, cfg.Streams)
		for s := range encs {
			encs[s] = wire.NewEncoder(cfg.RunID, t, cfg.Epoch, cfg.firstStream()+uint32(s))
		}
		p.encs = append(p.encs, encs)
		hs := make([]*ledger.Handle, cfg.Streams)
		for s := range hs {
			hs[s] = cfg.Ledger.Handle(ledger.StreamKey{Topic: t, Stream: cfg.firstStream() + uint32(s), Epoch: cfg.Epoch})
		}
		p.streams = append(p.streams, hs)
	}
	for s := range cfg.Streams {
		p.keys = append(p.keys, wire.Key(cfg.firstStream()+uint32(s)))
	}
	return p, nil
}

// preflight checks that the bootstrap answers and every topic exists.
func preflight(ctx context.Context, cl *kgo.Client, addrs, topics []string) error {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	md, err := kadm.NewClient(cl).Metadata(ctx, topics...)
	if err != nil {
		return fmt.Errorf("loadgen: source cluster at %s could not get metadata (%[3]w; gave up after %[2]s); check the bootstrap address and that the brokers are up",
			strings.Join(addrs, ","), preflightTimeout, err)
	}
	for _, t := range topics {
		d, ok := md.Topics[t]
		if !ok || d.Err != nil || len(d.Partitions) == 0 {
			return badConfig("topic %q does not exist on the source cluster at %s; create it first (the loadgen never auto-creates topics)", t, strings.Join(addrs, ","))
		}
	}
	return nil
}

// produce hands records to the client on the pacer's schedule until the
// pacer stops or ctx ends, and returns the send-side Stats.
func (p *producer) produce(ctx context.Context, pacer *Pacer) Stats {
	start := time.Now()
	p.cfg.Ledger.MarkStart(start)
	nextProgress := start.Add(time.Second)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		now := time.Now()
		sent := p.sent.Load()
		if p.cfg.Progress != nil && !now.Before(nextProgress) {
			p.cfg.Progress(Stats{Sent: sent, Acked: p.acked.Load(), Failed: p.failed.Load(), Elapsed: now.Sub(start), Skipped: pacer.Skipped(), Epoch: p.cfg.Epoch})
			if nextProgress = nextProgress.Add(time.Second); nextProgress.Before(now) {
				nextProgress = now.Add(time.Second)
			}
		}
		room := uint64(0)
		if inflight := sent - p.done(); inflight < uint64(p.cfg.MaxInFlight) {
			room = uint64(p.cfg.MaxInFlight) - inflight
		}
		step := pacer.Next(now.Sub(start), sent, room)
		if step.Stop {
			break
		}
		if step.Send == 0 {
			if !p.wait(ctx, timer, step.Wait) {
				break
			}
			continue
		}
		p.send(int(step.Send))
	}
	return Stats{Sent: p.sent.Load(), Elapsed: time.Since(start), Skipped: pacer.Skipped(), Epoch: p.cfg.Epoch}
}

// clock gives every record its produce time: the wall clock at the
// start plus the monotonic time since. time.Now reads two clocks (wall and
// monotonic), which at 100-byte records was 4 % of the loadgen's CPU; the
// monotonic one alone costs half as much, and a produce time taken from it
// cannot jump when the wall clock is stepped mid-run.
type clock struct{ start time.Time }

func (c clock) now() time.Time { return c.start.Add(time.Since(c.start)) }

// done is how many records were answered (acked or failed).
func (p *producer) done() uint64 { return p.acked.Load() + p.failed.Load() + p.aborted.Load() }

// wait sleeps up to d or until a completion arrives; false when ctx ended.
func (p *producer) wait(ctx context.Context, timer *time.Timer, d time.Duration) bool {
	timer.Reset(d)
	defer timer.Stop() // Go >= 1.23 timers: Stop/Reset never deliver a stale tick
	select {
	case <-ctx.Done():
		return false
	case <-p.wake:
	case <-timer.C:
	}
	return true
}

// send encodes n records (round-robin over topics, then streams) and hands
// them to the client. The records, their values, headers and promise data
// live in a sendChunk, reused once every record of it was answered, so a
// steady load allocates nothing per record (the client holds a record only
// until its promise runs).
func (p *producer) send(n int) {
	p.sent.Add(uint64(n)) // before any promise can run, so in-flight never goes negative
	size := p.cfg.MessageSize
	c := p.chunk(n)
	for len(p.sentBatch) < len(p.cfg.Topics) {
		p.sentBatch = append(p.sentBatch, 0)
	}
	for i := range n {
		ti, si := p.ti, p.si
		if p.ti++; p.ti == len(p.cfg.Topics) {
			p.ti = 0
			if p.si++; p.si == p.cfg.Streams {
				p.si = 0
			}
		}
		seq := p.seqs[ti][si]
		p.seqs[ti][si]++
		stream, now := p.first+uint32(si), p.clock.now()
		at := len(c.buf)
		c.buf = p.encs[ti][si].AppendSized(c.buf, seq, now, p.recordSize(size, seq))
		rec, meta := &c.recs[i], &c.metas[i]
		*meta = sendMeta{Context: context.Background(), chunk: c, ti: ti, stream: stream, seq: seq}
		value := c.buf[at:len(c.buf):len(c.buf)]
		// The record's checksum digits as a header: a mirror that rewrites
		// or mixes up headers is caught (wire.HeaderKey).
		c.hdrs[i] = kgo.RecordHeader{Key: wire.HeaderKey, Value: wire.HeaderValue(value)}
		// A whole new Record: a reused one still holds what the client set
		// on its previous send (partition, offset, producer id).
		*rec = kgo.Record{Topic: p.cfg.Topics[ti], Key: p.keys[si], Value: value, Timestamp: now, Context: meta, Headers: c.hdrs[i : i+1 : i+1]}
		p.decorate(rec, stream, seq) // transactional.go, fidelity.go
		p.sentBatch[ti]++
		p.cl.Produce(context.Background(), rec, p.promise)
	}
	for ti, c := range p.sentBatch {
		if c > 0 {
			p.m[ti].sent.Add(float64(c))
			p.sentBatch[ti] = 0
		}
	}
}

// sendChunk is the memory of one send call: its records, their promise
// data, their headers and one buffer holding every encoded value. It goes
// back to the producer's pool when the last of its records is answered.
type sendChunk struct {
	recs  []kgo.Record
	metas []sendMeta
	hdrs  []kgo.RecordHeader
	buf   []byte
	left  atomic.Int32 // records not answered yet
}

// chunk returns a sendChunk for n records, reused when one is free.
func (p *producer) chunk(n int) *sendChunk {
	c, _ := p.chunks.Get().(*sendChunk)
	if c == nil || cap(c.recs) < n {
		c = &sendChunk{recs: make([]kgo.Record, n), metas: make([]sendMeta, n), hdrs: make([]kgo.RecordHeader, n)}
	}
	c.recs, c.metas, c.hdrs = c.recs[:n], c.metas[:n], c.hdrs[:n]
	// Grown to the records' size: Append never reallocates mid-chunk
	// (it may for the fidelity load's large records, which is correct:
	// earlier values keep the old array).
	c.buf = slices.Grow(c.buf[:0], n*max(p.cfg.MessageSize, 128))
	c.left.Store(int32(n))
	return c
}

// sendMeta is what a record's promise needs to record its outcome. It rides
// in the record's Context (kgo's field for enriching records; it is never
// done, so it cancels nothing), so that one promise function serves every
// record instead of a closure allocated per record.
type sendMeta struct {
	context.Context // context.Background()
	chunk           *sendChunk
	ti              int
	stream          uint32
	seq             uint64
}

// promised is every record's promise (see sendMeta). The last answered
// record of a chunk frees the chunk: nothing of it is used after that.
func (p *producer) promised(r *kgo.Record, err error) {
	m := r.Context.(*sendMeta)
	c := m.chunk
	p.complete(m.ti, m.stream, m.seq, len(r.Value), err)
	if c.left.Add(-1) == 0 {
		p.chunks.Put(c)
	}
}

// complete records one record's outcome.
func (p *producer) complete(ti int, stream uint32, seq uint64, size int, err error) {
	if p.cfg.Transactions != nil {
		p.completeInTxn(txnRec{ti, stream, seq, size, err}) // the outcome is known when the transaction ends
		return
	}
	p.cmu.Lock()
	if p.closed {
		p.cmu.Unlock()
		return
	}
	h := p.streams[ti][stream-p.first]
	if err == nil {
		h.Ack(seq)
		p.acked.Add(1)
		p.m[ti].acked.Inc()
		p.m[ti].bytes.Add(float64(size))
	} else {
		h.Fail(seq)
		p.failed.Add(1)
		p.m[ti].failed.Inc()
	}
	p.cmu.Unlock()
	if err != nil {
		p.logSendError(err)
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// logSendError logs at most one send error per second.
func (p *producer) logSendError(err error) {
	now := time.Now().UnixNano()
	last := p.lastErrLog.Load()
	if now-last < int64(time.Second) || !p.lastErrLog.CompareAndSwap(last, now) {
		return
	}
	p.log.Warn("produce failed; recorded as failed, not acked", "err", err)
}

// finish waits up to timeout for every record's answer, then closes the
// client, which fails what is still unanswered (recorded failed), and stops
// further ledger changes.
func (p *producer) finish(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for p.done() < p.sent.Load() && time.Now().Before(deadline) {
		select {
		case <-p.wake:
		case <-time.After(20 * time.Millisecond):
		}
	}
	if left := p.sent.Load() - p.done(); left > 0 {
		p.log.Warn("records unanswered when the load stopped; recorded as failed (they may or may not be in the log)", "records", left, "waited", timeout)
	}
	p.close()
	// Close fails the buffered records; their promises run on kgo's own
	// goroutine, so wait (briefly) for them to be recorded.
	deadline = time.Now().Add(5 * time.Second)
	for p.done() < p.sent.Load() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	p.cmu.Lock()
	p.closed = true
	var unanswered uint64
	for ti, topic := range p.cfg.Topics {
		var n uint64
		for si, sent := range p.seqs[ti] {
			n += p.cfg.Ledger.FailUnanswered(ledger.StreamKey{Topic: topic, Stream: p.first + uint32(si), Epoch: p.cfg.Epoch}, sent)
		}
		p.m[ti].failed.Add(float64(n))
		unanswered += n
	}
	p.failed.Add(unanswered)
	p.cmu.Unlock()
	if unanswered > 0 {
		// Every record sent now has exactly one outcome in the ledger.
		p.log.Error("records never answered even after the producer closed; recorded as failed (they may or may not be in the log)", "records", unanswered)
	}
}

// close releases the client (idempotent; finish normally closed it).
func (p *producer) close() { p.closeOnce.Do(p.cl.Close) }
