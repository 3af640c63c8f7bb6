package mirror

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// sourceReader is the reference mirror's one source consumer: a franz-go
// group consumer, as MirrorMaker 2 consumes with isolation.level=read_committed.
// franz-go and not kafka-go's Reader, for three reasons:
//   - speed: with it the healthy mirror copied a backlog at 623k-634k
//     records/s and about 2500 CPU ns per record, against 330k-398k and
//     2728-2844 ns with kafka-go's Reader (BenchmarkReferenceBacklog,
//     docs/bench.md "The reference mirror's pipelined writes");
//   - transactions: it drops the records of aborted transactions (by the
//     fetch response's aborted transaction list) and never returns
//     transaction markers; kafka-go can do neither (kafka-go issue #1332),
//     so its reader would copy aborted records and markers;
//   - fidelity: it keeps an empty header value empty (kafka-go's reader
//     makes it null), so every part of a record can arrive as written.
//
// With the copy-aborted defect it reads read_uncommitted: the aborted
// records are copied as ordinary records (markers still skipped), the
// failure the transactional checks must catch. Offsets are committed only
// when the copy loop says so (no autocommit), after the target acknowledged
// the records (at-least-once); the group's committed offsets are where a
// restarted or killed-and-restarted mirror resumes, and a group without
// them starts at the earliest offset.
// fetchPartitionBytes bounds each partition of one source fetch.
const fetchPartitionBytes = 128 << 10

type sourceReader struct {
	cl  *kgo.Client
	buf []*kgo.Record
	// reported takes the errors of a poll that also returned records
	// (franz-go goes on after them, e.g. ErrDataLoss when a partition's
	// log was reset under it): counted and logged, never dropped.
	reported func(error)
}

func (r *Reference) newSourceReader() (*sourceReader, error) {
	iso := kgo.ReadCommitted()
	if r.def.copyAborted {
		iso = kgo.ReadUncommitted()
	}
	cl, err := r.source("kmt-reference-mirror").NewKgo(
		kgo.ConsumerGroup(r.cfg.Group),
		kgo.ConsumeTopics(r.sources...),
		kgo.DisableAutoCommit(),
		kgo.FetchIsolationLevel(iso),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(500*time.Millisecond),
		// franz-go hands over a fetch only when its whole response has
		// arrived. Over a thin WAN (the wan-bandwidth fault: 128 KiB/s) a
		// response holding 1 MiB per partition arrived as one lump every
		// few seconds; at most fetchPartitionBytes a partition keeps the
		// copy flowing about once a second there (TestWANBandwidth: 0.39
		// -> 0.92 of the cap), and a larger record still comes whole
		// (Kafka returns at least one batch). The whole response is not
		// bounded lower: with FetchMaxBytes(128 KiB) the embedded brokers
		// (kfake) let records of aborted transactions through to this
		// read_committed reader (TestCatalogueShort/transactions: 121
		// aborted records copied), which they do not with a per-partition
		// bound.
		kgo.FetchMaxBytes(16<<20),
		kgo.FetchMaxPartitionBytes(fetchPartitionBytes),
		kgo.MetadataMaxAge(time.Second), // partitions added are consumed within about a second
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.RebalanceTimeout(5*time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("reference mirror: source consumer for %v: %w", r.src, err)
	}
	return &sourceReader{cl: cl, reported: func(err error) {
		r.met.errors.WithLabelValues("").Inc()
		r.log.Warn("fetch from source reported an error; going on with the records it returned", "err", err)
	}}, nil
}

// FetchMessage returns the next record, polling when none is buffered.
func (t *sourceReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	for len(t.buf) == 0 {
		// Records first: a poll that took records from the client's
		// buffer as ctx ended still returns them, and dropping them
		// would lose them (their offsets get committed past).
		fs := t.cl.PollRecords(ctx, maxBatch)
		if t.buf = fs.Records(); len(t.buf) > 0 {
			for _, e := range fs.Errors() {
				t.reported(fmt.Errorf("fetching %s[%d]: %w", e.Topic, e.Partition, e.Err))
			}
			break
		}
		if err := ctx.Err(); err != nil {
			return kafka.Message{}, err
		}
		if fs.IsClientClosed() {
			return kafka.Message{}, kgo.ErrClientClosed
		}
		if errs := fs.Errors(); len(errs) > 0 {
			return kafka.Message{}, fmt.Errorf("fetching %s[%d]: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
	}
	rec := t.buf[0]
	t.buf = t.buf[1:]
	m := kafka.Message{Topic: rec.Topic, Partition: int(rec.Partition), Offset: rec.Offset, Key: rec.Key, Value: rec.Value, Time: rec.Timestamp}
	for _, h := range rec.Headers {
		m.Headers = append(m.Headers, kafka.Header{Key: h.Key, Value: h.Value})
	}
	return m, nil
}

// CommitMessages commits offset+1 of each message's partition: the
// next record to read, as Kafka defines a committed offset.
func (t *sourceReader) CommitMessages(ctx context.Context, msgs ...kafka.Message) error {
	offs := map[string]map[int32]kgo.EpochOffset{}
	for _, m := range msgs {
		if offs[m.Topic] == nil {
			offs[m.Topic] = map[int32]kgo.EpochOffset{}
		}
		offs[m.Topic][int32(m.Partition)] = kgo.EpochOffset{Epoch: -1, Offset: m.Offset + 1}
	}
	var cerr error
	t.cl.CommitOffsetsSync(ctx, offs, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				if e := kerr.ErrorForCode(p.ErrorCode); e != nil && cerr == nil {
					cerr = fmt.Errorf("committing %s[%d]: %w", tp.Topic, p.Partition, e)
				}
			}
		}
	})
	return cerr
}

// Close leaves the group without committing anything.
func (t *sourceReader) Close() error {
	t.cl.Close()
	return nil
}
