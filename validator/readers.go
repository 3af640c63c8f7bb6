package validator

// The readers: franz-go (kgo) clients that consume whole topics partition by
// partition, with no consumer group (nothing is hidden by a rebalance or a
// committed offset), from each partition's log start. kafka-go could not be
// used here: it neither filters aborted transactions nor skips control
// records (kafka-go issue #1332); kgo implements read_committed.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	bootlist "github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

type role int

const (
	roleTarget      role = iota // the judged reader: read_committed, control records kept
	roleUncommitted             // read_uncommitted runs: what a read_uncommitted consumer sees
	roleSource                  // the source log (source_lost, truncation, the source's order)
)

func (r role) String() string {
	return [...]string{"target", "target read_uncommitted", "source"}[r]
}

// cluster is an admin connection to one cluster.
type cluster struct {
	name  string // "target" | "source" (for messages)
	addrs []string
	dial  DialFunc
	base  []kgo.Opt // every client of this cluster starts from these
	cl    *kgo.Client
	adm   *kadm.Client
}

// clientOpts are the options of a new client of c, then extra.
func (c *cluster) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	return append(append([]kgo.Opt(nil), c.base...), extra...)
}

func dialCluster(ctx context.Context, name, bootstrap string, dial DialFunc, sec kafkaclient.Security) (*cluster, error) {
	addrs := bootlist.Split(bootstrap)
	base, err := kafkaclient.Config{Brokers: addrs, Dial: kafkaclient.DialFunc(dial), ClientID: "kmt-validator", Security: sec}.KgoOpts()
	if err != nil {
		return nil, fmt.Errorf("validator: %s cluster at %s: %w", name, bootstrap, err)
	}
	base = append(base,
		kgo.MetadataMaxAge(2*time.Second), // new partitions are read within ~2 s
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.RetryTimeout(bootstrapTimeout),
	)
	c := &cluster{name: name, addrs: addrs, dial: dial, base: base}
	cl, err := kgo.NewClient(c.clientOpts()...)
	if err != nil {
		return nil, fmt.Errorf("validator: %s cluster at %s: %w", name, bootstrap, err)
	}
	c.cl, c.adm = cl, kadm.NewClient(cl)
	mctx, cancel := context.WithTimeout(ctx, bootstrapTimeout)
	defer cancel()
	if _, err := c.adm.BrokerMetadata(mctx); err != nil {
		cl.Close()
		return nil, fmt.Errorf("validator: %s cluster at %s could not get metadata (%w; gave up after %s); check the bootstrap address and that the brokers are up",
			name, bootstrap, err, bootstrapTimeout)
	}
	return c, nil
}

func (c *cluster) close() {
	if c != nil {
		c.cl.Close()
	}
}

// reader consumes topics of one cluster in one role.
type reader struct {
	role   role
	c      *cluster
	topics []string
	cl     *kgo.Client

	mu  sync.Mutex
	pos map[partKey]int64 // next offset per partition (records and control records)
}

func (r *reader) next(pk partKey) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n, ok := r.pos[pk]
	return n, ok
}

// TargetRead is how far the judged reader has read the target log: the sum
// over its partitions of the offset it reads next. Transaction markers
// count, as they do in end offsets: a count of records read never reaches
// the end offsets of a transactional target (the harness's read-lag meter
// compares the two).
func (v *Validator) TargetRead() int64 {
	var n int64
	for _, rd := range v.readers {
		if rd.role != roleTarget {
			continue
		}
		rd.mu.Lock()
		for _, o := range rd.pos {
			n += o
		}
		rd.mu.Unlock()
	}
	return n
}

func (v *Validator) startReaders() error {
	var targets []string
	for t := range v.toSource {
		targets = append(targets, t)
	}
	sources := v.sourceTopics()
	add := func(rl role, c *cluster, topics []string) error {
		rd, err := newReader(rl, c, topics)
		if err != nil {
			return err
		}
		v.readers = append(v.readers, rd)
		return nil
	}
	if err := add(roleTarget, v.target, targets); err != nil {
		return err
	}
	if v.cfg.Isolation == ReadUncommitted {
		if err := add(roleUncommitted, v.target, targets); err != nil {
			return err
		}
	}
	if v.source != nil {
		if err := add(roleSource, v.source, sources); err != nil {
			return err
		}
	}
	for _, rd := range v.readers {
		v.pauseOthers(rd)
		v.wg.Add(1)
		go v.readLoop(rd)
	}
	return nil
}

