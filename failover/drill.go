package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/logscan"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/wait"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Pair is a source topic and the topic the mirror copies it to.
type Pair struct{ Source, Target string }

// Config is one drill.
type Config struct {
	Spec scenarios.Failover
	Load time.Duration // the load's length (the failover point's default)
	// Settle: how long after the group stopped on the source the drill
	// reads the translated offsets.
	Settle           time.Duration
	Source, Target   kafkaclient.Config
	Topics           []Pair
	RunID            string
	Ledger           *ledger.Ledger
	CheckpointsTopic string
	// Bound (re-reads per partition) and where it comes from.
	Bound     int64
	BoundFrom string
	Logger    *slog.Logger
}

// Drill runs the failover drill: Start before the load (the group joins
// the source), Run on the load's clock (fails over), Finish after the
// drain (reads the target to its end and judges), Close always.
type Drill struct {
	cfg       Config
	log       *slog.Logger
	srcTopic  map[string]string // target topic -> source topic
	tgtTopics []string

	src     *kgo.Client
	srcStop context.CancelFunc
	srcDone chan struct{}
	watch   *watcher
	tgt     *kgo.Client
	tgtStop context.CancelFunc
	tgtDone chan struct{}

	mu       sync.Mutex
	srcReads []Read
	tgtReads []Read
	tgtPos   map[TP]int64 // next target offset the group reads
	parts    map[TP]*Partition
	out      report.Failover

	// sourceWait bounds how long the failover point retries the source
	// (sourceWaitDefault; tests shorten it).
	sourceWait time.Duration
}

// New checks cfg and returns a drill that has not started.
func New(cfg Config) (*Drill, error) {
	if len(cfg.Topics) == 0 || cfg.RunID == "" || cfg.Ledger == nil {
		return nil, errors.New("failover drill: topics, run id and ledger are needed")
	}
	if cfg.Spec.Group == "" {
		return nil, errors.New("failover drill: no consumer group (spec.failover.group)")
	}
	d := &Drill{cfg: cfg, log: cfg.Logger, srcTopic: map[string]string{}, tgtPos: map[TP]int64{}, parts: map[TP]*Partition{}, sourceWait: sourceWaitDefault}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	for _, p := range cfg.Topics {
		d.srcTopic[p.Target] = p.Source
		d.tgtTopics = append(d.tgtTopics, p.Target)
	}
	d.out = report.Failover{Group: cfg.Spec.Group, Lag: cfg.Spec.Lag, Offsets: cfg.Spec.Offsets, CheckpointsTopic: cfg.CheckpointsTopic}
	return d, nil
}

