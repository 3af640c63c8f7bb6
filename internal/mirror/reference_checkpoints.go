package mirror

// The reference mirror's offset translation, as MirrorMaker 2 does it: the
// copy loop records an offset sync for every record the target
// acknowledged (source offset -> target offset; MirrorMaker 2 keeps one
// per offset.lag.max records, so the reference's translation is exact), and
// a checkpointer reads the checkpointed groups' committed offsets on the
// source every interval, translates them (checkpoint.Syncs.Translate, MirrorMaker
// 2's rule) and writes MirrorMaker 2 checkpoint records to the target's
// checkpoints topic, and, when asked, commits them to the same group on the
// target (sync.group.offsets) while no member of it is there.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/mirror/checkpoint"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Checkpoints configures the reference mirror's consumer-group offset
// translation (nil Config.Checkpoints: none).
type Checkpoints struct {
	Groups   []string      // consumer groups on the source to checkpoint
	Interval time.Duration // default 1s
	// Topic on the target; default checkpoint.Topic(DefaultSourceAlias).
	Topic string
	// SyncGroupOffsets also commits the translated offsets to the same
	// group on the target while it has no members there.
	SyncGroupOffsets bool
}

// DefaultCheckpointInterval is the reference mirror's checkpoint interval.
const DefaultCheckpointInterval = time.Second

// srcPos is where a target record came from (kafka.Message.WriterData).
type srcPos struct {
	k   tp
	off int64
}

// offsetSyncs are the syncs of every source partition, shared by the copy
// loop (producer promises) and the checkpointer; they outlive a restart,
// as MirrorMaker 2's offset-syncs topic does.
type offsetSyncs struct {
	mu sync.Mutex
	m  map[tp]*checkpoint.Syncs
	// emitted is the last checkpoint per (group, source partition).
	emitted map[string]map[tp]int64
}

// recordSyncs makes an offset sync of every record of msgs the target
// acknowledged (the transactional path: msgs carry their target offsets).
func (r *Reference) recordSyncs(msgs []kafka.Message) {
	for _, m := range msgs {
		r.recordSync(m, m.Offset)
	}
}

// recordSync makes target record m, acknowledged at offset off, an offset
// sync if it kept its source partition number (the producers' promises and
// recordSyncs call it).
func (r *Reference) recordSync(m kafka.Message, off int64) {
	if r.cfg.Checkpoints == nil {
		return
	}
	p, ok := m.WriterData.(srcPos)
	if !ok || m.Partition != p.k.partition || m.Topic != r.dstOf[p.k.topic] {
		return
	}
	r.syncs.mu.Lock()
	defer r.syncs.mu.Unlock()
	s := r.syncs.m[p.k]
	if s == nil {
		s = &checkpoint.Syncs{}
		r.syncs.m[p.k] = s
	}
	s.Add(checkpoint.Sync{Upstream: p.off, Downstream: off})
}

// checkpointLoop runs for one mirror lifetime: a kill stops it too.
func (r *Reference) checkpointLoop(run *refRun) {
	c := r.cfg.Checkpoints
	srcCl, err := r.source("kmt-reference-checkpoints").NewKgo()
	if err != nil {
		r.log.Warn("reference mirror: no checkpoints (source client)", "err", err)
		return
	}
	defer srcCl.Close()
	dstCl, err := r.target("kmt-reference-checkpoints").NewKgo(
		kgo.DefaultProduceTopic(c.Topic), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		r.log.Warn("reference mirror: no checkpoints (target client)", "err", err)
		return
	}
	defer dstCl.Close()
	src, dst := kadm.NewClient(srcCl), kadm.NewClient(dstCl)
	first := true // the first round of this lifetime (checkpoint-rewind)
	run.every(c.Interval, func() {
		for _, g := range c.Groups {
			if err := r.checkpointGroup(run.softCtx, src, dst, dstCl, g, first); err != nil && run.softCtx.Err() == nil {
				r.met.errors.WithLabelValues("").Inc()
				r.log.Info("reference mirror: checkpointing failed; next round", "group", g, "err", err)
			}
		}
		first = false
	})
}

