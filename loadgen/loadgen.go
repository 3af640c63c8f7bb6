// Package loadgen produces sequenced kmt records (internal/wire) to the
// source cluster at a controlled rate and records in a ledger exactly which
// sequences the source acknowledged (acks=all) and which sends failed.
//
// Streams are Kafka keys (wire.Key(stream)); per (topic, stream) the sequence
// starts at 0 and increments by one per message handed to the producer.
// Messages go round-robin over topics, then streams, so every stream of every
// topic gets the same share of the rate.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"log/slog"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/kmt-dev/kafka-mirror-tester/internal/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/internal/wire"
)

// Config configures a load run. Zero values of optional fields take the
// defaults documented on each field.
type Config struct {
	Bootstrap string                                                            // comma-separated source brokers
	Dial      func(ctx context.Context, network, addr string) (net.Conn, error) // optional (embedded: Source.DirectDial)
	Security  kafkaclient.Security                                              // TLS / SASL; zero: plaintext

	Topics []string // source topics; they must exist (the loadgen never creates them)
	RunID  string   // wire.ValidRunID

	// Rate is the target in messages per second over all topics; 0 means
	// as fast as the cluster acknowledges (bounded by MaxInFlight).
	Rate float64
	// MessageSize is the encoded value size in bytes; values below the
	// header size produce header-only records. See Padding.
	MessageSize int
	Streams     int           // streams (keys) per topic, default 1
	Duration    time.Duration // stop after this long; 0: no limit
	Count       int64         // stop after this many messages over all topics; 0: no limit

	Ledger      *ledger.Ledger // filled as acks arrive; nil: a private one
	LedgerTopic string         // optional: also publish the ledger to this topic (ledger.DefaultTopic)

	// MaxInFlight bounds messages handed to the producer but not yet
	// acknowledged or failed, so memory stays bounded when the cluster
	// does not keep up. Default: 64 MiB worth of messages, within [1000, 200000].
	MaxInFlight int

	Registerer prometheus.Registerer // optional
	Logger     *slog.Logger
	Progress   func(Stats) // optional, called about once a second from Run's goroutine
}

// Stats summarises a run. Sent counts messages handed to the producer;
// each ends as exactly one of Acked or Failed, or (only if the final drain
// timed out) neither.
type Stats struct {
	Sent, Acked, Failed uint64
	Elapsed             time.Duration
	// Skipped counts scheduled messages never sent because the producer
	// was more than one second of load behind (the cluster did not keep up).
	Skipped uint64
}

// Rate is the achieved send rate in messages per second.
func (s Stats) Rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Sent) / s.Elapsed.Seconds()
}

// preflightTimeout bounds the metadata check, so an unreachable or hung
// bootstrap fails within it (a var so a test can shorten it).
var preflightTimeout = 10 * time.Second

const (
	drainTimeout  = 10 * time.Second // wait for in-flight completions after stop
	closeTimeout  = 15 * time.Second // writer.Close (bounded by WriteTimeout anyway)
	ledgerTimeout = 15 * time.Second // final ledger topic flush
	chunk         = 1000             // most messages handed to the writer per call
	lingerTime    = 5 * time.Millisecond
)

// msgID is a message's identity, carried in kafka.Message.WriterData so the
// Completion callback knows which (topic, stream, seq) was acked or failed.
type msgID struct {
	topic  int
	stream uint32
	seq    uint64
}

type counters struct {
	sent, acked, failed, bytes *prometheus.CounterVec
	rate                       prometheus.Gauge
}

// perTopic are one topic's counters, looked up once instead of per message.
type perTopic struct{ sent, acked, failed, bytes prometheus.Counter }

func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if ex, ok := are.ExistingCollector.(T); ok {
				return ex // a second run on the same registry keeps counting
			}
		}
		slog.Warn("loadgen: metric not registered", "err", err)
	}
	return c
}

