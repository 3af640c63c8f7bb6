package mirror

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/mirror/checkpoint"
)

// Tuning of the copy loop. A short gather window keeps the mirror's own
// latency in single-digit milliseconds, so latency seen by the validator is
// dominated by the faults under test, not by batching: a batch is what
// arrived within the window, so at low rates batches stay small.
//
// maxBatch matters only under a backlog, where every round costs a write
// and a commit round trip whatever its size: with 256 the mirror bounded the
// embedded baseline ceiling on 2 cores (5000-10000 msgs/s with the process
// using under half a core); 2048 lifts it (docs/bench.md). A round's bytes
// are bounded too (maxBatchBytes), so a backlog of large records does not
// gather gigabytes, and each write is cut at writeChunkBytes.
const (
	maxBatch       = 2048                  // records per fetch/write/commit round
	maxBatchBytes  = 16 << 20              // bytes per round (estimated by msgSize); one record may exceed it
	gatherWindow   = 5 * time.Millisecond  // wait for more records after the first
	reorderIdle    = time.Second           // write an incomplete reorder group after this much quiet
	partitionPoll  = 2 * time.Second       // how often source partition counts are checked
	pauseParkWait  = 2 * time.Second       // how long Pause waits for the loop to park
	adminTimeout   = 10 * time.Second      // one metadata / create call
	closeStopGrace = 10 * time.Second      // Close's graceful stop before it kills
	retryBackoffLo = 50 * time.Millisecond // first retry delay of a failed write/commit
	retryBackoffHi = 1000 * time.Millisecond
)

// hookStage names the points where tests may intervene inside one batch.
type hookStage int

const (
	// stageCommittedBeforeWrite: commit-before-produce committed the batch,
	// nothing of it has been written yet.
	stageCommittedBeforeWrite hookStage = iota + 1
	// stageWrittenBeforeCommit: the target acknowledged the batch, its
	// offsets are not committed yet.
	stageWrittenBeforeCommit
)

// Reference is the reference mirror: a consumer group on the source, an
// acks=all producer on the target that keeps key, headers, timestamp and
// partition, and explicit offset commits after the target acknowledged.
// Safe for concurrent use; Controller methods are serialized.
type Reference struct {
	cfg     Config
	log     *slog.Logger
	src     []string
	dst     []string
	dstOf   map[string]string // source topic -> target topic
	srcOf   map[string]string // target topic -> source topic
	sources []string
	def     defects
	met     *refMetrics

	// hook is a test seam (nil in production): called inside the copy loop
	// with the run's hard context.
	hook func(ctx context.Context, stage hookStage, batch []kafka.Message)

	op     sync.Mutex // serializes Start/Stop/Kill/Pause/Resume/Close
	run    *refRun    // nil while stopped
	closed bool

	// count numbers every record the mirror has taken from the source, over
	// all runs, so "every Nth" is deterministic. Only the copy loop touches
	// it and at most one loop runs at a time.
	count uint64
	// txns numbers the transactions written (txn-abort defects).
	txns uint64
	// stallCount numbers the records of the first topic's partition 0 taken
	// (partition-stall defect).
	stallCount uint64
	// syncs: offset translation (reference_checkpoints.go).
	syncs offsetSyncs
}

