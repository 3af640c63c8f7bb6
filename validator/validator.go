package validator

import (
	"context"
	"errors"
	"fmt"
	bootlist "github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/internal/wire"
)

// DialFunc dials a broker; nil means a plain net.Dialer. The runner passes the
// embedded cluster's DirectDial so kmt's own clients bypass the WAN.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// TopicPair maps a source topic to the target topic the mirror writes it to.
type TopicPair struct{ Source, Target string }

// Config configures a Validator.
type Config struct {
	TargetBootstrap string
	TargetDial      DialFunc
	// SourceBootstrap enables the source reader (source_lost, truncated);
	// "" disables it. SourceDial routes its connections.
	SourceBootstrap string
	SourceDial      DialFunc
	// Security (TLS, SASL) for both clusters; zero: plaintext.
	Security kafkaclient.Security
	Topics   []TopicPair
	RunID    string
	Ledger   *ledger.Ledger // local runs
	// LedgerTopic: cluster runs read the ledger from this topic on the
	// source cluster (needs SourceBootstrap); used when Ledger is nil.
	LedgerTopic string
	Examples    int // per category, default 5
	Registerer  prometheus.Registerer
	Logger      *slog.Logger
}

// Result is the validator's verdict material.
type Result struct {
	Counts    Counts               `json:"counts"`
	Truncated uint64               `json:"truncated"`
	OtherRuns uint64               `json:"other_runs"`
	Examples  map[string][]Example `json:"examples"`
	Latency   Latency              `json:"latency"`
	Streams   int                  `json:"streams"`
	// DrainComplete: every stream's last acked sequence arrived and every
	// target partition was read to its end before the deadline.
	DrainComplete bool    `json:"drain_complete"`
	DrainSeconds  float64 `json:"drain_seconds"`
	// SourceChecked: the source log was read to its end, so source_lost
	// was judged. SourceNote says why not when it is false.
	SourceChecked bool              `json:"source_checked"`
	SourceNote    string            `json:"source_note,omitempty"`
	PerTopic      map[string]Counts `json:"per_topic"`
	FirstArrival  time.Time         `json:"first_arrival"`
	LastArrival   time.Time         `json:"last_arrival"`
	// LedgerProblems say why the ledger read from the ledger topic does not
	// add up (ledger.Ledger.Problems): the verdict must be incomplete, since
	// a missing ledger entry cannot be told from loss.
	LedgerProblems []string `json:"ledger_problems,omitempty"`
}

// bootstrapTimeout bounds how long Start waits for a cluster to answer.
const bootstrapTimeout = 10 * time.Second

// partitionCheckEvery is how often topics are re-checked for new partitions.
const partitionCheckEvery = 2 * time.Second

type vmetrics struct {
	received    *prometheus.CounterVec
	anomaly     *prometheus.CounterVec
	missing     *prometheus.GaugeVec
	latency     *prometheus.HistogramVec
	lag         *prometheus.GaugeVec
	lastArrival prometheus.Gauge
}

// topicMetrics caches the per-topic children so the hot path does no label
// lookups.
type topicMetrics struct {
	received, dup, redeliv, reord, corrupt, foreign prometheus.Counter
	latency                                         prometheus.Observer
}

type cluster struct {
	name   string // "target" | "source" (for messages)
	addrs  []string
	dial   DialFunc
	dialer *kafka.Dialer // for the per-partition readers
	client *kafka.Client
	tr     *kafka.Transport
}

type reader struct {
	topic     string // the topic read (target or source name)
	partition int
	next      atomic.Int64 // next offset to read; -1 before the first record
}

// Validator reads the target (and source) clusters and feeds a Tracker.
type Validator struct {
	cfg Config
	log *slog.Logger
	led *ledger.Ledger
	m   vmetrics
	tm  map[string]*topicMetrics // source topic -> metrics

	toSource map[string]string // target topic -> source topic

	mu sync.Mutex // guards tr
	tr *Tracker

	target, source *cluster

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool

	rmu        sync.Mutex
	tgtReaders map[partKey]*reader
	srcReaders map[partKey]*reader
	ledgerErr  atomic.Value // error from the ledger topic reader
}

