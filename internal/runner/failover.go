package runner

import (
	"context"
	"fmt"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/failover"
	"github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/mirror"
	"github.com/kmt-dev/kafka-mirror-tester/internal/mirror/checkpoint"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// mm2DefaultOffsetLagMax is MirrorMaker 2's offset.lag.max default.
const mm2DefaultOffsetLagMax = 100

// externalCheckpointInterval is MirrorMaker 2's default
// emit.checkpoints.interval.seconds: a mirror the user brings is assumed
// to use it unless spec.failover.settle says otherwise.
const externalCheckpointInterval = 60 * time.Second

// startFailover joins the failover drill's group on the source (spec.failover;
// the failover/ package) before the load starts.
func (r *run) startFailover(ctx context.Context) error {
	f := r.s.Spec.Failover
	if f == nil {
		return nil
	}
	pairs := make([]failover.Pair, 0, len(r.pairs))
	for _, p := range r.pairs {
		pairs = append(pairs, failover.Pair{Source: p.Source, Target: p.Target})
	}
	bound, from := r.failoverBound()
	cfg := failover.Config{
		Spec: *f, Load: r.s.Spec.Load.Duration.D(), Settle: r.failoverSettle(),
		Source: kafkaclient.Config{Brokers: bootstrap.Split(r.clusters.srcBoot), Dial: kafkaclient.DialFunc(r.clusters.srcDial), ClientID: "kmt-failover", Security: r.o.Security},
		Target: kafkaclient.Config{Brokers: bootstrap.Split(r.clusters.tgtBoot), ClientID: "kmt-failover", Security: r.o.Security},
		Topics: pairs, RunID: r.runID, Ledger: r.led, CheckpointsTopic: r.checkpointsTopic(),
		Bound: bound, BoundFrom: from, Logger: r.log.With("part", "failover"),
	}
	d, err := failover.New(cfg)
	if err != nil {
		return Usage(err)
	}
	if err := d.Start(ctx); err != nil {
		return Env(fmt.Errorf("start the failover drill: %w", err))
	}
	r.defer_(d.Close)
	r.drill = d
	return nil
}

// finishFailover judges the drill into the report (after the drain).
func (r *run) finishFailover(ctx context.Context) {
	if r.drill != nil {
		r.rep.Failover = r.drill.Finish(context.WithoutCancel(ctx))
	}
}

// checkpointsTopic is where the mirror writes checkpoints on the target.
func (r *run) checkpointsTopic() string {
	if t := r.s.Spec.Failover.CheckpointsTopic; t != "" {
		return t
	}
	alias := r.s.Spec.Topology.Mirror.MirrorMaker2.SourceAlias
	if alias == "" {
		alias = mirror.DefaultSourceAlias
	}
	return checkpoint.Topic(alias)
}

// failoverSettle: the scenario's, else two checkpoint intervals of the
// mirror (a checkpoint, then the group offsets synced from it).
func (r *run) failoverSettle() time.Duration {
	f, m := r.s.Spec.Failover, r.s.Spec.Topology.Mirror
	if f.Settle > 0 {
		return f.Settle.D()
	}
	switch m.Kind {
	case scenarios.MirrorReference:
		return 2*mirror.DefaultCheckpointInterval + time.Second
	case scenarios.MirrorMirrorMaker2:
		return 2*mm2CheckpointInterval(&r.s.Spec) + time.Second
	default:
		return 2 * externalCheckpointInterval
	}
}

// mm2FailoverInterval is MirrorMaker 2's checkpoint and group-offset sync
// interval in a failover drill unless the scenario sets one: short, so the
// drill's settle time stays a few seconds.
const mm2FailoverInterval = 2 * time.Second

// mm2CheckpointInterval is the interval kmt gives MirrorMaker 2 (0: the
// properties' default, 5 s).
func mm2CheckpointInterval(sp *scenarios.Spec) time.Duration {
	iv := sp.Topology.Mirror.MirrorMaker2.CheckpointInterval.D()
	switch {
	case iv > 0:
		return iv
	case sp.Failover != nil:
		return mm2FailoverInterval
	default:
		return 5 * time.Second
	}
}

// failoverBound is the re-reads per partition the mirror documents.
func (r *run) failoverBound() (int64, string) {
	f, m := r.s.Spec.Failover, r.s.Spec.Topology.Mirror
	if f.MaxReread != nil {
		return *f.MaxReread, "spec.failover.maxReread"
	}
	switch m.Kind {
	case scenarios.MirrorReference:
		return 0, "reference mirror: an offset sync per record, exact translation"
	case scenarios.MirrorMirrorMaker2:
		if l := m.MirrorMaker2.OffsetLagMax; l != nil {
			return *l, fmt.Sprintf("offset.lag.max=%d", *l)
		}
	}
	return mm2DefaultOffsetLagMax, fmt.Sprintf("offset.lag.max=%d (MirrorMaker 2's default)", mm2DefaultOffsetLagMax)
}

// refCheckpoints turns on the reference mirror's checkpoints for the drill.
func (r *run) refCheckpoints() *mirror.Checkpoints {
	f := r.s.Spec.Failover
	if f == nil {
		return nil
	}
	return &mirror.Checkpoints{Groups: []string{f.Group}, Topic: r.checkpointsTopic(), SyncGroupOffsets: f.Offsets != scenarios.OffsetsCheckpoints}
}

// applyFailover puts --failover-group, --failover-checkpoints-topic and
// --failover-settle into spec.failover.
func (o Options) applyFailover(sp *scenarios.Spec) error {
	if o.FailoverGroup == "" && o.CheckpointsTopic == "" && o.FailoverSettle == 0 {
		return nil
	}
	f := sp.Failover
	if f == nil {
		return Usage(fmt.Errorf("--failover-group/--failover-checkpoints-topic/--failover-settle are for a failover drill, but the scenario has no spec.failover (try failover-caught-up)"))
	}
	if o.FailoverSettle < 0 {
		return Usage(fmt.Errorf("--failover-settle %v: must not be negative", o.FailoverSettle))
	}
	if o.FailoverGroup != "" {
		f.Group = o.FailoverGroup
	}
	if o.CheckpointsTopic != "" {
		f.CheckpointsTopic = o.CheckpointsTopic
	}
	if o.FailoverSettle > 0 {
		f.Settle = scenarios.Duration(o.FailoverSettle)
	}
	return nil
}