func newCounters(reg prometheus.Registerer) *counters {
	cv := func(name, help string) *prometheus.CounterVec {
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{metrics.LabelTopic}))
	}
	return &counters{
		sent:   cv(metrics.LoadgenSent, "Records handed to the producer."),
		acked:  cv(metrics.LoadgenAcked, "Records the source acknowledged (acks=all)."),
		failed: cv(metrics.LoadgenFailed, "Records whose send failed."),
		bytes:  cv(metrics.LoadgenBytes, "Value bytes the source acknowledged."),
		rate:   register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: metrics.LoadgenRate, Help: "Configured messages per second (0: unlimited)."})),
	}
}

// Padding returns the padding that makes the encoded record r exactly size
// bytes. The "n=" field holds the padding length, so a few sizes just above
// a power of ten of padding cannot be hit exactly; those get the largest
// padding that stays below size (one byte short). Sizes below the header
// give 0.
func Padding(size int, r wire.Record) int {
	base := headerLenWithoutN(r)
	for d := 1; d <= 9; d++ {
		p := size - base - d
		if p < 0 {
			break
		}
		// The first d with digits(p) <= d: exact when equal; when p has
		// fewer digits the record comes out d-digits(p) (one) byte short.
		if digits(uint64(p)) <= d {
			return p
		}
	}
	return 0
}

// headerLenWithoutN is the encoded header length of r (see wire's format)
// without the digits of the "n=" value.
func headerLenWithoutN(r wire.Record) int {
	const fixed = len("kmt1 c=00000000 r=") + len(" s=") + len(" q=") + len(" t=") + len(" n=") + len("|")
	ts := r.ProducedAt.UnixNano()
	tl := 0
	if ts < 0 {
		tl = 1
		ts = -ts
	}
	return fixed + len(r.RunID) + digits(uint64(r.Stream)) + digits(r.Seq) + tl + digits(uint64(ts))
}

func digits(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}

func (cfg *Config) check() error {
	if len(bootstrap.Split(cfg.Bootstrap)) == 0 {
		return fmt.Errorf("loadgen: no bootstrap address (got %q)", cfg.Bootstrap)
	}
	if len(cfg.Topics) == 0 {
		return errors.New("loadgen: no topics to produce to")
	}
	seen := map[string]bool{}
	for _, t := range cfg.Topics {
		if t == "" || seen[t] {
			return fmt.Errorf("loadgen: topic list %q has an empty or repeated name", cfg.Topics)
		}
		seen[t] = true
	}
	if !wire.ValidRunID(cfg.RunID) {
		return fmt.Errorf("loadgen: run id %q is not valid (1..%d of [A-Za-z0-9._-])", cfg.RunID, wire.MaxRunIDLen)
	}
	if cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0) {
		return fmt.Errorf("loadgen: rate %v must be a finite number >= 0 (0: unlimited)", cfg.Rate)
	}
	if cfg.MessageSize < 0 || cfg.MessageSize > wire.MaxPadding {
		return fmt.Errorf("loadgen: message size %d out of range [0, %d]", cfg.MessageSize, wire.MaxPadding)
	}
	if cfg.Streams < 0 || int64(cfg.Streams) > math.MaxUint32 {
		return fmt.Errorf("loadgen: streams %d out of range", cfg.Streams)
	}
	if cfg.Count < 0 || cfg.Duration < 0 || cfg.MaxInFlight < 0 {
		return fmt.Errorf("loadgen: count %d, duration %s and max in-flight %d must not be negative", cfg.Count, cfg.Duration, cfg.MaxInFlight)
	}
	return nil
}

// gen is one run's state shared with the Completion callback.
type gen struct {
	cfg    Config
	log    *slog.Logger
	topics []string
	m      []perTopic // by topic index
	led    *ledger.Ledger

	sent, acked, failed atomic.Uint64
	completed           atomic.Uint64 // acked + failed, for the in-flight bound
	wake                chan struct{} // a completion arrived

	cmu       sync.Mutex // completions vs abandon
	abandoned bool       // drain timed out: late completions must not touch the ledger

	lastErrLog atomic.Int64
}

