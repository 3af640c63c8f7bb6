package validator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	bootlist "github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// DialFunc dials a broker; nil means a plain net.Dialer. The runner passes the
// embedded cluster's DirectDial so kmt's own clients bypass the WAN.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// TopicPair maps a source topic to the target topic the mirror writes it to.
type TopicPair struct{ Source, Target string }

// Isolation levels a run can read the target with.
const (
	ReadCommitted   = "read_committed"
	ReadUncommitted = "read_uncommitted"
)

// Config configures a Validator.
type Config struct {
	TargetBootstrap string
	TargetDial      DialFunc
	// SourceBootstrap enables the source reader (source_lost, truncated,
	// order against the source's order); "" disables it. SourceDial routes
	// its connections.
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
	// Isolation is how a downstream consumer reads the target:
	// ReadCommitted (default) or ReadUncommitted. Records are always judged
	// as a read_committed reader sees them; with ReadUncommitted a second,
	// read_uncommitted reader runs beside it, and records of aborted
	// transactions that only it sees are aborted_read.
	Isolation string
	// Transactions and Fidelity: the load modes the run used (modes.go);
	// nil: not used. Shards hand their pieces to Merge (mergemodes.go).
	Transactions *scenarios.Transactions
	Fidelity     *scenarios.Fidelity
	// CompactedTopics: source topics with cleanup.policy compact. Their
	// cleaner removes a record once a later one of its key is written, so
	// an acked record absent from the source log, with a later sequence of
	// its stream (its key) in the same source partition, was compacted
	// away: counted truncated, not source_lost (judge.go). Merged shards
	// do not scan the source after the drain: they judge by what their
	// source readers read.
	CompactedTopics []string
	// StallAfter: the stall watchdog's threshold (stall.go, watch.go): a
	// target partition standing still this long while its source partition
	// moves is a stall. 0 disables it; it needs SourceBootstrap. A shard
	// watches its own partitions.
	StallAfter time.Duration
	// SyncWithin: how long a metadata change noted by the nemesis
	// (NoteConfigChange, NotePartitionsChange, NoteNewTopic) may take to
	// appear on the target; default 60s. Of a sharded validator, shard 0
	// alone watches them.
	SyncWithin time.Duration
	// NeverCopied: topic settings the mirror never copies by design
	// (MirrorMaker 2's config.properties.exclude default): reported, not judged.
	NeverCopied []string
	// TargetTopicOf names the target copy of a source topic not in Topics
	// (one created mid-run); default the same name.
	TargetTopicOf func(source string) string
	Examples      int // per category, default 5
	// Shard of Shards (shard.go): read only partitions p with p % Shards
	// == Shard and hand the state to Merge (DrainShard). Shards 0 or 1:
	// one validator reads everything.
	Shard, Shards int
	Registerer    prometheus.Registerer
	Logger        *slog.Logger
}