// NewReference validates cfg and returns a stopped mirror; call Start.
func NewReference(cfg Config) (*Reference, error) {
	r := &Reference{cfg: cfg, dstOf: map[string]string{}, srcOf: map[string]string{}}
	r.src = bootstrap.Split(cfg.SourceBootstrap)
	r.dst = bootstrap.Split(cfg.TargetBootstrap)
	if len(r.src) == 0 {
		return nil, errors.New("reference mirror: SourceBootstrap is empty; give the source cluster's advertised addresses (host:port,...)")
	}
	if len(r.dst) == 0 {
		return nil, errors.New("reference mirror: TargetBootstrap is empty; give the target cluster's addresses (host:port,...)")
	}
	if len(cfg.Topics) == 0 {
		return nil, errors.New("reference mirror: no topics to mirror; set Config.Topics")
	}
	for i, t := range cfg.Topics {
		if t.Source == "" {
			return nil, fmt.Errorf("reference mirror: topic %d has an empty source name", i)
		}
		if t.Target == "" {
			t.Target = t.Source
		}
		if _, dup := r.dstOf[t.Source]; dup {
			return nil, fmt.Errorf("reference mirror: source topic %q listed twice", t.Source)
		}
		if s, dup := r.srcOf[t.Target]; dup {
			return nil, fmt.Errorf("reference mirror: source topics %q and %q both map to target topic %q", s, t.Source, t.Target)
		}
		r.dstOf[t.Source], r.srcOf[t.Target] = t.Target, t.Source
		r.sources = append(r.sources, t.Source)
	}
	if r.cfg.Group == "" {
		r.cfg.Group = DefaultGroup
	}
	d, err := parseDefects(cfg.Defects)
	if err != nil {
		return nil, fmt.Errorf("reference mirror: %w", err)
	}
	r.def = d
	r.log = cfg.Logger
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	r.log = r.log.With("component", "mirror", "kind", "reference")
	r.met = newRefMetrics(cfg.Registerer)
	r.met.running.Set(0)
	if c := cfg.Checkpoints; c != nil {
		cc := *c
		if cc.Interval <= 0 {
			cc.Interval = DefaultCheckpointInterval
		}
		if cc.Topic == "" {
			cc.Topic = checkpoint.Topic(DefaultSourceAlias)
		}
		r.cfg.Checkpoints = &cc
		r.syncs = offsetSyncs{m: map[tp]*checkpoint.Syncs{}, emitted: map[string]map[tp]int64{}}
	}
	return r, nil
}

// tp identifies a source partition.
type tp struct {
	topic     string
	partition int
}

// refRun is one Start..Stop/Kill lifetime: a fresh consumer-group member.
type refRun struct {
	softCtx    context.Context // canceled by Stop: no new fetches
	softCancel context.CancelFunc
	hardCtx    context.Context // canceled by Kill: abandon everything now
	hardCancel context.CancelFunc
	done       chan struct{} // copy loop and poller exited
	wg         sync.WaitGroup

	reader  sourceReader
	adminTr *kafka.Transport
	gate    gate

	topo    sync.Mutex
	targetN map[string]int // target topic -> partition count known
	topoGen int            // bumped when targetN grows: producers must be rebuilt
	held    map[tp][]held  // reorder: records waiting for the next record of their key
	// The target producers (reference_write.go), copy loop only: out
	// writes batches of at most batchMaxBytes, outLarge a record above
	// writeChunkBytes alone; both are built for topology outGen.
	out, outLarge *kgo.Client
	outGen        int
	inflight      *round       // the batch being written, nil when none
	txn           *kgo.Client  // transactional producer (txn-abort defects), copy loop only
	safe          map[tp]int64 // highest offset written or dropped
	committed     map[tp]int64 // highest offset committed
	// commitDone is closed when the commit running in the background ends
	// (nil when none runs); commitErr is then its result. Only the copy
	// loop starts and awaits it, so at most one commit is in flight.
	commitDone chan struct{}
	commitErr  error
}

// held is one source record waiting in a reorder group, with what it
// becomes on the target (one or two records, or corrupted).
type held struct {
	src kafka.Message
	out []kafka.Message
}

