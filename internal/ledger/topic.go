package ledger

// The ledger topic carries a Ledger from the loadgen (source datacenter) to
// the validator (target datacenter) in cluster runs. It lives on the SOURCE
// cluster under a name starting with "__" (DefaultTopic) because MirrorMaker 2
// excludes `__.*` topics by default: the ledger must not itself be mirrored,
// or the validator would read a copy that the mirror under test may have lost.
//
// Each record is one JSON Entry keyed by the run id, so all entries of a run
// land on one partition in the order they were written. The writer publishes
// only ranges that are new since its last successful flush; a reader merges
// every entry of its run (merging is idempotent, so an entry written twice by
// a retry does no harm) and stops at the run's Done entry, which is written
// last and only after every data entry before it was acknowledged.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	bootlist "github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/intervals"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// DefaultTopic is the ledger topic name kmt uses.
const DefaultTopic = "__kmt_ledger"

// EntryVersion is the Entry format version (field "v").
const EntryVersion = 1

// maxRangesPerEntry keeps one entry well below Kafka's default 1 MiB message
// limit (a range is at most ~50 JSON bytes).
const maxRangesPerEntry = 4096

// DialFunc dials a broker; nil means net.Dialer. kmt passes the embedded
// cluster's DirectDial so the ledger bypasses the WAN.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Entry is one ledger topic record value.
type Entry struct {
	V      int               `json:"v"`
	Run    string            `json:"run"`
	Topic  string            `json:"topic,omitempty"`
	Stream uint32            `json:"stream"`
	Acked  []intervals.Range `json:"acked,omitempty"`
	Failed []intervals.Range `json:"failed,omitempty"`
	Done   bool              `json:"done,omitempty"`
}

// TopicWriterConfig configures a TopicWriter.
type TopicWriterConfig struct {
	Bootstrap string   // comma-separated source brokers
	Dial      DialFunc // optional
	Security  kafkaclient.Security
	Topic     string // default DefaultTopic
	RunID     string
	Ledger    *Ledger       // the ledger to publish
	Interval  time.Duration // flush period, default 1 s
	Logger    *slog.Logger
}

// TopicWriter publishes a Ledger's new ranges to the ledger topic about once
// per Interval, and a final Done entry on Close.
type TopicWriter struct {
	cfg       TopicWriterConfig
	log       *slog.Logger
	transport *kafka.Transport
	cancelTr  context.CancelFunc
	writer    *kafka.Writer

	mu        sync.Mutex // serialises Flush (loop and Close)
	published map[StreamKey]*Stream
	entries   uint64

	stop     chan struct{}
	loopDone chan struct{}
	closed   bool
}

func newTransport(client kafkaclient.Config) (*kafka.Transport, context.CancelFunc, error) {
	client.ClientID, client.DialTimeout = "kmt-ledger", 5*time.Second
	tr, err := client.Transport()
	if err != nil {
		return nil, nil, err
	}
	// The transport's background goroutines live until its Context ends, so
	// every transport gets its own context that Close cancels.
	ctx, cancel := context.WithCancel(context.Background())
	tr.Context = ctx
	return tr, cancel, nil
}