func newReader(rl role, c *cluster, topics []string) (*reader, error) {
	iso := kgo.ReadCommitted()
	if rl == roleUncommitted {
		iso = kgo.ReadUncommitted()
	}
	opts := c.clientOpts(append(fetchOpts(iso), kgo.ConsumeTopics(topics...))...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("validator: %s reader: %w", rl, err)
	}
	return &reader{role: rl, c: c, topics: topics, cl: cl, pos: map[partKey]int64{}}, nil
}

// fetchOpts are how every reader fetches: from the log start, at iso, up
// to 64 MiB a fetch and 1 MiB a partition (Kafka's and franz-go's default
// max.partition.fetch.bytes; a larger record still comes whole). The
// benchmark's bare consumer uses them too, so the two are compared on the
// same fetch settings. 16 MiB a partition made a backlog read in a few
// huge fetches: the embedded broker spent more per record building them
// (bare consumer 503-612 CPU ns/record against 362-404 at 1 MiB,
// BenchmarkValidator's reader), and the validator could verify one only
// after all of it had arrived, with nothing left to overlap.
func fetchOpts(iso kgo.IsolationLevel) []kgo.Opt {
	return []kgo.Opt{
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(iso),
		kgo.FetchMaxWait(200 * time.Millisecond),
		kgo.FetchMaxBytes(64 << 20),
		kgo.FetchMaxPartitionBytes(1 << 20),
		// Transaction markers are never records; they are kept only so the
		// reader's position passes them (an aborted transaction's records
		// end in a marker the read_committed reader returns, and a
		// partition's last offset is often a marker: a source written in
		// transactions is never read "to its end" without them).
		kgo.KeepControlRecords(),
	}
}

// decoded is one target record decoded outside the tracker's lock.
type decoded struct {
	o     Observation
	rec   wire.Record
	err   error
	ctl   bool
	out   Outcome
	lat   time.Duration
	first bool
}

// readLoop polls one reader until the validator stops.
//
// The target reader verifies a poll before it polls again. franz-go keeps
// fetching meanwhile (one fetch per broker is buffered), so fetching and
// verifying already overlap; a pipeline that kept polling while verifier
// goroutines worked through the queued polls measured no faster
// (BenchmarkValidator ratio 0.58-0.64 against 0.62-0.64, interleaved, load
// 1.7-1.9; docs/bench.md) and was dropped.
func (v *Validator) readLoop(rd *reader) {
	defer v.wg.Done()
	var lastWarn time.Time
	var td targetDecoding
	for {
		fs := rd.cl.PollFetches(v.ctx)
		if v.ctx.Err() != nil {
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) || time.Since(lastWarn) < 5*time.Second {
				return
			}
			lastWarn = time.Now()
			v.log.Warn("read failed; retrying", "cluster", rd.c.name, "reader", rd.role.String(), "topic", topic, "partition", p, "err", err)
		})
		var parts []kgo.FetchTopicPartition
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 {
				parts = append(parts, p)
			}
		})
		parts = v.ownedParts(rd, parts)
		if rd.role == roleTarget {
			td.observe(v, parts)
		}
		for _, p := range parts {
			switch rd.role {
			case roleSource:
				v.observeSource(p)
			case roleUncommitted:
				v.observeUncommitted(p)
			}
			last := p.Records[len(p.Records)-1].Offset
			rd.mu.Lock()
			rd.pos[partKey{p.Topic, int(p.Partition)}] = last + 1
			rd.mu.Unlock()
		}
	}
}

// targetBlock is how many records a target reader decodes before it takes
// the tracker's lock for them: small enough that the decoded records are
// still in the CPU cache when the tracker reads them (a poll holds up to
// 1 MiB of a partition, about 5,000 records of 200 bytes), large enough
// that the lock is taken rarely.
const targetBlock = 256