func (g *gen) complete(msgs []kafka.Message, err error) {
	g.cmu.Lock()
	defer g.cmu.Unlock()
	if g.abandoned {
		return
	}
	for i := range msgs {
		id := msgs[i].WriterData.(msgID)
		k := ledger.StreamKey{Topic: g.topics[id.topic], Stream: id.stream}
		if err == nil {
			g.led.Ack(k, id.seq)
			g.acked.Add(1)
			g.m[id.topic].acked.Inc()
			g.m[id.topic].bytes.Add(float64(len(msgs[i].Value)))
		} else {
			g.led.Fail(k, id.seq)
			g.failed.Add(1)
			g.m[id.topic].failed.Inc()
		}
	}
	if err != nil {
		g.logSendError(len(msgs), err)
	}
	g.completed.Add(uint64(len(msgs)))
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// logSendError logs at most one send error per second.
func (g *gen) logSendError(n int, err error) {
	now := time.Now().UnixNano()
	last := g.lastErrLog.Load()
	if now-last < int64(time.Second) || !g.lastErrLog.CompareAndSwap(last, now) {
		return
	}
	g.log.Warn("produce failed; recorded as failed, not acked", "messages", n, "err", err)
}

func (g *gen) stats(start time.Time, skipped uint64) Stats {
	return Stats{Sent: g.sent.Load(), Acked: g.acked.Load(), Failed: g.failed.Load(), Elapsed: time.Since(start), Skipped: skipped}
}

// preflight checks that the bootstrap answers and every topic exists.
func preflight(ctx context.Context, tr *kafka.Transport, addrs, topics []string) error {
	ctx, cancel := context.WithTimeout(ctx, preflightTimeout)
	defer cancel()
	cl := &kafka.Client{Addr: kafka.TCP(addrs...), Transport: tr, Timeout: preflightTimeout}
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("loadgen: source cluster at %s could not get metadata (%[3]w; gave up after %[2]s); check the bootstrap address and that the brokers are up",
			strings.Join(addrs, ","), preflightTimeout, err)
	}
	found := map[string]bool{}
	for _, t := range md.Topics {
		if t.Error == nil && len(t.Partitions) > 0 {
			found[t.Name] = true
		}
	}
	for _, t := range topics {
		if !found[t] {
			return fmt.Errorf("loadgen: topic %q does not exist on the source cluster at %s; create it first (the loadgen never auto-creates topics)", t, strings.Join(addrs, ","))
		}
	}
	return nil
}