// Start (re)starts the mirror: creates missing target topics (with the
// source's partition count) and joins the consumer group as a new member,
// resuming from the group's committed offsets. Starting a running mirror is
// a no-op.
func (r *Reference) Start(ctx context.Context) error {
	r.op.Lock()
	defer r.op.Unlock()
	if r.closed {
		return errors.New("reference mirror: Start after Close; build a new mirror")
	}
	if r.run != nil {
		return nil
	}
	if r.def.any() {
		r.log.Warn("reference mirror defects ACTIVE: records will be deliberately mishandled", "defects", r.def.String())
	}
	run := &refRun{
		done:      make(chan struct{}),
		targetN:   map[string]int{},
		held:      map[tp][]held{},
		safe:      map[tp]int64{},
		committed: map[tp]int64{},
	}
	var err error
	if run.adminTr, err = r.target(adminID).Transport(); err != nil {
		return fmt.Errorf("reference mirror: target admin: %w", err)
	}
	run.adminTr.MetadataTTL, run.adminTr.DialTimeout = 500*time.Millisecond, kafkaGoDialTimeout
	if err = r.syncTopics(ctx, run); err != nil {
		run.adminTr.CloseIdleConnections()
		return err
	}
	if r.cfg.Checkpoints != nil {
		if err := r.ensureCheckpointsTopic(ctx, run); err != nil {
			run.adminTr.CloseIdleConnections()
			return err
		}
	}
	run.softCtx, run.softCancel = context.WithCancel(context.Background())
	run.hardCtx, run.hardCancel = context.WithCancel(context.Background())
	if r.cfg.FranzSource {
		if run.reader, err = r.newTxnSourceReader(); err != nil { // reference_txn.go
			run.softCancel()
			run.hardCancel()
			run.adminTr.CloseIdleConnections()
			return err
		}
	} else if run.reader, err = r.newSourceReader(); err != nil {
		run.softCancel()
		run.hardCancel()
		run.adminTr.CloseIdleConnections()
		return err
	}
	r.run = run
	run.wg.Add(3)
	go func() { defer run.wg.Done(); r.copyLoop(run) }()
	go func() { defer run.wg.Done(); r.pollPartitions(run) }()
	go func() { defer run.wg.Done(); r.syncMetadata(run) }() // reference_topicsync.go
	if r.cfg.Checkpoints != nil {
		run.wg.Go(func() { r.checkpointLoop(run) })
	}
	go func() { run.wg.Wait(); close(run.done) }()
	r.met.running.Set(1)
	r.log.Info("reference mirror started", "source", r.cfg.SourceBootstrap, "target", r.cfg.TargetBootstrap,
		"topics", r.sources, "group", r.cfg.Group)
	return nil
}

// newSourceReader is the source consumer of a non-transactional source:
// kafka-go's group reader (it neither filters aborted transactions nor skips
// transaction markers, so a transactional source uses newTxnSourceReader).
func (r *Reference) newSourceReader() (*kafka.Reader, error) {
	dialer, err := r.source("kmt-reference-mirror").Dialer()
	if err != nil {
		return nil, fmt.Errorf("reference mirror: source reader: %w", err)
	}
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:                r.src,
		Dialer:                 dialer,
		GroupID:                r.cfg.Group,
		GroupTopics:            r.sources,
		WatchPartitionChanges:  true,
		PartitionWatchInterval: time.Second,
		StartOffset:            kafka.FirstOffset,
		CommitInterval:         0, // synchronous, explicit commits only
		MinBytes:               1,
		MaxBytes:               16 << 20,
		// MaxWait bounds the whole fetch round trip, not just the broker's
		// long poll: kafka-go sets the read deadline to now+MaxWait and asks
		// the broker to wait MaxWait minus an RTT allowance (1s, or a quarter
		// of MaxWait when MaxWait is shorter). With 250ms, a WAN round trip
		// above ~250ms made every fetch time out and the mirror stalled
		// completely (seen at 300ms one way). 2s leaves a 1s RTT budget;
		// latency is unaffected (the broker answers as soon as data exists)
		// and Pause/Stop cancel a fetch in progress.
		MaxWait:           2 * time.Second,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  5 * time.Second,
		JoinGroupBackoff:  500 * time.Millisecond,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    500 * time.Millisecond,
		Logger: kafka.LoggerFunc(func(msg string, a ...any) {
			r.log.Debug("kafka-go reader: " + fmt.Sprintf(msg, a...))
		}),
		ErrorLogger: kafka.LoggerFunc(func(msg string, a ...any) {
			r.log.Info("kafka-go reader error: " + fmt.Sprintf(msg, a...))
		}),
	}), nil
}

// Stop finishes the in-flight batch, commits it, leaves the group and closes
// every connection. If ctx ends first it falls back to Kill.
func (r *Reference) Stop(ctx context.Context) error {
	r.op.Lock()
	defer r.op.Unlock()
	return r.stopLocked(ctx)
}