// targetDecoding feeds the partitions of one poll to the tracker, each in
// its own goroutine with its own Decoder, in blocks: a block is decoded
// (checksums and padding are pure work) outside the tracker's lock, then
// observed under it, so one partition decodes while another is observed.
type targetDecoding struct {
	decs []wire.Decoder
}

func (td *targetDecoding) observe(v *Validator, parts []kgo.FetchTopicPartition) {
	for len(td.decs) < len(parts) {
		td.decs = append(td.decs, wire.Decoder{})
	}
	now := time.Now()
	if len(parts) == 1 {
		v.observeTarget(parts[0], &td.decs[0], now)
		return
	}
	var wg sync.WaitGroup
	for i := range parts {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			v.observeTarget(parts[i], &td.decs[i], now)
		}(i)
	}
	wg.Wait()
}

func (v *Validator) observeSource(p kgo.FetchTopicPartition) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, r := range p.Records {
		if !r.Attrs.IsControl() {
			v.tr.ObserveSourceRecord(p.Topic, int(p.Partition), r.Offset, r.Key, r.Value, r.Headers) // modes.go: tombstones, the compacted map
		}
	}
}

func (v *Validator) observeUncommitted(p kgo.FetchTopicPartition) {
	source := v.toSource[p.Topic]
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, r := range p.Records {
		if !r.Attrs.IsControl() {
			v.tr.ObserveUncommitted(source, int(p.Partition), r.Offset, r.Value)
		}
	}
}

// decodeRecords decodes records of partition outside the tracker's lock.
func decodeRecords(partition int32, recs []*kgo.Record, batch []decoded, dec *wire.Decoder, now time.Time) []decoded {
	for _, r := range recs {
		// Filled in place: a composite literal appended would be built
		// aside and copied (about 350 bytes a record).
		batch = append(batch, decoded{})
		d := &batch[len(batch)-1]
		d.o.Partition, d.o.Offset, d.o.Key, d.o.Value, d.o.ReadAt = int(partition), r.Offset, r.Key, r.Value, now
		if d.ctl = r.Attrs.IsControl(); d.ctl {
			continue
		}
		for _, h := range r.Headers {
			switch h.Key {
			case wire.HeaderKey:
				d.o.Header, d.o.HasHeader = h.Value, true
			case wire.TxnHeaderKey:
				d.o.Txn = h.Value
			default:
				d.o.Extra = append(d.o.Extra, wire.Header{Key: h.Key, Value: h.Value})
			}
		}
		d.o.Timestamp, d.o.LogAppendTime, d.o.Codec = r.Timestamp, r.Attrs.TimestampType() == 1, r.Attrs.CompressionType()
		d.err = decodeObservationInto(dec, &d.o, &d.rec) // modes.go: tombstones have no value to decode
	}
	return batch
}

// observeTarget feeds a partition's records to the tracker block by block
// (targetDecoding), then counts them in the metrics.
func (v *Validator) observeTarget(p kgo.FetchTopicPartition, dec *wire.Decoder, now time.Time) {
	// The block lives on this goroutine's stack: writing a decoded record
	// (about 350 bytes, a dozen pointers) there needs no GC write barriers,
	// which a heap block pays on every pointer while the collector marks
	// (often, with franz-go allocating every fetch), and nothing has to be
	// cleared to drop the poll's records: the frame goes away.
	var block [targetBlock]decoded
	source := v.toSource[p.Topic]
	tm := v.tm[source]
	var received uint64
	for from := 0; from < len(p.Records); from += targetBlock {
		batch := decodeRecords(p.Partition, p.Records[from:min(from+targetBlock, len(p.Records))], block[:0], dec, now)
		v.mu.Lock()
		for i := range batch {
			d := &batch[i]
			d.o.Topic = source
			if d.ctl {
				v.tr.ObserveControl(source, d.o.Partition, d.o.Offset)
				continue
			}
			d.out, d.lat, d.first = v.tr.ObserveDecoded(&d.o, &d.rec, d.err)
		}
		v.mu.Unlock()
		for i := range batch {
			d := &batch[i]
			switch d.out {
			case OutcomeOK, OutcomeReordered, OutcomeDuplicate:
				if !d.ctl {
					received++
				}
			}
		}
		v.m.latency.observeBlock(source, batch)
	}
	if received > 0 {
		tm.received.Add(float64(received))
		v.m.lastArrival.Set(float64(now.UnixNano()) / 1e9)
	}
}