// New checks cfg and registers the metrics; Start begins reading.
func New(cfg Config) (*Validator, error) {
	if len(cfg.Topics) == 0 {
		return nil, errors.New("validator: no topics; set Config.Topics")
	}
	if !wire.ValidRunID(cfg.RunID) {
		return nil, fmt.Errorf("validator: invalid run id %q (1..64 of [A-Za-z0-9._-])", cfg.RunID)
	}
	if len(bootlist.Split(cfg.TargetBootstrap)) == 0 {
		return nil, fmt.Errorf("validator: empty target bootstrap %q", cfg.TargetBootstrap)
	}
	led := cfg.Ledger
	if led == nil {
		if cfg.LedgerTopic == "" {
			return nil, errors.New("validator: neither Ledger nor LedgerTopic set: the validator must know what the source acked")
		}
		if cfg.SourceBootstrap == "" {
			return nil, fmt.Errorf("validator: LedgerTopic %q needs SourceBootstrap (the ledger topic lives on the source cluster)", cfg.LedgerTopic)
		}
		led = ledger.New()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry() // private: metrics still work, nobody scrapes them
	}
	v := &Validator{
		cfg:        cfg,
		log:        log.With("component", "validator"),
		led:        led,
		tm:         map[string]*topicMetrics{},
		toSource:   map[string]string{},
		tgtReaders: map[partKey]*reader{},
		srcReaders: map[partKey]*reader{},
	}
	for _, p := range cfg.Topics {
		if p.Source == "" || p.Target == "" {
			return nil, fmt.Errorf("validator: topic pair %+v needs both Source and Target", p)
		}
		if prev, ok := v.toSource[p.Target]; ok && prev != p.Source {
			return nil, fmt.Errorf("validator: target topic %q mirrors two source topics (%q, %q)", p.Target, prev, p.Source)
		}
		v.toSource[p.Target] = p.Source
	}
	v.m = vmetrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metrics.ValidatorReceived,
			Help: "This run's intact records read from the target (duplicates in, re-reads out)."}, []string{metrics.LabelTopic}),
		anomaly: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metrics.ValidatorAnomaly,
			Help: "Anomalous target records by category."}, []string{metrics.LabelTopic, metrics.LabelCategory}),
		missing: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metrics.ValidatorMissing,
			Help: "Acked sequences missing at the target by category (live; final after the drain)."}, []string{metrics.LabelTopic, metrics.LabelCategory}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: metrics.ValidatorLatency,
			Help: "Target read time minus produce time.", Buckets: metrics.LatencyBuckets}, []string{metrics.LabelTopic}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metrics.ValidatorLag,
			Help: "Acked minus distinct received records."}, []string{metrics.LabelTopic}),
		lastArrival: prometheus.NewGauge(prometheus.GaugeOpts{Name: metrics.ValidatorLastArrival,
			Help: "Wall time of the last intact arrival (Unix seconds)."}),
	}
	for _, c := range []prometheus.Collector{v.m.received, v.m.anomaly, v.m.missing, v.m.latency, v.m.lag, v.m.lastArrival} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("validator: registering metrics: %w (one validator per registry)", err)
		}
	}
	for _, p := range cfg.Topics {
		t := p.Source
		if v.tm[t] != nil {
			continue
		}
		v.tm[t] = &topicMetrics{
			received: v.m.received.WithLabelValues(t),
			dup:      v.m.anomaly.WithLabelValues(t, CatDuplicate),
			redeliv:  v.m.anomaly.WithLabelValues(t, CatRedelivery),
			reord:    v.m.anomaly.WithLabelValues(t, CatReordered),
			corrupt:  v.m.anomaly.WithLabelValues(t, CatCorrupt),
			foreign:  v.m.anomaly.WithLabelValues(t, CatForeign),
			latency:  v.m.latency.WithLabelValues(t),
		}
		for _, c := range []string{CatLost, CatUnseen, CatSourceLost} {
			v.m.missing.WithLabelValues(t, c).Set(0)
		}
		v.m.lag.WithLabelValues(t).Set(0)
	}
	return v, nil
}