func (r *Reference) stopLocked(ctx context.Context) error {
	run := r.run
	if run == nil {
		return nil
	}
	run.softCancel()
	var err error
	select {
	case <-run.done:
	case <-ctx.Done():
		err = fmt.Errorf("reference mirror: graceful stop did not finish (%w); killed it, the in-flight batch will be re-copied on restart", ctx.Err())
		run.hardCancel()
		<-run.done
	}
	r.teardown(run)
	r.log.Info("reference mirror stopped")
	return err
}

// Kill abandons the mirror at once: nothing more is committed, records the
// target acknowledged but whose offsets were not committed are copied again
// after Start (duplicates, never loss).
func (r *Reference) Kill() error {
	r.op.Lock()
	defer r.op.Unlock()
	run := r.run
	if run == nil {
		return nil
	}
	run.hardCancel()
	run.softCancel()
	<-run.done
	r.teardown(run)
	r.log.Info("reference mirror killed")
	return nil
}

func (r *Reference) teardown(run *refRun) {
	// With CommitInterval 0 the reader holds no pending commits, so Close
	// only leaves the group and closes its connections.
	_ = run.reader.Close()
	run.closeProducers()
	run.closeTxn()
	run.adminTr.CloseIdleConnections()
	run.hardCancel()
	r.run = nil
	r.met.running.Set(0)
}

// Pause freezes the copy loop: nothing is consumed, produced or committed
// until Resume. Connections stay open and the group member keeps its
// heartbeat (kafka-go heartbeats in the background), so no rebalance
// happens. Pause waits briefly for the in-flight step to finish.
func (r *Reference) Pause() error {
	r.op.Lock()
	defer r.op.Unlock()
	run := r.run
	if run == nil {
		return errors.New("reference mirror: Pause while not running; Start it first")
	}
	parked := run.gate.pause()
	r.met.running.Set(0)
	select {
	case <-parked:
	case <-run.done:
	case <-time.After(pauseParkWait):
		r.log.Warn("reference mirror paused, but the in-flight step has not finished yet", "waited", pauseParkWait)
	}
	return nil
}

// Resume lets a paused mirror continue.
func (r *Reference) Resume() error {
	r.op.Lock()
	defer r.op.Unlock()
	if r.run == nil {
		return errors.New("reference mirror: Resume while not running; Start it instead")
	}
	r.run.gate.resume()
	r.met.running.Set(1)
	return nil
}

// Close stops the mirror for good (gracefully, killing it after 10 s).
func (r *Reference) Close() error {
	r.op.Lock()
	defer r.op.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), closeStopGrace)
	defer cancel()
	return r.stopLocked(ctx)
}

// gate blocks the copy loop while paused.
type gate struct {
	mu       sync.Mutex
	paused   bool
	resumeCh chan struct{} // closed by resume
	parkedCh chan struct{} // closed when the loop first waits at the gate
	isParked bool
	// cancelFetch aborts the fetch in progress when Pause comes, so a
	// paused mirror does not take one more batch from the source.
	cancelFetch context.CancelFunc
}

// fetchCtx returns a context for one fetch round, canceled by pause.
func (g *gate) fetchCtx(parent context.Context) (context.Context, context.CancelFunc) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ctx, cancel := context.WithCancel(parent)
	if g.paused {
		cancel()
	} else {
		g.cancelFetch = cancel
	}
	return ctx, cancel
}

func (g *gate) pause() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.paused {
		g.paused, g.isParked = true, false
		g.resumeCh, g.parkedCh = make(chan struct{}), make(chan struct{})
		if g.cancelFetch != nil {
			g.cancelFetch()
		}
	}
	return g.parkedCh
}

func (g *gate) resume() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.paused {
		g.paused = false
		close(g.resumeCh)
	}
}