// caughtUp reports whether every reader of role rl (and, for the target,
// the read_uncommitted one too) has read every partition of topics to its
// end as of now: the last stable offset for read_committed readers, the high
// watermark for read_uncommitted. A partition with nothing readable (empty,
// or purged to its end) is caught up.
func (v *Validator) caughtUp(ctx context.Context, c *cluster, topics []string, rl role) (bool, error) {
	for _, rd := range v.readers {
		if rd.role != rl && !(rl == roleTarget && rd.role == roleUncommitted) {
			continue
		}
		ok, err := v.readerCaughtUp(ctx, c, topics, rd)
		if !ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

func (v *Validator) readerCaughtUp(ctx context.Context, c *cluster, topics []string, rd *reader) (bool, error) {
	lctx, cancel := context.WithTimeout(ctx, bootstrapTimeout)
	defer cancel()
	starts, err := c.adm.ListStartOffsets(lctx, topics...)
	if err != nil {
		return false, err
	}
	var ends kadm.ListedOffsets
	if rd.role == roleUncommitted {
		ends, err = c.adm.ListEndOffsets(lctx, topics...)
	} else {
		ends, err = c.adm.ListCommittedOffsets(lctx, topics...)
	}
	if err != nil {
		return false, err
	}
	for _, topic := range topics {
		ps := ends[topic]
		if len(ps) == 0 {
			return false, &noTopicError{topic: topic, cluster: c.name} // (yet)
		}
		for p, end := range ps {
			if errors.Is(end.Err, kerr.UnknownTopicOrPartition) {
				return false, &noTopicError{topic: topic, cluster: c.name} // (yet)
			}
			if end.Err != nil {
				return false, fmt.Errorf("listing offsets of %s[%d] on the %s cluster: %w", topic, p, c.name, end.Err)
			}
			if !v.owns(int(p)) {
				continue // another shard's
			}
			start, _ := starts.Lookup(topic, p)
			if end.Offset <= start.Offset {
				continue
			}
			if n, ok := rd.next(partKey{topic, int(p)}); !ok || n < end.Offset {
				return false, nil
			}
		}
	}
	return true, nil
}

// probeTimeout bounds one post-purge re-read of the source.
const probeTimeout = 30 * time.Second

// probe re-reads a source partition from a purge's new log start up to
// where the source reader was when the purge was noted.
func (v *Validator) probe(pr Probe) error {
	opts := v.source.clientOpts(
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{pr.Topic: {int32(pr.Partition): kgo.NewOffset().At(pr.From)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(v.ctx, probeTimeout)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("did not reach offset %d: %w", pr.To, err)
		}
		done := false
		v.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				v.tr.ObserveProbe(pr, r.Offset, r.Value)
			}
			done = done || r.Offset+1 >= pr.To
		})
		if done {
			v.tr.ProbeDone(pr)
		}
		v.mu.Unlock()
		if done {
			return nil
		}
	}
}

// stop ends every reader and releases the connections.
func (v *Validator) stop() {
	v.cancel()
	v.wg.Wait()
	for _, rd := range v.readers {
		rd.cl.Close()
	}
	v.closeClusters()
}

func (v *Validator) closeClusters() {
	v.target.close()
	v.source.close()
}

// noTopicError: a topic the validator must read does not exist (yet).
type noTopicError struct{ topic, cluster string }

func (e *noTopicError) Error() string {
	return fmt.Sprintf("topic %q does not exist on the %s cluster", e.topic, e.cluster)
}

// missingTopic is err's text when it says a topic does not exist, else "".
func missingTopic(err error) string {
	var nt *noTopicError
	if errors.As(err, &nt) {
		return "target " + nt.Error()
	}
	return ""
}