// Start joins the group on the source and starts watching the mirror's
// translated offsets on the target.
func (d *Drill) Start(ctx context.Context) error {
	var sources []string
	for _, p := range d.cfg.Topics {
		sources = append(sources, p.Source)
	}
	cl, err := d.cfg.Source.NewKgo(
		kgo.ConsumerGroup(d.cfg.Spec.Group), kgo.ConsumeTopics(sources...),
		kgo.DisableAutoCommit(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMaxAge(2*time.Second), kgo.MetadataMinAge(250*time.Millisecond),
		kgo.FetchMaxWait(500*time.Millisecond),
	)
	if err != nil {
		return fmt.Errorf("failover drill: consumer group %s on the source %v: %w", d.cfg.Spec.Group, d.cfg.Source.Brokers, err)
	}
	d.src = cl
	w, err := startWatcher(d)
	if err != nil {
		cl.Close()
		return err
	}
	d.watch = w
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.srcStop, d.srcDone = cancel, make(chan struct{})
	go func() { defer close(d.srcDone); d.consumeSource(sctx) }()
	d.log.Info("failover drill: group reads the source", "drill", d.cfg.Spec.String())
	return nil
}

// Run waits for the failover point (t0 is the load start), stops the group
// on the source, waits Settle, and starts it on the target from the offsets
// the mirror provides. It returns once the group reads the target, or when
// ctx ends (the run was interrupted: the drill is then incomplete).
func (d *Drill) Run(ctx context.Context, t0 time.Time) {
	spec := d.cfg.Spec
	if spec.Lag == scenarios.LagIdle {
		if !wait.Until(ctx, t0.Add(spec.IdleAtFor(d.cfg.Load))) {
			d.fail("interrupted before the group went idle")
			return
		}
		d.stopSource()
		d.log.Info("failover drill: group idle on the source")
	}
	if !wait.Until(ctx, t0.Add(spec.AtFor(d.cfg.Load))) {
		d.fail("interrupted before the failover point")
		return
	}
	d.stopSource()
	d.out.StoppedAt = time.Now()
	if err := d.readSourceCommitted(ctx); err != nil {
		d.fail(err.Error())
		return
	}
	d.log.Info("failover drill: group left the source; waiting for the mirror's offsets", "settle", d.cfg.Settle)
	if !wait.Until(ctx, time.Now().Add(d.cfg.Settle)) {
		d.fail("interrupted while waiting for the mirror's offsets")
		return
	}
	d.watch.stop()
	if err := d.translate(ctx); err != nil {
		d.fail(err.Error())
		return
	}
	if err := d.startTarget(ctx); err != nil {
		d.fail(err.Error())
		return
	}
	d.out.ResumedAt = time.Now()
	d.log.Info("failover drill: group reads the target")
}

// stopSource ends the source loop (it commits what it read and leaves the
// group); a second call does nothing.
func (d *Drill) stopSource() {
	if d.srcStop != nil {
		d.srcStop()
		<-d.srcDone
		d.srcStop = nil
	}
}

func (d *Drill) fail(why string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.out.Error == "" {
		d.out.Error = why
	}
}

// consumeSource is the group on the source: it reads records (a far-behind
// group only once they are Behind old), notes the run's records and
// commits after each round. When stopped it commits and leaves the group.
func (d *Drill) consumeSource(ctx context.Context) {
	cl := d.src
	next := map[string]map[int32]kgo.EpochOffset{}
	var queue []*kgo.Record
	commit := func(cctx context.Context) error {
		if len(next) == 0 {
			return nil
		}
		var cerr error
		cl.CommitOffsetsSync(cctx, next, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, _ *kmsg.OffsetCommitResponse, err error) { cerr = err })
		return cerr
	}
	defer func() {
		// The last commit is where the group fails over from: with the
		// group's coordinator on a broker just killed it waits as long as
		// the failover point's reads (sourceWait) for Kafka to move it.
		// If it still fails, the translation starts from an older commit
		// and the target re-reads more: logged, so those re-reads are not
		// read as the mirror's.
		cctx, cancel := context.WithTimeout(context.Background(), d.sourceWait)
		if err := commit(cctx); err != nil {
			d.log.Warn("failover drill: the group's last commit on the source failed; it fails over from its previous commit (extra re-reads are kmt's, not the mirror's)", "err", err, "waited", d.sourceWait)
		}
		cancel()
		cl.Close() // leaves the group
	}()
	behind := d.cfg.Spec.Behind.D()
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		fs.EachRecord(func(r *kgo.Record) { queue = append(queue, r) })
		n := 0
		for n < len(queue) && (behind == 0 || time.Since(queue[n].Timestamp) >= behind) {
			r := queue[n]
			if next[r.Topic] == nil {
				next[r.Topic] = map[int32]kgo.EpochOffset{}
			}
			next[r.Topic][r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
			if id, ok := d.identify(r); ok {
				d.mu.Lock()
				d.srcReads = append(d.srcReads, Read{ID: id, Partition: r.Partition, Offset: r.Offset})
				d.mu.Unlock()
			}
			n++
		}
		queue = queue[n:]
		if n > 0 {
			if err := commit(ctx); err != nil && ctx.Err() == nil {
				d.log.Warn("failover drill: commit on the source failed; the next round commits again", "err", err)
			}
		}
	}
}

// identify decodes a record of this run (by its source topic and stream).
func (d *Drill) identify(r *kgo.Record) (ID, bool) {
	w, err := wire.Decode(r.Value)
	if err != nil || w.RunID != d.cfg.RunID {
		return ID{}, false
	}
	topic := w.Topic
	if topic == "" {
		topic = d.srcTopic[r.Topic]
		if topic == "" {
			topic = r.Topic
		}
	}
	return ID{Key: ledger.StreamKey{Topic: topic, Stream: w.Stream, Epoch: w.Epoch}, Seq: w.Seq}, true
}

// partition is the state of tp, created on first use (callers hold mu).
func (d *Drill) partition(tp TP, target string) *Partition {
	p := d.parts[tp]
	if p == nil {
		p = &Partition{TargetTopic: target, SourceCommitted: -1, Translated: -1}
		d.parts[tp] = p
	}
	return p
}

// Close releases every client (idempotent).
func (d *Drill) Close() {
	d.stopSource()
	if d.watch != nil {
		d.watch.stop()
	}
	if d.tgtStop != nil {
		d.tgtStop()
		<-d.tgtDone
		d.tgtStop = nil
	}
}

// scanTarget is every record of this run on the target topics, in offset
// order per partition.
func (d *Drill) scanTarget(ctx context.Context) ([]Read, error) {
	var out []Read
	_, err := logscan.Scan(ctx, logscan.Options{
		Brokers: d.cfg.Target.Brokers, Dial: logscan.DialFunc(d.cfg.Target.Dial), Security: d.cfg.Target.Security,
		Topics: d.tgtTopics, ClientID: "kmt-failover-scan",
	}, func(r *kgo.Record) bool {
		if id, ok := d.identify(r); ok {
			out = append(out, Read{ID: id, Partition: r.Partition, Offset: r.Offset})
		}
		return true
	})
	return out, err
}