// client is how the validator reaches one cluster.
func (v *Validator) client(addrs []string, dial DialFunc) kafkaclient.Config {
	return kafkaclient.Config{Brokers: addrs, Dial: kafkaclient.DialFunc(dial), DialTimeout: 5 * time.Second, ClientID: "kmt-validator", Security: v.cfg.Security}
}

func (v *Validator) newCluster(ctx context.Context, name, bootstrap string, dial DialFunc) (*cluster, error) {
	addrs := bootlist.Split(bootstrap)
	tr, err := v.client(addrs, dial).Transport()
	if err != nil {
		return nil, err
	}
	tr.Context, tr.MetadataTTL = ctx, time.Second
	dialer, err := v.client(addrs, dial).Dialer()
	if err != nil {
		return nil, err
	}
	c := &cluster{name: name, addrs: addrs, dial: dial, dialer: dialer, tr: tr,
		client: &kafka.Client{Addr: kafka.TCP(addrs...), Transport: tr, Timeout: bootstrapTimeout}}
	mctx, cancel := context.WithTimeout(ctx, bootstrapTimeout)
	defer cancel()
	if _, err := c.client.Metadata(mctx, &kafka.MetadataRequest{}); err != nil {
		tr.CloseIdleConnections()
		return nil, fmt.Errorf("validator: %s cluster at %s could not get metadata (%[4]w; gave up after %[3]s); check the bootstrap address and that the brokers are up",
			name, bootstrap, bootstrapTimeout, err)
	}
	return c, nil
}

// Start connects to the clusters (an unreachable bootstrap is an error
// within ~10 s naming it) and starts the readers, which run until Drain
// returns or ctx ends.
func (v *Validator) Start(ctx context.Context) error {
	if v.started {
		return errors.New("validator: Start called twice")
	}
	v.ctx, v.cancel = context.WithCancel(ctx)
	v.mu.Lock()
	if v.tr == nil { // NoteTruncation may have come first
		v.tr = NewTracker(v.cfg.RunID, v.cfg.Examples, time.Now())
	}
	v.mu.Unlock()
	var err error
	if v.target, err = v.newCluster(v.ctx, "target", v.cfg.TargetBootstrap, v.cfg.TargetDial); err != nil {
		v.cancel()
		return err
	}
	if v.cfg.SourceBootstrap != "" {
		if v.source, err = v.newCluster(v.ctx, "source", v.cfg.SourceBootstrap, v.cfg.SourceDial); err != nil {
			v.cancel()
			return err
		}
	}
	v.started = true
	for tgt := range v.toSource {
		v.goWatch(v.target, tgt, false)
	}
	if v.source != nil {
		seen := map[string]bool{}
		for _, p := range v.cfg.Topics {
			if !seen[p.Source] {
				seen[p.Source] = true
				v.goWatch(v.source, p.Source, true)
			}
		}
	}
	if v.cfg.Ledger == nil {
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			err := ledger.ReadTopicWith(v.ctx, v.client(bootlist.Split(v.cfg.SourceBootstrap), v.cfg.SourceDial), v.cfg.LedgerTopic, v.cfg.RunID, v.led)
			if err != nil {
				v.ledgerErr.Store(err)
				if v.ctx.Err() == nil {
					v.log.Error("reading the ledger topic failed", "topic", v.cfg.LedgerTopic, "err", err)
				}
			}
		}()
	}
	v.wg.Add(1)
	go v.liveLoop()
	return nil
}