// NewTopicWriter checks the source cluster, creates the ledger topic (one
// partition) if it does not exist, and starts the periodic flush.
func NewTopicWriter(ctx context.Context, cfg TopicWriterConfig) (*TopicWriter, error) {
	if cfg.Topic == "" {
		cfg.Topic = DefaultTopic
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Ledger == nil {
		return nil, errors.New("ledger topic writer: Ledger is nil")
	}
	if cfg.RunID == "" {
		return nil, errors.New("ledger topic writer: RunID is empty")
	}
	addrs := bootlist.Split(cfg.Bootstrap)
	if len(addrs) == 0 {
		return nil, fmt.Errorf("ledger topic writer: empty bootstrap %q", cfg.Bootstrap)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	tr, cancel, err := newTransport(kafkaclient.Config{Brokers: addrs, Dial: kafkaclient.DialFunc(cfg.Dial), Security: cfg.Security})
	if err != nil {
		return nil, err
	}
	if err := ensureTopic(ctx, tr, addrs, cfg.Topic); err != nil {
		cancel()
		return nil, err
	}
	w := &TopicWriter{
		cfg:       cfg,
		log:       log.With("component", "ledger-topic", "topic", cfg.Topic),
		transport: tr,
		cancelTr:  cancel,
		writer: &kafka.Writer{
			Addr:         kafka.TCP(addrs...),
			Topic:        cfg.Topic,
			Balancer:     &kafka.Hash{}, // key = run id: one partition, entries in order
			RequiredAcks: kafka.RequireAll,
			// Sync writes: a flush returns only when its entries are
			// acknowledged, so the Done entry is always written after them.
			BatchTimeout: 5 * time.Millisecond,
			BatchSize:    1000,
			// Retries may duplicate an entry; merging ranges is idempotent.
			MaxAttempts: 5,
			Transport:   tr,
		},
		published: map[StreamKey]*Stream{},
		stop:      make(chan struct{}),
		loopDone:  make(chan struct{}),
	}
	go w.loop()
	return w, nil
}

// ensureTopic creates topic with one partition unless it exists, then waits
// until metadata shows it.
func ensureTopic(ctx context.Context, tr *kafka.Transport, addrs []string, topic string) error {
	cl := &kafka.Client{Addr: kafka.TCP(addrs...), Transport: tr, Timeout: 10 * time.Second}
	mctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	exists := func() (bool, error) {
		md, err := cl.Metadata(mctx, &kafka.MetadataRequest{Topics: []string{topic}})
		if err != nil {
			return false, fmt.Errorf("ledger topic: source cluster at %s did not answer a metadata request: %w; check the bootstrap address and that the brokers are up", strings.Join(addrs, ","), err)
		}
		for _, t := range md.Topics {
			if t.Name == topic && t.Error == nil && len(t.Partitions) > 0 {
				return true, nil
			}
		}
		return false, nil
	}
	ok, err := exists()
	if err != nil || ok {
		return err
	}
	res, err := cl.CreateTopics(mctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: 1, ReplicationFactor: -1, // -1: the broker's default
	}}})
	if err != nil {
		return fmt.Errorf("ledger topic: creating %q on %s: %w", topic, strings.Join(addrs, ","), err)
	}
	if cerr := res.Errors[topic]; cerr != nil && !errors.Is(cerr, kafka.TopicAlreadyExists) {
		return fmt.Errorf("ledger topic: creating %q on %s: %w; create it by hand (1 partition) or grant CreateTopics", topic, strings.Join(addrs, ","), cerr)
	}
	for {
		if ok, err := exists(); err != nil || ok {
			return err
		}
		select {
		case <-mctx.Done():
			return fmt.Errorf("ledger topic: %q created on %s but not visible in metadata: %w", topic, strings.Join(addrs, ","), mctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (w *TopicWriter) loop() {
	defer close(w.loopDone)
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := w.Flush(ctx); err != nil {
				// Unpublished ranges stay pending and go out with the next flush.
				w.log.Warn("ledger flush failed; will retry", "err", err)
			}
			cancel()
		}
	}
}

// Entries returns how many entries were published so far.
func (w *TopicWriter) Entries() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.entries
}

// pending returns the entries for every range the ledger has and the topic
// does not.
func (w *TopicWriter) pending() []Entry {
	var out []Entry
	w.cfg.Ledger.View(func(k StreamKey, s *Stream) {
		p := w.published[k]
		if p == nil {
			p = &Stream{}
		}
		var acked, failed []intervals.Range
		s.Acked.Minus(&p.Acked, func(r intervals.Range) bool { acked = append(acked, r); return true })
		s.Failed.Minus(&p.Failed, func(r intervals.Range) bool { failed = append(failed, r); return true })
		for len(acked) > 0 || len(failed) > 0 {
			e := Entry{V: EntryVersion, Run: w.cfg.RunID, Topic: k.Topic, Stream: k.Stream}
			n := min(len(acked), maxRangesPerEntry)
			e.Acked, acked = acked[:n], acked[n:]
			m := min(len(failed), maxRangesPerEntry-n)
			e.Failed, failed = failed[:m], failed[m:]
			out = append(out, e)
		}
	})
	return out
}

