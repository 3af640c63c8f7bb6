package ledger

// The ledger topic carries a Ledger from the loadgen (source datacenter) to
// the validator (target datacenter) in cluster runs. It lives on the SOURCE
// cluster under a name starting with "__" (DefaultTopic) because MirrorMaker 2
// excludes `__.*` topics by default: the ledger must not itself be mirrored,
// or the validator would read a copy that the mirror under test may have lost.
//
// Each record is one JSON Entry keyed by the run id, so all entries of a run
// land on one partition in the order they were written. Every loadgen
// instance writes under its own epoch. The writer publishes only ranges that
// are new since its last flush, numbers its entries (N, from 0 per epoch) and
// repeats a failed write with the very same entries, so an entry written
// twice by a retry is the same entry (merging is idempotent). The Done entry
// is written last, only after every data entry before it was acknowledged,
// and says how many data entries precede it and how many sequences each
// stream acked and failed. A reader merges every entry of its run, reads
// until every epoch it saw is done and the partition is read to its end (it
// does not stop at the first Done entry), and checks that the ledger adds
// up: a missing entry or a total that differs is a Problem of the ledger,
// which makes the verdict incomplete.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	bootlist "github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/intervals"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// DefaultTopic is the ledger topic name kmt uses.
const DefaultTopic = "__kmt_ledger"

// EntryVersion is the Entry format version (field "v") written today. Version
// 1 entries (no N, no totals) are still read, without the adding-up check.
const EntryVersion = 2

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
	Epoch  uint32            `json:"epoch,omitempty"` // the loadgen instance
	N      uint64            `json:"n"`               // index among the epoch's entries, from 0
	Topic  string            `json:"topic,omitempty"`
	Stream uint32            `json:"stream"`
	Acked  []intervals.Range `json:"acked,omitempty"`
	Failed []intervals.Range `json:"failed,omitempty"`
	// Aborted: sequences of transactions the loadgen aborted (added
	// within entry version 2; older readers ignore it).
	Aborted []intervals.Range `json:"aborted,omitempty"`
	Done    bool              `json:"done,omitempty"`
	// Start is when the load started producing (Ledger.MarkStart), on every
	// data entry: a reader of the first entry knows the load's real start.
	Start time.Time `json:"start,omitzero"`
	// Done entries only: the data entries before it (indices 0..Entries-1)
	// and each stream's final counts.
	Entries uint64        `json:"entries,omitempty"`
	Totals  []StreamTotal `json:"totals,omitempty"`
	// Launch is the token the instances of one launch of a run share (an
	// Indexed Job's uid), Instances how many there are: a reader waits for
	// that many done epochs, and a run id whose entries carry another
	// launch is another run's. Claim marks the entry instance 0 writes
	// before any instance produces (not a data entry).
	Launch    string `json:"launch,omitempty"`
	Instances int    `json:"instances,omitempty"`
	Claim     bool   `json:"claim,omitempty"`
}

// StreamTotal is how many sequences of one stream the source acked and how
// many sends failed, as the loadgen knew them when it finished.
type StreamTotal struct {
	Topic   string `json:"topic"`
	Stream  uint32 `json:"stream"`
	Acked   uint64 `json:"acked"`
	Failed  uint64 `json:"failed"`
	Aborted uint64 `json:"aborted,omitempty"`
}

// TopicWriterConfig configures a TopicWriter.
type TopicWriterConfig struct {
	Bootstrap string   // comma-separated source brokers
	Dial      DialFunc // optional
	Security  kafkaclient.Security
	Topic     string // default DefaultTopic
	RunID     string
	Epoch     uint32        // the loadgen instance; only its streams are published
	Ledger    *Ledger       // the ledger to publish
	Interval  time.Duration // flush period, default 1 s
	Logger    *slog.Logger
	// Launch and Instances go on every entry (Entry); Claim: write the
	// launch's claim entry before NewTopicWriter returns (instance 0).
	Launch    string
	Instances int
	Claim     bool
}