// goWatch starts the partition watcher of one topic: readers for every
// partition now and for partitions added later.
func (v *Validator) goWatch(c *cluster, topic string, isSource bool) {
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		warned := false
		started := 0
		t := time.NewTicker(partitionCheckEvery)
		defer t.Stop()
		for {
			n, err := v.partitions(c, topic)
			switch {
			case err != nil && v.ctx.Err() == nil:
				v.log.Warn("partition check failed; will retry", "cluster", c.name, "topic", topic, "err", err)
			case n == 0 && !warned:
				warned = true
				v.log.Info("topic does not exist yet; waiting for it (the mirror may create it)", "cluster", c.name, "topic", topic)
			}
			for p := started; p < n; p++ {
				v.startReader(c, topic, p, isSource)
			}
			if n > started {
				if started > 0 {
					v.log.Info("topic gained partitions; reading the new ones", "cluster", c.name, "topic", topic, "from", started, "to", n)
				}
				started = n
			}
			select {
			case <-v.ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// partitions returns the partition count of topic (0 if it does not exist).
func (v *Validator) partitions(c *cluster, topic string) (int, error) {
	ctx, cancel := context.WithTimeout(v.ctx, bootstrapTimeout)
	defer cancel()
	md, err := c.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, err
	}
	for _, t := range md.Topics {
		if t.Name == topic && t.Error == nil {
			return len(t.Partitions), nil
		}
	}
	return 0, nil
}

func (v *Validator) startReader(c *cluster, topic string, partition int, isSource bool) {
	rd := &reader{topic: topic, partition: partition}
	rd.next.Store(-1)
	v.rmu.Lock()
	if isSource {
		v.srcReaders[partKey{topic, partition}] = rd
	} else {
		v.tgtReaders[partKey{topic, partition}] = rd
	}
	v.rmu.Unlock()
	// One reader per partition and no GroupID: nothing is hidden by a
	// consumer-group rebalance or a committed offset.
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        c.addrs,
		Topic:          topic,
		Partition:      partition,
		Dialer:         c.dialer,
		MinBytes:       1,
		MaxBytes:       16 << 20,
		MaxWait:        200 * time.Millisecond,
		ReadBackoffMin: 20 * time.Millisecond,
		ReadBackoffMax: 500 * time.Millisecond,
		StartOffset:    kafka.FirstOffset,
	})
	source := v.toSource[topic]
	tm := v.tm[source]
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		defer r.Close()
		var lastWarn time.Time
		for {
			msg, err := r.ReadMessage(v.ctx)
			if err != nil {
				if v.ctx.Err() != nil {
					return
				}
				if time.Since(lastWarn) > 5*time.Second {
					lastWarn = time.Now()
					v.log.Warn("read failed; retrying", "cluster", c.name, "topic", topic, "partition", partition, "err", err)
				}
				select {
				case <-v.ctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
				continue
			}
			now := time.Now()
			if isSource {
				v.mu.Lock()
				v.tr.ObserveSource(topic, partition, msg.Offset, msg.Value)
				v.mu.Unlock()
				rd.next.Store(msg.Offset + 1)
				continue
			}
			// Decoding (checksum, padding) is pure: done outside the lock so
			// partitions decode in parallel.
			rec, derr := wire.Decode(msg.Value)
			v.mu.Lock()
			out, lat, ok := v.tr.ObserveDecoded(Observation{Topic: source, Partition: partition, Offset: msg.Offset, Value: msg.Value, ReadAt: now}, rec, derr)
			v.mu.Unlock()
			rd.next.Store(msg.Offset + 1)
			v.count(tm, out, lat, ok, now)
		}
	}()
}

func (v *Validator) count(tm *topicMetrics, out Outcome, lat time.Duration, ok bool, now time.Time) {
	switch out {
	case OutcomeDuplicate:
		tm.dup.Inc()
	case OutcomeRedelivery:
		tm.redeliv.Inc()
	case OutcomeReordered:
		tm.reord.Inc()
	case OutcomeCorrupt:
		tm.corrupt.Inc()
	case OutcomeForeign:
		tm.foreign.Inc()
	}
	if ok {
		tm.received.Inc()
		tm.latency.Observe(lat.Seconds())
		v.m.lastArrival.Set(float64(now.UnixNano()) / 1e9)
	}
}