// Result is the validator's verdict material.
type Result struct {
	Counts    Counts               `json:"counts"`
	Truncated uint64               `json:"truncated"`
	OtherRuns uint64               `json:"other_runs"`
	Examples  map[string][]Example `json:"examples"`
	// Latency is the mirror latency: first arrivals only.
	Latency Latency `json:"latency"`
	// RedeliveryLatency: the duplicates' (re-copies') latency, apart.
	RedeliveryLatency Latency `json:"redelivery_latency"`
	// NegativeLatency counts first arrivals read before their produce time
	// (clock skew); MostNegativeSeconds is the worst (<= 0).
	NegativeLatency     uint64  `json:"negative_latency"`
	MostNegativeSeconds float64 `json:"most_negative_seconds"`
	Streams             int     `json:"streams"`
	// DrainComplete: every acked sequence arrived, or every stream's last
	// one did and nothing new arrived for the settle time, with every
	// target partition read to its end.
	DrainComplete bool    `json:"drain_complete"`
	DrainSeconds  float64 `json:"drain_seconds"`
	// TargetUnread: at the drain deadline the target still held records
	// the validator had not read: the verdict is incomplete, not a pass.
	TargetUnread bool `json:"target_unread"`
	// TargetMissing names a target topic that did not exist at the drain
	// deadline (nothing could be read, so it is why the target is unread).
	TargetMissing string `json:"target_missing,omitempty"`
	// SourceChecked: the source log was read to its end, so source_lost
	// was judged. SourceNote says why not when it is false.
	SourceChecked bool              `json:"source_checked"`
	SourceNote    string            `json:"source_note,omitempty"`
	Isolation     string            `json:"isolation"`
	PerTopic      map[string]Counts `json:"per_topic"`
	FirstArrival  time.Time         `json:"first_arrival"`
	LastArrival   time.Time         `json:"last_arrival"`
	// Stalls (the stall watchdog; nil when disabled) and MetadataSync (nil
	// when the timeline changed no metadata): report.json sections.
	Stalls       *report.Stalls       `json:"stalls,omitempty"`
	MetadataSync *report.MetadataSync `json:"metadata_sync,omitempty"`
	// LedgerProblems say why the ledger read from the ledger topic does not
	// add up (ledger.Ledger.Problems): the verdict must be incomplete, since
	// a missing ledger entry cannot be told from loss.
	LedgerProblems []string `json:"ledger_problems,omitempty"`
	// Transactions and Fidelity: the load modes' verdicts (modes.go).
	Transactions *report.Transactions `json:"transactions,omitempty"`
	Fidelity     *report.Fidelity     `json:"fidelity,omitempty"`
}

// defaultSyncWithin is Config.SyncWithin's default.
const defaultSyncWithin = 60 * time.Second

// bootstrapTimeout bounds how long Start waits for a cluster to answer.
const bootstrapTimeout = 10 * time.Second

type vmetrics struct {
	received    *prometheus.CounterVec
	anomaly     *prometheus.CounterVec
	missing     *prometheus.GaugeVec
	latency     *latencyHist // latmetric.go
	lag         *prometheus.GaugeVec
	lastArrival prometheus.Gauge
}

// topicMetrics caches the per-topic children so the hot path does no label
// lookups.
type topicMetrics struct {
	received prometheus.Counter
	// anomalies already added to the counters, per category: the counters
	// follow the tracker's counts (some categories are decided late).
	added map[string]uint64
}

// anomalyCats are the per-record categories exported as
// kmt_validator_anomalies_total.
var anomalyCats = []string{CatDuplicate, CatRedelivery, CatReordered, CatCorrupt, CatForeign, CatAbortedRead, CatIdentity, CatSplit, CatAbortedCopied}

func anomalyCount(c Counts, cat string) uint64 {
	switch cat {
	case CatDuplicate:
		return c.Duplicate
	case CatRedelivery:
		return c.Redelivery
	case CatReordered:
		return c.Reordered
	case CatCorrupt:
		return c.Corrupt
	case CatForeign:
		return c.Foreign
	case CatAbortedRead:
		return c.AbortedRead
	case CatIdentity:
		return c.IdentityMismatch
	case CatSplit:
		return c.Split
	case CatAbortedCopied:
		return c.AbortedCopied
	}
	return 0
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
	readers        []*reader

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started bool

	ledgerErr atomic.Value // error from the ledger topic reader

	w *watcher // stall watchdog and metadata sync watch (watch.go)
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
	if err := checkShard(cfg); err != nil {
		return nil, err
	}
	switch cfg.Isolation {
	case "":
		cfg.Isolation = ReadCommitted
	case ReadCommitted, ReadUncommitted:
	default:
		return nil, fmt.Errorf("validator: isolation %q: use %s or %s", cfg.Isolation, ReadCommitted, ReadUncommitted)
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
		cfg:      cfg,
		log:      log.With("component", "validator"),
		led:      led,
		tm:       map[string]*topicMetrics{},
		toSource: map[string]string{},
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
	// One source topic into two target topics would share the tracker's
	// per-(source topic, partition) read offsets: records of the second
	// target at offsets the first already used would pass as kmt's own
	// re-reads and never be judged. Run one validator per copy instead.
	seen := map[string]string{}
	for _, p := range cfg.Topics {
		if prev, ok := seen[p.Source]; ok && prev != p.Target {
			return nil, fmt.Errorf("validator: source topic %q is mirrored into two target topics (%q, %q): one validator judges one copy of a source topic; run a validator per target topic", p.Source, prev, p.Target)
		}
		seen[p.Source] = p.Target
	}
	if cfg.SyncWithin <= 0 {
		v.cfg.SyncWithin = defaultSyncWithin
	}
	var err error
	if v.w, err = newWatcher(v.cfg, reg); err != nil {
		return nil, fmt.Errorf("validator: registering metrics: %w (one validator per registry)", err)
	}
	if err := v.register(reg); err != nil {
		return nil, err
	}
	return v, nil
}

// sourceTopics are the configured source topics, each once.
func (v *Validator) sourceTopics() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range v.cfg.Topics {
		if !seen[p.Source] {
			seen[p.Source] = true
			out = append(out, p.Source)
		}
	}
	return out
}