// TopicWriter publishes a Ledger's new ranges to the ledger topic about once
// per Interval, and a final Done entry on Close.
type TopicWriter struct {
	cfg       TopicWriterConfig
	log       *slog.Logger
	transport *kafka.Transport
	cancelTr  context.CancelFunc
	writer    *kafka.Writer

	mu sync.Mutex // serialises Flush (loop and Close)
	// assigned holds the ranges already put into an entry; queue the
	// entries not yet acknowledged (a failed write is repeated with exactly
	// these entries); next the next entry index; entries the acknowledged
	// count.
	assigned map[StreamKey]*Stream
	queue    []Entry
	next     uint64
	entries  uint64

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
		assigned: map[StreamKey]*Stream{},
		stop:     make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	if cfg.Claim {
		if err := w.write(ctx, []Entry{w.entry(Entry{Claim: true})}); err != nil {
			w.writer.Close()
			cancel()
			return nil, fmt.Errorf("%w: claiming run %q for launch %q", err, cfg.RunID, cfg.Launch)
		}
		w.entries = 0 // the claim is not a data entry
	}
	go w.loop()
	return w, nil
}

// entry fills e's run, epoch, launch and instances.
func (w *TopicWriter) entry(e Entry) Entry {
	e.V, e.Run, e.Epoch, e.Launch, e.Instances = EntryVersion, w.cfg.RunID, w.cfg.Epoch, w.cfg.Launch, w.cfg.Instances
	return e
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
			return fmt.Errorf("ledger topic: %q created on %s but not visible in metadata: %w (the brokers may be slow to propagate metadata: run again, or create the topic by hand with 1 partition)", topic, strings.Join(addrs, ","), mctx.Err())
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

// pending returns new entries for every range of this epoch's streams that
// the ledger has and no entry has yet, numbering them and marking their
// ranges assigned.
func (w *TopicWriter) pending() []Entry {
	var out []Entry
	start := w.cfg.Ledger.Start() // View holds the ledger's lock
	w.cfg.Ledger.View(func(k StreamKey, s *Stream) {
		if k.Epoch != w.cfg.Epoch {
			return
		}
		p := w.assigned[k]
		if p == nil {
			p = &Stream{}
			w.assigned[k] = p
		}
		var acked, failed, aborted []intervals.Range
		s.Acked.Minus(&p.Acked, func(r intervals.Range) bool { acked = append(acked, r); return true })
		s.Failed.Minus(&p.Failed, func(r intervals.Range) bool { failed = append(failed, r); return true })
		s.Aborted.Minus(&p.Aborted, func(r intervals.Range) bool { aborted = append(aborted, r); return true })
		for len(acked) > 0 || len(failed) > 0 || len(aborted) > 0 {
			e := w.entry(Entry{N: w.next, Topic: k.Topic, Stream: k.Stream, Start: start})
			w.next++
			n := min(len(acked), maxRangesPerEntry)
			e.Acked, acked = acked[:n], acked[n:]
			m := min(len(failed), maxRangesPerEntry-n)
			e.Failed, failed = failed[:m], failed[m:]
			a := min(len(aborted), maxRangesPerEntry-n-m)
			e.Aborted, aborted = aborted[:a], aborted[a:]
			for _, r := range e.Aborted {
				p.Aborted.AddRange(r.Lo, r.Hi)
			}
			for _, r := range e.Acked {
				p.Acked.AddRange(r.Lo, r.Hi)
			}
			for _, r := range e.Failed {
				p.Failed.AddRange(r.Lo, r.Hi)
			}
			out = append(out, e)
		}
	})
	return out
}

// totals returns the final count of every stream of this epoch.
func (w *TopicWriter) totals() []StreamTotal {
	var out []StreamTotal
	w.cfg.Ledger.View(func(k StreamKey, s *Stream) {
		if k.Epoch == w.cfg.Epoch {
			out = append(out, StreamTotal{Topic: k.Topic, Stream: k.Stream, Acked: s.Acked.Len(), Failed: s.Failed.Len(), Aborted: s.Aborted.Len()})
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

// Flush publishes the ranges added to the ledger since the last flush. On
// error the same entries are written again by the next flush (readers merge
// the copies).
func (w *TopicWriter) Flush(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked(ctx)
}

func (w *TopicWriter) flushLocked(ctx context.Context) error {
	w.queue = append(w.queue, w.pending()...)
	if len(w.queue) == 0 {
		return nil
	}
	if err := w.write(ctx, w.queue); err != nil {
		return err
	}
	w.queue = nil
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
		err = w.write(ctx, []Entry{w.entry(Entry{N: w.next, Done: true, Entries: w.next, Totals: w.totals()})})
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