// liveLoop refreshes the missing and lag gauges about once a second.
func (v *Validator) liveLoop() {
	defer v.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-v.ctx.Done():
			return
		case <-t.C:
			v.mu.Lock()
			j := v.tr.Judge(v.led, false, false)
			v.mu.Unlock()
			v.setGauges(j, false)
		}
	}
}

func (v *Validator) setGauges(j Judgement, final bool) {
	for topic, c := range j.PerTopic {
		if v.tm[topic] == nil {
			continue // a ledger topic this validator does not read: no series
		}
		v.m.missing.WithLabelValues(topic, CatLost).Set(float64(c.Lost))
		v.m.missing.WithLabelValues(topic, CatUnseen).Set(float64(c.Unseen))
		if final {
			v.m.missing.WithLabelValues(topic, CatSourceLost).Set(float64(c.SourceLost))
		}
		distinct := c.Received - c.Duplicate
		lag := 0.0
		if c.Acked > distinct {
			lag = float64(c.Acked - distinct)
		}
		v.m.lag.WithLabelValues(topic).Set(lag)
	}
}

// NoteTruncation tells the validator that the harness deleted every record
// below logStart[partition] of sourceTopic on the source cluster.
func (v *Validator) NoteTruncation(sourceTopic string, logStart map[int]int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tr == nil {
		v.tr = NewTracker(v.cfg.RunID, v.cfg.Examples, time.Now())
	}
	v.tr.NoteTruncation(sourceTopic, logStart)
}

// Live returns the current counts (lost/unseen as of now) for progress lines.
func (v *Validator) Live() Counts {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tr == nil {
		return Counts{}
	}
	return v.tr.Judge(v.led, false, false).Total
}

// Arrivals returns records received per 100 ms since Start (newest 30 min).
func (v *Validator) Arrivals() []Bucket {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tr == nil {
		return nil
	}
	return v.tr.Arrivals()
}

// LatencyTimeline returns the per-second latency medians since Start.
func (v *Validator) LatencyTimeline() []LatencyPoint {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tr == nil {
		return nil
	}
	return v.tr.LatencyTimeline()
}