func (v *Validator) register(reg prometheus.Registerer) error {
	v.m = vmetrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metrics.ValidatorReceived,
			Help: "This run's intact records read from the target (duplicates in, re-reads out)."}, []string{metrics.LabelTopic}),
		anomaly: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metrics.ValidatorAnomaly,
			Help: "Anomalous target records by category."}, []string{metrics.LabelTopic, metrics.LabelCategory}),
		missing: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metrics.ValidatorMissing,
			Help: "Acked sequences missing at the target by category (live; final after the drain)."}, []string{metrics.LabelTopic, metrics.LabelCategory}),
		latency: newLatencyHist(metrics.ValidatorLatency, "Target read time minus produce time of each record's first arrival.",
			metrics.LabelTopic, metrics.LatencyBuckets, v.sourceTopics()),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metrics.ValidatorLag,
			Help: "Acked records not yet delivered (records purged from the source excluded)."}, []string{metrics.LabelTopic}),
		lastArrival: prometheus.NewGauge(prometheus.GaugeOpts{Name: metrics.ValidatorLastArrival,
			Help: "Wall time of the last intact arrival (Unix seconds)."}),
	}
	for _, c := range []prometheus.Collector{v.m.received, v.m.anomaly, v.m.missing, v.m.latency, v.m.lag, v.m.lastArrival} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("validator: registering metrics: %w (one validator per registry)", err)
		}
	}
	for _, p := range v.cfg.Topics {
		t := p.Source
		if v.tm[t] != nil {
			continue
		}
		v.tm[t] = &topicMetrics{received: v.m.received.WithLabelValues(t), added: map[string]uint64{}}
		for _, c := range anomalyCats {
			v.m.anomaly.WithLabelValues(t, c).Add(0)
		}
		for _, c := range []string{CatLost, CatUnseen, CatSourceLost} {
			v.m.missing.WithLabelValues(t, c).Set(0)
		}
		v.m.lag.WithLabelValues(t).Set(0)
	}
	return nil
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
	if v.cfg.SourceBootstrap == "" {
		v.tr.JudgeOrderBySequence()
	}
	v.tr.SetLoadModes(v.cfg.Transactions, v.cfg.Fidelity)
	v.tr.SetCompacted(v.cfg.CompactedTopics)
	v.mu.Unlock()
	var err error
	if v.target, err = dialCluster(v.ctx, "target", v.cfg.TargetBootstrap, v.cfg.TargetDial, v.cfg.Security); err != nil {
		v.cancel()
		return err
	}
	if v.cfg.SourceBootstrap != "" {
		if v.source, err = dialCluster(v.ctx, "source", v.cfg.SourceBootstrap, v.cfg.SourceDial, v.cfg.Security); err != nil {
			v.target.close()
			v.cancel()
			return err
		}
	}
	if err := v.startReaders(); err != nil {
		v.cancel()
		v.closeClusters()
		return err
	}
	v.started = true
	if v.cfg.Ledger == nil {
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			err := ledger.ReadTopicWith(v.ctx, kafkaclient.Config{Brokers: bootlist.Split(v.cfg.SourceBootstrap), Dial: kafkaclient.DialFunc(v.cfg.SourceDial), Security: v.cfg.Security}, v.cfg.LedgerTopic, v.cfg.RunID, v.led)
			if err != nil {
				v.ledgerErr.Store(err)
				if v.ctx.Err() == nil {
					v.log.Error("reading the ledger topic failed", "topic", v.cfg.LedgerTopic, "err", err)
				}
			}
		}()
	}
	v.wg.Add(2)
	go v.liveLoop()
	go v.watchLoop()
	return nil
}

