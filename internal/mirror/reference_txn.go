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

// sourceReader is what the copy loop consumes the source with: kafka-go's
// group reader, or txnSourceReader for a transactional source.
type sourceReader interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// txnSourceReader (Config.FranzSource) consumes the source as MirrorMaker 2
// does with isolation.level=read_committed: a franz-go group consumer, which
// keeps an empty header value empty (kafka-go's reader makes it null) and drops the
// records of aborted transactions (by the fetch response's aborted
// transaction list) and never returns transaction markers. kafka-go can do
// neither (kafka-go issue #1332), so its reader would copy aborted records
// and markers. With the copy-aborted defect it reads read_uncommitted: the
// aborted records are copied as ordinary records (markers still skipped), the
// failure the transactional checks must catch. Offsets are committed only
// when the copy loop says so (no autocommit), like kafka-go's reader with
// CommitInterval 0.
type txnSourceReader struct {
	cl  *kgo.Client
	buf []*kgo.Record
}

func (r *Reference) newTxnSourceReader() (*txnSourceReader, error) {
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
		kgo.FetchMaxBytes(16<<20),
		kgo.MetadataMaxAge(time.Second), // partitions added are consumed within about a second
		kgo.MetadataMinAge(250*time.Millisecond),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.RebalanceTimeout(5*time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("reference mirror: read_committed source consumer for %v: %w", r.src, err)
	}
	return &txnSourceReader{cl: cl}, nil
}

// FetchMessage returns the next record, polling when none is buffered.
func (t *txnSourceReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	for len(t.buf) == 0 {
		// Records first: a poll that took records from the client's
		// buffer as ctx ended still returns them, and dropping them
		// would lose them (their offsets get committed past).
		fs := t.cl.PollRecords(ctx, maxBatch)
		if t.buf = fs.Records(); len(t.buf) > 0 {
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

// CommitMessages commits offset+1 of each message's partition (as kafka-go does).
func (t *txnSourceReader) CommitMessages(ctx context.Context, msgs ...kafka.Message) error {
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
func (t *txnSourceReader) Close() error {
	t.cl.Close()
	return nil
}