// wait returns at once unless paused; then it returns on resume or when
// either context ends (Stop finishes a paused batch; Kill abandons it).
// settle (if not nil) finishes the step still in flight (a background
// commit) before the loop counts as parked, so nothing is committed while
// paused.
func (g *gate) wait(soft, hard context.Context, settle func()) {
	g.mu.Lock()
	if !g.paused {
		g.mu.Unlock()
		return
	}
	if settle != nil {
		g.mu.Unlock()
		settle()
		g.mu.Lock()
		if !g.paused { // resumed meanwhile
			g.mu.Unlock()
			return
		}
	}
	rc := g.resumeCh
	if !g.isParked {
		g.isParked = true
		close(g.parkedCh)
	}
	g.mu.Unlock()
	select {
	case <-rc:
	case <-soft.Done():
	case <-hard.Done():
	}
}

// copyLoop is the mirror: gate, fetch a batch, hand it to the target
// producer, and while the target acknowledges it, fetch the next; once a
// batch is acknowledged, commit it in the background; repeat.
func (r *Reference) copyLoop(run *refRun) {
	// Last of all: the reader closes after the loop, so no commit may
	// still be running then, and no flush may still use the producer.
	defer r.awaitCommit(run)
	defer run.abandonRound()
	defer func() {
		// Graceful stop: finish the batch in flight, write what reorder
		// still holds, then commit it.
		if run.softCtx.Err() != nil && run.hardCtx.Err() == nil {
			if r.finishRound(run) != nil {
				return
			}
			if out := r.flushHeld(run); len(out) > 0 {
				if r.write(run, out) != nil {
					return
				}
			}
			_ = r.commitSafe(run)
		}
	}()
	for {
		r.gateStep(run)
		if run.softCtx.Err() != nil {
			return
		}
		if run.roundDone() {
			if r.finishRound(run) != nil {
				return // only when killed
			}
		}
		batch, idle := r.fetch(run)
		if len(batch) == 0 {
			if idle {
				// Quiet source: do not keep an incomplete reorder group
				// forever, or its records would look lost.
				if out := r.flushHeld(run); len(out) > 0 {
					if r.finishRound(run) != nil || r.write(run, out) != nil {
						return
					}
					_ = r.commitSafe(run)
				}
			}
			continue
		}
		for _, m := range batch {
			r.met.consumed.WithLabelValues(m.Topic).Inc()
		}
		if err := r.process(run, batch); err != nil {
			return // only when killed
		}
	}
}

// fetch gathers up to maxBatch records (or maxBatchBytes): it waits for the first (up to
// reorderIdle while reorder holds records, reporting idle on timeout), then
// takes whatever else arrives within gatherWindow. The wait for the first
// record also ends when the batch in flight is acknowledged, so the loop
// commits it even when the source has gone quiet.
func (r *Reference) fetch(run *refRun) (batch []kafka.Message, idle bool) {
	fctx, fcancel := run.gate.fetchCtx(run.softCtx)
	defer fcancel()
	first, cancelFirst := context.WithCancel(fctx)
	defer cancelFirst()
	if rd := run.inflight; rd != nil {
		defer context.AfterFunc(rd.ctx, cancelFirst)()
	}
	if len(run.held) > 0 {
		var cancel context.CancelFunc
		first, cancel = context.WithTimeout(first, reorderIdle)
		defer cancel()
	}
	m, err := run.reader.FetchMessage(first)
	if err != nil {
		if fctx.Err() != nil || run.roundDone() {
			return nil, false // stopping, pausing, or the batch in flight was acknowledged
		}
		if errors.Is(first.Err(), context.DeadlineExceeded) {
			return nil, true
		}
		r.met.errors.WithLabelValues("").Inc()
		r.log.Warn("fetch from source failed; retrying", "err", err)
		sleepCtx(run.softCtx, retryBackoffLo)
		return nil, false
	}
	batch = append(batch, m)
	size := msgSize(m)
	gctx, cancel := context.WithTimeout(fctx, gatherWindow)
	defer cancel()
	for len(batch) < maxBatch && size < maxBatchBytes {
		m, err := run.reader.FetchMessage(gctx)
		if err != nil {
			break // window over or stopping: process what we have
		}
		batch = append(batch, m)
		size += msgSize(m)
	}
	return batch, false
}