// Run produces until Count messages were sent, Duration passed or ctx ends
// (a normal stop, not an error), then waits (bounded) for in-flight
// completions, closes the producer, marks the ledger done and, with
// LedgerTopic, publishes the final ledger entry. The returned Stats are valid
// even when err != nil after the run started.
func Run(ctx context.Context, cfg Config) (Stats, error) {
	if err := cfg.check(); err != nil {
		return Stats{}, err
	}
	if cfg.Streams == 0 {
		cfg.Streams = 1
	}
	if cfg.MaxInFlight == 0 {
		per := cfg.MessageSize + 256 // value + key + kafka-go's Message and batch overhead
		cfg.MaxInFlight = min(max((64<<20)/per, 1000), 200000)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "loadgen", "run", cfg.RunID)
	led := cfg.Ledger
	if led == nil {
		led = ledger.New()
	}
	addrs := bootstrap.Split(cfg.Bootstrap)

	trCtx, trCancel := context.WithCancel(context.Background())
	defer trCancel() // stops the transport's background goroutines
	// MetadataTTL 1 s (default 6 s): with one attempt per batch, stale
	// leadership after a broker fault turns into failed sends until the
	// next refresh, so refresh often.
	tr, err := kafkaclient.Config{Brokers: addrs, Dial: cfg.Dial, DialTimeout: 5 * time.Second, ClientID: "kmt-loadgen", Security: cfg.Security}.Transport()
	if err != nil {
		return Stats{}, err
	}
	tr.Context, tr.MetadataTTL = trCtx, time.Second
	defer tr.CloseIdleConnections()
	if err := preflight(ctx, tr, addrs, cfg.Topics); err != nil {
		return Stats{}, err
	}

	var tw *ledger.TopicWriter
	if cfg.LedgerTopic != "" {
		var err error
		tw, err = ledger.NewTopicWriter(ctx, ledger.TopicWriterConfig{
			Bootstrap: cfg.Bootstrap, Dial: cfg.Dial, Security: cfg.Security, Topic: cfg.LedgerTopic, RunID: cfg.RunID,
			Ledger: led, Logger: cfg.Logger,
		})
		if err != nil {
			return Stats{}, fmt.Errorf("loadgen: %w", err)
		}
	}

	g := &gen{cfg: cfg, log: log, topics: cfg.Topics, led: led, wake: make(chan struct{}, 1)}
	mc := newCounters(cfg.Registerer)
	mc.rate.Set(cfg.Rate)
	for _, t := range cfg.Topics {
		g.m = append(g.m, perTopic{
			sent: mc.sent.WithLabelValues(t), acked: mc.acked.WithLabelValues(t),
			failed: mc.failed.WithLabelValues(t), bytes: mc.bytes.WithLabelValues(t),
		})
	}

	// Per-key order. kafka-go's Writer keeps one partitionWriter per
	// (topic, partition) whose single goroutine takes batches from a FIFO
	// queue and writes them one at a time, retries included, so at most one
	// produce request per partition is ever in flight and a batch never
	// overtakes an earlier one. We also call WriteMessages from one goroutine
	// only, so batches are filled in sequence order, and kafka.Hash keeps a key
	// on one partition (as long as the partition count does not change).
	//
	// MaxAttempts = 1: kafka-go has no idempotent producer, so a retry after
	// a lost response would write the batch twice, and the validator would
	// blame the mirror for the source's duplicate. With one attempt every
	// sequence is offered exactly once; an error marks it failed (it may or
	// may not be in the log, which is what "failed" means to the validator).
	w := &kafka.Writer{
		Addr:         kafka.TCP(addrs...),
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		MaxAttempts:  1,
		Async:        true,
		Completion:   g.complete,
		BatchSize:    chunk,
		BatchTimeout: lingerTime, // the default 1 s linger would add to every measured latency
		WriteTimeout: 10 * time.Second,
		ReadTimeout:  10 * time.Second,
		Transport:    tr,
	}

	keys := make([][]byte, cfg.Streams)
	for s := range keys {
		keys[s] = wire.Key(uint32(s))
	}
	seqs := make([][]uint64, len(cfg.Topics))
	for i := range seqs {
		seqs[i] = make([]uint64, cfg.Streams)
	}
	ti, si := 0, 0 // next (topic, stream), round-robin
	msgs := make([]kafka.Message, 0, chunk)
	metaCtx := context.Background() // async WriteMessages uses ctx only for the metadata lookup

	log.Info("load started", "topics", cfg.Topics, "rate", cfg.Rate, "size", cfg.MessageSize,
		"streams", cfg.Streams, "duration", cfg.Duration, "count", cfg.Count, "ledger_topic", cfg.LedgerTopic)
	start := time.Now()
	nextProgress := start.Add(time.Second)
	var skipped uint64
	maxBehind := uint64(math.Max(cfg.Rate, 1)) // one second of load
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	wait := func(d time.Duration) bool {
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return false
		case <-g.wake:
		case <-timer.C:
		}
		return true
	}