// caughtUp reports whether every reader of c has read its partition to the
// end as of now (and every partition has a reader). For the source it also
// resolves pending truncations of partitions with nothing left to read.
func (v *Validator) caughtUp(ctx context.Context, c *cluster, topics []string, readers map[partKey]*reader, isSource bool) (bool, error) {
	for _, topic := range topics {
		n, err := v.partitions(c, topic)
		if err != nil {
			return false, err
		}
		if n == 0 {
			return false, nil
		}
		reqs := make([]kafka.OffsetRequest, 0, 2*n)
		for p := 0; p < n; p++ {
			reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
		}
		lctx, cancel := context.WithTimeout(ctx, bootstrapTimeout)
		res, err := c.client.ListOffsets(lctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
		cancel()
		if err != nil {
			return false, err
		}
		offs := res.Topics[topic]
		if len(offs) < n {
			return false, nil
		}
		for _, po := range offs {
			if po.Error != nil {
				return false, fmt.Errorf("listing offsets of %s[%d]: %w", topic, po.Partition, po.Error)
			}
			v.rmu.Lock()
			rd := readers[partKey{topic, po.Partition}]
			v.rmu.Unlock()
			if rd == nil {
				return false, nil
			}
			if isSource {
				v.mu.Lock()
				v.tr.SourceProgress(topic, po.Partition, po.FirstOffset)
				v.mu.Unlock()
			}
			if po.LastOffset > po.FirstOffset && rd.next.Load() < po.LastOffset {
				return false, nil
			}
		}
	}
	return true, nil
}

// Drain waits, after the load ended (the ledger is done), until every
// stream's last acked sequence arrived and every target partition was read to
// its end, or deadline passes; then it classifies every gap, stops the
// readers and returns the result.
func (v *Validator) Drain(ctx context.Context, deadline time.Duration) (*Result, error) {
	if !v.started {
		return nil, errors.New("validator: Drain before Start")
	}
	begin := time.Now()
	end := begin.Add(deadline)
	var targets []string
	for t := range v.toSource {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	var sources []string
	seen := map[string]bool{}
	for _, p := range v.cfg.Topics {
		if !seen[p.Source] {
			seen[p.Source] = true
			sources = append(sources, p.Source)
		}
	}
	targetDone, sourceDone := false, v.source == nil
	var lastErr error
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if !targetDone && v.led.Done() {
			v.mu.Lock()
			reached := v.tr.Judge(v.led, false, false).AllReachedLast
			v.mu.Unlock()
			if reached {
				v.rmu.Lock()
				rs := copyReaders(v.tgtReaders)
				v.rmu.Unlock()
				ok, err := v.caughtUp(ctx, v.target, targets, rs, false)
				if err != nil {
					lastErr = err
				}
				targetDone = ok
			}
		}
		if !sourceDone {
			v.rmu.Lock()
			rs := copyReaders(v.srcReaders)
			v.rmu.Unlock()
			// The source is complete only once the load has ended.
			if v.led.Done() {
				ok, err := v.caughtUp(ctx, v.source, sources, rs, true)
				if err != nil {
					lastErr = err
				}
				sourceDone = ok
			}
		}
		if targetDone && sourceDone {
			break
		}
		if time.Now().After(end) || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}

	// Stop the readers and the live gauges first: the final judgement must
	// not race with a live one overwriting its gauges.
	v.stop()
	v.mu.Lock()
	sourceChecked := v.source != nil && sourceDone
	j := v.tr.Judge(v.led, true, sourceChecked)
	res := &Result{
		Counts:        j.Total,
		Truncated:     j.Truncated,
		OtherRuns:     j.OtherRuns,
		Examples:      v.tr.Examples(),
		Latency:       v.tr.Latency(),
		Streams:       j.Streams,
		DrainComplete: targetDone,
		DrainSeconds:  time.Since(begin).Seconds(),
		SourceChecked: sourceChecked,
		PerTopic:      j.PerTopic,
	}
	res.LedgerProblems = v.led.Problems()
	res.FirstArrival, res.LastArrival = v.tr.Arrival()
	v.mu.Unlock()
	switch {
	case v.source == nil:
		res.SourceNote = "source reader disabled (no source bootstrap): source_lost not judged"
	case !sourceDone:
		res.SourceNote = fmt.Sprintf("the source log could not be read to its end before the drain deadline (last error: %v): source_lost not judged", lastErr)
	}
	if !v.led.Done() {
		msg := "the ledger was not complete (load still running or ledger topic not done) at the drain deadline"
		if e, _ := v.ledgerErr.Load().(error); e != nil {
			msg += ": " + e.Error()
		}
		v.log.Warn(msg)
	}
	v.setGauges(j, true)
	v.log.Info("drain finished", "complete", res.DrainComplete, "seconds", res.DrainSeconds, "source_checked", res.SourceChecked,
		"received", res.Counts.Received, "lost", res.Counts.Lost, "unseen", res.Counts.Unseen, "duplicate", res.Counts.Duplicate)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("validator: drain interrupted: %w", err)
	}
	return res, nil
}

func copyReaders(m map[partKey]*reader) map[partKey]*reader {
	out := make(map[partKey]*reader, len(m))
	for k, r := range m {
		out[k] = r
	}
	return out
}

// stop ends every reader and releases the connections.
func (v *Validator) stop() {
	v.cancel()
	v.wg.Wait()
	v.target.tr.CloseIdleConnections()
	if v.source != nil {
		v.source.tr.CloseIdleConnections()
	}
}