// process applies the defects, then writes and commits one batch in the
// order that gives at-least-once (or, with commit-before-produce, the
// order that loses records on a kill). The healthy order is pipelined
// (reference_write.go): the batch before this one is finished first (every
// record acknowledged, failed ones written again), its commit starts in the
// background, and then this batch goes to the target and stays in flight
// while the loop fetches the next. The offsets a batch commits are the ones
// planned with it, committed only once all of it was acknowledged, so a
// commit never runs ahead of the target.
func (r *Reference) process(run *refRun, batch []kafka.Message) error {
	out := r.plan(run, batch)
	if r.def.commitBeforeProduce {
		return r.commitThenWrite(run, batch, out)
	}
	upTo := r.safeOffsets(run)
	if err := r.finishRound(run); err != nil {
		return err
	}
	r.gateStep(run)
	return r.startRound(run, batch, out, upTo)
}

// gateStep parks between steps of a batch while paused, so Pause takes
// effect within one network round trip. The batch in flight is finished
// (acknowledged, then committed) before the loop parks.
func (r *Reference) gateStep(run *refRun) {
	run.gate.wait(run.softCtx, run.hardCtx, func() {
		_ = r.finishRound(run)
		_ = r.awaitCommit(run)
	})
}

func (r *Reference) markSafe(run *refRun, k tp, off int64) {
	if cur, ok := run.safe[k]; !ok || off > cur {
		run.safe[k] = off
	}
}

// commitSafe commits, per partition, the highest offset below which every
// record was written or dropped, and returns when the commit is done. Call
// it only with no batch in flight.
func (r *Reference) commitSafe(run *refRun) error {
	if err := r.awaitCommit(run); err != nil {
		return err
	}
	return r.commitOffsets(run, r.uncommitted(run, r.safeOffsets(run)))
}

// commitAsync commits upTo (per source partition, offsets whose records
// were all acknowledged) in the background: it waits for the previous
// background commit (commits stay in order, one at a time) and returns
// while this one runs. It returns the previous commit's error (only when
// killed).
func (r *Reference) commitAsync(run *refRun, upTo map[tp]int64) error {
	if err := r.awaitCommit(run); err != nil {
		return err
	}
	want := r.uncommitted(run, upTo)
	if len(want) == 0 {
		return nil
	}
	done := make(chan struct{})
	run.commitDone = done
	go func() {
		defer close(done)
		run.commitErr = r.commitOffsets(run, want)
	}()
	return nil
}

// awaitCommit waits for the background commit, if one runs, and returns its
// error. Only the copy loop calls it.
func (r *Reference) awaitCommit(run *refRun) error {
	if run.commitDone == nil {
		return nil
	}
	<-run.commitDone
	err := run.commitErr
	run.commitDone, run.commitErr = nil, nil
	return err
}

// safeOffsets is, per partition, the highest offset below which every
// record was planned: written (or handed to the producer) or dropped. A
// held (reorder) record caps it, so a dropped record after a held one does
// not commit the held one away.
func (r *Reference) safeOffsets(run *refRun) map[tp]int64 {
	want := make(map[tp]int64, len(run.safe))
	for k, off := range run.safe {
		if h := run.held[k]; len(h) > 0 && off >= h[0].src.Offset {
			off = h[0].src.Offset - 1
		}
		if off >= 0 {
			want[k] = off
		}
	}
	return want
}

// uncommitted keeps the offsets of offs above what is committed. The
// background commit updates run.committed, so call it only with none
// running (after awaitCommit).
func (r *Reference) uncommitted(run *refRun, offs map[tp]int64) map[tp]int64 {
	want := map[tp]int64{}
	for k, off := range offs {
		if c, ok := run.committed[k]; !ok || off > c {
			want[k] = off
		}
	}
	return want
}

func maxOffsets(batch []kafka.Message) map[tp]int64 {
	out := map[tp]int64{}
	for _, m := range batch {
		k := tp{m.Topic, m.Partition}
		if cur, ok := out[k]; !ok || m.Offset > cur {
			out[k] = m.Offset
		}
	}
	return out
}