loop:
	for ctx.Err() == nil {
		now := time.Now()
		el := now.Sub(start)
		sent := g.sent.Load()
		if (cfg.Duration > 0 && el >= cfg.Duration) || (cfg.Count > 0 && sent >= uint64(cfg.Count)) {
			break
		}
		if cfg.Progress != nil && !now.Before(nextProgress) {
			cfg.Progress(g.stats(start, skipped))
			nextProgress = nextProgress.Add(time.Second)
			if nextProgress.Before(now) {
				nextProgress = now.Add(time.Second)
			}
		}
		// Pace without a ticker: how many messages should have been sent
		// by now, minus what was sent (and what was given up on).
		var due uint64
		if cfg.Rate > 0 {
			// +1: the first message goes at t=0, so rate*duration
			// messages fit in the duration (not one fewer).
			due = max(uint64(cfg.Rate*el.Seconds())+1, skipped) - skipped
			if due > sent+maxBehind {
				// More than a second behind (backpressure): drop the excess
				// rather than bursting it at the cluster when it recovers.
				skipped += due - sent - maxBehind
				due = sent + maxBehind
			}
		} else {
			due = sent + chunk
		}
		if cfg.Count > 0 {
			due = min(due, uint64(cfg.Count))
		}
		var n uint64
		if due > sent {
			n = due - sent
		}
		inflight := sent - g.completed.Load()
		room := uint64(0)
		if inflight < uint64(cfg.MaxInFlight) {
			room = uint64(cfg.MaxInFlight) - inflight
		}
		n = min(n, room, chunk)
		if n == 0 {
			d := 50 * time.Millisecond // progress and stop checks
			if room > 0 && cfg.Rate > 0 {
				next := time.Duration(float64(sent+skipped+1) / cfg.Rate * float64(time.Second))
				d = min(d, max(next-el, 0))
			}
			if cfg.Duration > 0 {
				d = min(d, max(cfg.Duration-el, 0))
			}
			if !wait(d) {
				break loop
			}
			continue
		}

		msgs = msgs[:0]
		for range n {
			seq := seqs[ti][si]
			seqs[ti][si]++
			r := wire.Record{RunID: cfg.RunID, Stream: uint32(si), Seq: seq, ProducedAt: time.Now()}
			r.Padding = Padding(cfg.MessageSize, r)
			msgs = append(msgs, kafka.Message{
				Topic:      cfg.Topics[ti],
				Key:        keys[si],
				Value:      wire.Append(make([]byte, 0, max(cfg.MessageSize, 96)), r),
				WriterData: msgID{topic: ti, stream: uint32(si), seq: seq},
			})
			if ti++; ti == len(cfg.Topics) {
				ti = 0
				if si++; si == cfg.Streams {
					si = 0
				}
			}
		}
		g.sent.Add(n)
		for i := range msgs {
			g.m[msgs[i].WriterData.(msgID).topic].sent.Inc()
		}
		if err := w.WriteMessages(metaCtx, msgs...); err != nil {
			// Nothing of this call was queued (the metadata lookup failed
			// before batching): the sequences are spent, so record them
			// as failed to keep each stream's sequences accounted for.
			g.complete(msgs, fmt.Errorf("handing messages to the producer: %w", err))
		}
	}

	// Stop: wait (bounded) for in-flight completions, then close.
	stopped := time.Now()
	elapsed := stopped.Sub(start)
	deadline := stopped.Add(drainTimeout)
	for g.completed.Load() < g.sent.Load() && time.Now().Before(deadline) {
		select {
		case <-g.wake:
		case <-time.After(20 * time.Millisecond):
		}
	}
	closed := make(chan struct{})
	go func() { _ = w.Close(); close(closed) }() // flushes the linger batches too
	select {
	case <-closed:
	case <-time.After(closeTimeout):
		log.Warn("producer did not close in time; its remaining messages stay unknown (neither acked nor failed)", "timeout", closeTimeout)
	}
	g.cmu.Lock()
	g.abandoned = true
	g.cmu.Unlock()
	led.MarkDone()

	st := g.stats(start, skipped)
	st.Elapsed = elapsed
	if unknown := st.Sent - st.Acked - st.Failed; unknown > 0 {
		log.Warn("some sends never completed; they are neither acked nor failed in the ledger", "unknown", unknown)
	}
	if cfg.Progress != nil {
		cfg.Progress(st)
	}
	log.Info("load finished", "sent", st.Sent, "acked", st.Acked, "failed", st.Failed, "skipped", st.Skipped,
		"elapsed", st.Elapsed.Round(time.Millisecond), "rate", math.Round(st.Rate()))

	if tw != nil {
		lctx, cancel := context.WithTimeout(context.Background(), ledgerTimeout)
		defer cancel()
		if err := tw.Close(lctx); err != nil {
			return st, fmt.Errorf("loadgen: %w", err)
		}
	}
	return st, nil
}