// liveLoop refreshes the gauges and anomaly counters about once a second.
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
			j := v.tr.Judge(v.liveLedger(), false, false)
			v.mu.Unlock()
			v.setGauges(j, false)
		}
	}
}

// lag is the acked records not yet delivered: lost, unseen and source_lost
// together (records purged from the source can never be delivered and are
// not lag; arrivals of failed sends never offset missing acked ones).
func lag(c Counts) float64 { return float64(c.Lost + c.Unseen + c.SourceLost) }

func (v *Validator) setGauges(j Judgement, final bool) {
	for topic, c := range j.PerTopic {
		tm := v.tm[topic]
		if tm == nil {
			continue // a ledger topic this validator does not read: no series
		}
		v.m.missing.WithLabelValues(topic, CatLost).Set(float64(c.Lost))
		v.m.missing.WithLabelValues(topic, CatUnseen).Set(float64(c.Unseen))
		if final {
			v.m.missing.WithLabelValues(topic, CatSourceLost).Set(float64(c.SourceLost))
		}
		v.m.lag.WithLabelValues(topic).Set(lag(c))
		for _, cat := range anomalyCats {
			if n := anomalyCount(c, cat); n > tm.added[cat] {
				v.m.anomaly.WithLabelValues(topic, cat).Add(float64(n - tm.added[cat]))
				tm.added[cat] = n
			}
		}
	}
}

// NoteTruncation tells the validator that the harness deleted every record
// below logStart[partition] of sourceTopic on the source cluster. Partitions
// the source reader had already read past are re-read from the new log
// start (a probe) so that exactly the records below it count as truncated.
func (v *Validator) NoteTruncation(sourceTopic string, logStart map[int]int64) {
	v.mu.Lock()
	if v.tr == nil {
		v.tr = NewTracker(v.cfg.RunID, v.cfg.Examples, time.Now())
	}
	probes := v.tr.NoteTruncation(sourceTopic, v.ownedTruncation(logStart))
	v.mu.Unlock()
	if len(probes) == 0 || !v.started || v.source == nil {
		return
	}
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		for _, pr := range probes {
			if err := v.probe(pr); err != nil {
				v.log.Warn("re-reading the source after a purge failed; records of that partition missing at the target will not be excused as truncated",
					"topic", pr.Topic, "partition", pr.Partition, "from", pr.From, "err", err)
			}
		}
	}()
}