// checkpointGroup translates group's committed source offsets, writes the
// new checkpoints and (SyncGroupOffsets) commits them on the target.
func (r *Reference) checkpointGroup(ctx context.Context, src, dst *kadm.Client, dstCl *kgo.Client, group string, first bool) error {
	cctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	offs, err := src.FetchOffsets(cctx, group)
	if err != nil {
		return fmt.Errorf("reading group %s's offsets on the source: %w", group, err)
	}
	cps := r.translateGroup(group, offs, first)
	if len(cps) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, 0, len(cps))
	commit := kadm.Offsets{}
	for _, c := range cps {
		recs = append(recs, &kgo.Record{Partition: 0, Key: c.Key(), Value: c.Value()})
		commit.Add(kadm.Offset{Topic: c.Topic, Partition: c.Partition, At: c.Downstream, LeaderEpoch: -1})
	}
	if err := dstCl.ProduceSync(cctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("writing %d checkpoints to %s: %w", len(recs), r.cfg.Checkpoints.Topic, err)
	}
	if !r.cfg.Checkpoints.SyncGroupOffsets {
		return nil
	}
	// Only while the group has no member on the target (MirrorMaker 2:
	// "consumers currently using this group"): the broker refuses a commit
	// without a member id into an active group.
	if resp, err := dst.CommitOffsets(cctx, group, commit); err == nil && resp.Error() != nil {
		r.log.Debug("reference mirror: group offsets not synced (the group is active on the target?)", "group", group, "err", resp.Error())
	}
	return nil
}

// translateGroup returns the checkpoints to write: one per partition whose
// translation moved forward since the last one written (never backwards,
// as MirrorMaker 2 since 3.7), with the checkpoint defects applied.
func (r *Reference) translateGroup(group string, offs kadm.OffsetResponses, first bool) []checkpoint.Checkpoint {
	r.syncs.mu.Lock()
	defer r.syncs.mu.Unlock()
	last := r.syncs.emitted[group]
	if last == nil {
		last = map[tp]int64{}
		r.syncs.emitted[group] = last
	}
	var out []checkpoint.Checkpoint
	offs.Each(func(o kadm.OffsetResponse) {
		k := tp{o.Topic, int(o.Partition)}
		s := r.syncs.m[k]
		if _, mirrored := r.dstOf[o.Topic]; !mirrored || o.Err != nil || o.At < 0 || s == nil {
			return
		}
		down, ok := s.Translate(o.At)
		if !ok {
			return
		}
		down += int64(r.def.checkpointAhead)
		rewind := first && r.def.checkpointRewind > 0
		if rewind {
			down = max(0, down-int64(r.def.checkpointRewind))
		}
		if prev, ok := last[k]; ok && down <= prev && !rewind {
			return
		}
		if r.def.checkpointAhead > 0 || rewind {
			r.defectHit(defectName(rewind), 1)
		}
		last[k] = down
		out = append(out, checkpoint.Checkpoint{Group: group, Topic: r.dstOf[o.Topic], Partition: o.Partition, Upstream: o.At, Downstream: down})
	})
	return out
}

func defectName(rewind bool) string {
	if rewind {
		return scenarios.DefectCheckpointRewind
	}
	return scenarios.DefectCheckpointAhead
}

// ensureCheckpointsTopic creates the checkpoints topic on the target (one
// partition, compacted, as MirrorMaker 2 does).
func (r *Reference) ensureCheckpointsTopic(ctx context.Context, run *refRun) error {
	cctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	topic := r.cfg.Checkpoints.Topic
	c := &kafka.Client{Addr: kafka.TCP(r.dst...), Transport: run.adminTr, Timeout: adminTimeout}
	resp, err := c.CreateTopics(cctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: topic, NumPartitions: 1, ReplicationFactor: -1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}},
	}}})
	if err == nil {
		err = resp.Errors[topic]
	}
	if err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("reference mirror: creating the checkpoints topic %q on %s: %w", topic, r.cfg.TargetBootstrap, err)
	}
	return nil
}