// commitOffsets commits offset+1 for each partition (kafka-go adds the 1).
// A failed commit is retried a few times and then left to the next batch:
// the records are on the target already, so the worst case is duplicates.
// It returns an error only when the run is killed.
func (r *Reference) commitOffsets(run *refRun, offs map[tp]int64) error {
	if len(offs) == 0 {
		return nil
	}
	msgs := make([]kafka.Message, 0, len(offs))
	topics := map[string]bool{}
	for k, off := range offs {
		msgs = append(msgs, kafka.Message{Topic: k.topic, Partition: k.partition, Offset: off})
		topics[k.topic] = true
	}
	backoff := retryBackoffLo
	for attempt := 1; ; attempt++ {
		// kafka-go picks at random between a ready channel and a done
		// context, so a killed run must not even try.
		if err := run.hardCtx.Err(); err != nil {
			return err
		}
		err := run.reader.CommitMessages(run.hardCtx, msgs...)
		if err == nil {
			for k, off := range offs {
				run.committed[k] = off
			}
			for t := range topics {
				r.met.commits.WithLabelValues(t).Inc()
			}
			return nil
		}
		if run.hardCtx.Err() != nil {
			return run.hardCtx.Err()
		}
		for t := range topics {
			r.met.errors.WithLabelValues(t).Inc()
		}
		if attempt >= 3 {
			r.log.Warn("commit to source failed; leaving it to the next batch (records may be copied again after a restart)", "err", err)
			return nil
		}
		r.log.Info("commit to source failed; retrying", "attempt", attempt, "err", err)
		sleepCtx(run.hardCtx, backoff)
		backoff = min(2*backoff, retryBackoffHi)
	}
}

// pollPartitions watches the source's partition counts and grows the target
// to match, so new partitions exist on the target before their first record.
func (r *Reference) pollPartitions(run *refRun) {
	run.every(partitionPoll, func() {
		for _, s := range r.sources {
			ctx, cancel := context.WithTimeout(run.softCtx, adminTimeout)
			n, err := partitionCount(ctx, r.source(adminID), s)
			cancel()
			if err != nil || n == 0 {
				continue // transient (a WAN fault, a broker down): next tick
			}
			dstTopic := r.dstOf[s]
			run.topo.Lock()
			have := run.targetN[dstTopic]
			run.topo.Unlock()
			if n > have {
				r.log.Info("source topic grew; adding partitions on the target", "source", s, "target", dstTopic, "from", have, "to", n)
				if err := r.growTarget(run, dstTopic, n); err != nil {
					r.met.errors.WithLabelValues(s).Inc()
					r.log.Warn("adding target partitions failed; will retry", "topic", dstTopic, "want", n, "err", err)
				}
			}
		}
	})
}

// every calls fn every d until the mirror stops (softCtx ends: Stop, Kill
// or Close); the first call is d after the start.
func (run *refRun) every(d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-run.softCtx.Done():
			return
		case <-t.C:
		}
		fn()
	}
}

// syncTopics creates missing target topics with the source's partition
// count, and grows existing ones that have fewer partitions.
func (r *Reference) syncTopics(ctx context.Context, run *refRun) error {
	for _, s := range r.sources {
		cctx, cancel := context.WithTimeout(ctx, adminTimeout)
		n, err := partitionCount(cctx, r.source(adminID), s)
		cancel()
		if err != nil {
			return fmt.Errorf("reference mirror: reading partitions of source topic %q from %s: %w", s, r.cfg.SourceBootstrap, err)
		}
		if n == 0 {
			return fmt.Errorf("reference mirror: source topic %q does not exist on %s; create it before starting the mirror", s, r.cfg.SourceBootstrap)
		}
		d := r.dstOf[s]
		cctx, cancel = context.WithTimeout(ctx, adminTimeout)
		have, err := partitionCount(cctx, r.target(adminID), d)
		cancel()
		if err != nil {
			return fmt.Errorf("reference mirror: reading partitions of target topic %q from %s: %w", d, r.cfg.TargetBootstrap, err)
		}
		if have == 0 {
			if err := r.createTarget(ctx, run, d, n); err != nil {
				return err
			}
			have = n
		}
		run.topo.Lock()
		run.targetN[d] = have
		run.topo.Unlock()
		if have < n {
			if err := r.growTarget(run, d, n); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Reference) createTarget(ctx context.Context, run *refRun, topic string, n int) error {
	cctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(r.dst...), Transport: run.adminTr, Timeout: adminTimeout}
	resp, err := c.CreateTopics(cctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: n, ReplicationFactor: -1,
	}}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("reference mirror: creating target topic %q with %d partitions on %s: %w", topic, n, r.cfg.TargetBootstrap, err)
	}
	r.log.Info("created target topic", "topic", topic, "partitions", n)
	return nil
}