// Live returns the current counts (lost/unseen as of now) for progress lines.
func (v *Validator) Live() Counts {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.tr == nil {
		return Counts{}
	}
	return v.tr.Judge(v.liveLedger(), false, false).Total
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

// minSettle is the least time the drain waits, with nothing new arriving
// and everything read, before it ends with records still missing: a stream
// spread over several partitions may have its last record in while earlier
// ones are in flight elsewhere.
const minSettle = time.Second

// Drain waits, after the load ended (the ledger is done), until every acked
// sequence arrived (or every stream's last one did and nothing new arrived
// for the settle time) with every target partition read to its end, or the
// deadline passes; then it classifies every gap, stops the readers and
// returns the result.
func (v *Validator) Drain(ctx context.Context, deadline time.Duration) (*Result, error) {
	if !v.started {
		return nil, errors.New("validator: Drain before Start")
	}
	if v.sharded() {
		return nil, fmt.Errorf("validator: shard %d of %d cannot judge alone: call DrainShard and Merge the shards' states", v.cfg.Shard, v.cfg.Shards)
	}
	begin := time.Now()
	d := v.drainLoop(ctx, begin.Add(deadline))
	stalls, msync := v.finishWatch(ctx, begin.Add(deadline))
	v.scanCompacted(ctx)
	v.mu.Lock()
	sourceChecked := v.source != nil && d.sourceDone
	j := v.tr.Judge(v.led, true, sourceChecked)
	txns, fid := v.tr.TransactionsVerdict(v.led, j.Total), v.tr.FidelityVerdict(v.led) // before resultOf copies the evidence
	res := v.tr.resultOf(j)
	res.DrainComplete, res.DrainSeconds = d.targetDone, time.Since(begin).Seconds()
	res.TargetUnread, res.TargetMissing = !d.targetRead, missingTopic(d.lastTargetErr)
	res.SourceChecked, res.SourceNote = sourceChecked, v.sourceNote(d)
	res.Isolation = v.cfg.Isolation
	res.Transactions, res.Fidelity = txns, fid
	attributeStalls(stalls, j.MissingBySource)
	res.Stalls, res.MetadataSync = stalls, msync
	res.LedgerProblems = v.led.Problems()
	v.mu.Unlock()
	if !v.led.Done() {
		msg := "the ledger was not complete (load still running or ledger topic not done) at the drain deadline"
		if e, _ := v.ledgerErr.Load().(error); e != nil {
			msg += ": " + e.Error()
		}
		v.log.Warn(msg)
	}
	v.setGauges(j, true)
	v.log.Info("drain finished", "complete", res.DrainComplete, "target_unread", res.TargetUnread, "seconds", res.DrainSeconds,
		"source_checked", res.SourceChecked, "received", res.Counts.Received, "lost", res.Counts.Lost, "unseen", res.Counts.Unseen,
		"duplicate", res.Counts.Duplicate)
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("validator: drain interrupted: %w", err)
	}
	return res, nil
}

type drainState struct {
	targetDone, targetRead, sourceDone bool
	lastErr                            error
	lastTargetErr                      error // the target check's own last error (nil once it read)
}

// drainLoop polls until the target and the source are done or end passes.
func (v *Validator) drainLoop(ctx context.Context, end time.Time) drainState {
	var targets []string
	for t := range v.toSource {
		targets = append(targets, t)
	}
	sort.Strings(targets)
	sources := v.sourceTopics()
	d := drainState{sourceDone: v.source == nil}
	var settleFrom time.Time
	var settleArrivals uint64
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if !d.targetDone {
			read, err := v.caughtUp(ctx, v.target, targets, roleTarget)
			if err != nil && !errors.As(err, new(*noTopicError)) {
				d.lastErr = err
			}
			d.lastTargetErr = err
			d.targetRead = read
			if read && v.led.Done() {
				allArrived, allReachedLast := v.progress(d.sourceDone)
				v.mu.Lock()
				arrivals := v.tr.lat.hist.TotalCount() + int64(v.tr.lat.negative)
				settle := max(minSettle, 2*time.Duration(v.tr.Latency().P99*float64(time.Second)))
				v.mu.Unlock()
				switch {
				case allArrived:
					d.targetDone = true
				case !allReachedLast:
					settleFrom = time.Time{}
				case settleFrom.IsZero() || uint64(arrivals) != settleArrivals:
					settleFrom, settleArrivals = time.Now(), uint64(arrivals)
				case time.Since(settleFrom) >= settle:
					d.targetDone = true
				}
			} else {
				settleFrom = time.Time{}
			}
		}
		if !d.sourceDone && v.led.Done() {
			// The source is complete only once the load has ended.
			ok, err := v.caughtUp(ctx, v.source, sources, roleSource)
			if err != nil {
				d.lastErr = err
			}
			d.sourceDone = ok
		}
		if d.targetDone && d.sourceDone || time.Now().After(end) || ctx.Err() != nil {
			return d
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
}