func (w *TopicWriter) write(ctx context.Context, es []Entry) error {
	msgs := make([]kafka.Message, len(es))
	for i, e := range es {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("ledger topic: encoding entry: %w", err)
		}
		msgs[i] = kafka.Message{Key: []byte(w.cfg.RunID), Value: b}
	}
	if err := w.writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("ledger topic: writing %d entries to %q: %w", len(msgs), w.cfg.Topic, err)
	}
	w.entries += uint64(len(msgs))
	return nil
}

// Flush publishes the ranges added to the ledger since the last successful
// flush. On error nothing is marked published, so the next flush resends
// (readers merge duplicates).
func (w *TopicWriter) Flush(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked(ctx)
}

func (w *TopicWriter) flushLocked(ctx context.Context) error {
	es := w.pending()
	if len(es) == 0 {
		return nil
	}
	if err := w.write(ctx, es); err != nil {
		return err
	}
	for _, e := range es {
		k := StreamKey{Topic: e.Topic, Stream: e.Stream}
		p := w.published[k]
		if p == nil {
			p = &Stream{}
			w.published[k] = p
		}
		for _, r := range e.Acked {
			p.Acked.AddRange(r.Lo, r.Hi)
		}
		for _, r := range e.Failed {
			p.Failed.AddRange(r.Lo, r.Hi)
		}
	}
	return nil
}

// Close stops the periodic flush, publishes what is left and then the run's
// Done entry, and releases the connections. Call it after the ledger is
// complete (the loadgen calls it after Ledger.MarkDone).
func (w *TopicWriter) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.loopDone

	w.mu.Lock()
	err := w.flushLocked(ctx)
	if err == nil {
		err = w.write(ctx, []Entry{{V: EntryVersion, Run: w.cfg.RunID, Done: true}})
	}
	w.mu.Unlock()
	if cerr := w.writer.Close(); cerr != nil && err == nil {
		err = cerr
	}
	w.transport.CloseIdleConnections()
	w.cancelTr()
	if err != nil {
		return fmt.Errorf("ledger topic: final flush for run %q: %w; the validator will not see this run as done", w.cfg.RunID, err)
	}
	return nil
}

// ReadTopic reads every partition of the ledger topic from the start, merges
// the entries of runID into into, and returns once it has seen the run's Done
// entry (into is then MarkDone'd) or ctx ends. Entries of other runs are
// ignored.
func ReadTopic(ctx context.Context, client kafkaclient.Config, topic, runID string, into *Ledger) error {
	if topic == "" {
		topic = DefaultTopic
	}
	if len(client.Brokers) == 0 {
		return errors.New("ledger topic reader: no bootstrap address")
	}
	client.ClientID = "kmt-ledger-reader"
	cl, err := client.NewKgo(
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(250*time.Millisecond), // notice a topic created after we started
	)
	if err != nil {
		return fmt.Errorf("ledger topic reader: client for %s: %w", strings.Join(client.Brokers, ","), err)
	}
	defer cl.Close()
	var seen, bad int
	var lastErr error
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("ledger topic %q on %s: done entry of run %q not seen before %w (read %d entries of the run, %d undecodable; last fetch error: %v); is the loadgen still running?",
				topic, strings.Join(client.Brokers, ","), runID, ctx.Err(), seen, bad, lastErr)
		}
		fs.EachError(func(t string, p int32, err error) { lastErr = fmt.Errorf("%s[%d]: %w", t, p, err) })
		done := false
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Key) != runID {
				return
			}
			var e Entry
			if err := json.Unmarshal(r.Value, &e); err != nil || e.V != EntryVersion || e.Run != runID {
				bad++
				return
			}
			seen++
			if e.Done {
				done = true
				return
			}
			into.AddRanges(StreamKey{Topic: e.Topic, Stream: e.Stream}, e.Acked, e.Failed)
		})
		if done {
			into.MarkDone()
			return nil
		}
	}
}