// growTarget raises the target topic to at least want partitions.
func (r *Reference) growTarget(run *refRun, topic string, want int) error {
	ctx, cancel := context.WithTimeout(run.hardCtxOrBackground(), adminTimeout)
	defer cancel()
	have, err := partitionCount(ctx, r.target(adminID), topic)
	if err != nil {
		return fmt.Errorf("reading partitions of target topic %q: %w", topic, err)
	}
	if have < want {
		c := &kafka.Client{Addr: kafka.TCP(r.dst...), Transport: run.adminTr, Timeout: adminTimeout}
		resp, err := c.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{
			Name: topic, Count: int32(want),
		}}})
		if err == nil {
			err = resp.Errors[topic]
		}
		if err != nil {
			// Someone (the poller, a racing call) may have grown it already.
			if h, e2 := partitionCount(ctx, r.target(adminID), topic); e2 != nil || h < want {
				return fmt.Errorf("adding partitions to target topic %q (%d -> %d): %w", topic, have, want, err)
			}
		}
		r.log.Info("added target partitions", "topic", topic, "from", have, "to", want)
		have = want
	}
	run.topo.Lock()
	if have > run.targetN[topic] {
		run.targetN[topic] = have
		run.topoGen++
	}
	run.topo.Unlock()
	return nil
}

func (run *refRun) hardCtxOrBackground() context.Context {
	if run.hardCtx == nil { // during Start, before the loop exists
		return context.Background()
	}
	return run.hardCtx
}

// partitionCount reads a topic's partition count fresh from the cluster (no
// client-side metadata cache). 0 with a nil error: the topic does not exist.
func partitionCount(ctx context.Context, kc kafkaclient.Config, topic string) (int, error) {
	dialer, err := kc.Dialer()
	if err != nil {
		return 0, err
	}
	var lastErr error
	for _, a := range kc.Brokers {
		conn, err := dialer.DialContext(ctx, "tcp", a)
		if err != nil {
			lastErr = err
			continue
		}
		if dl, ok := ctx.Deadline(); ok {
			_ = conn.SetDeadline(dl)
		}
		parts, err := conn.ReadPartitions(topic)
		_ = conn.Close()
		if errors.Is(err, kafka.UnknownTopicOrPartition) {
			return 0, nil
		}
		if err != nil {
			lastErr = err
			continue
		}
		n := 0
		for _, p := range parts {
			if p.Topic == topic {
				n++
			}
		}
		return n, nil
	}
	return 0, fmt.Errorf("no broker of %v answered: %w", kc.Brokers, lastErr)
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// adminID is the client id of the reference mirror's admin requests.
const adminID = "kmt-reference-mirror-admin"

// source and target are how the reference mirror reaches each side, as
// kafkaclient configs (the one client factory; the reference mirror runs
// against kmt's own plaintext clusters, so no security is set). Every
// client of the reference mirror, the transactional ones too, starts here.
func (r *Reference) source(clientID string) kafkaclient.Config {
	return kafkaclient.Config{Brokers: r.src, ClientID: clientID}
}

func (r *Reference) target(clientID string) kafkaclient.Config {
	return kafkaclient.Config{Brokers: r.dst, ClientID: clientID}
}

// kafkaGoDialTimeout is kafka-go's default Transport dial timeout, kept for
// the reference mirror's transports (the factory's default is 10 s).
const kafkaGoDialTimeout = 5 * time.Second
