package failover

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/logscan"
	"github.com/kmt-dev/kafka-mirror-tester/internal/mirror/checkpoint"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Where a partition's offset on the target came from.
const (
	FromSynced     = "synced"
	FromCheckpoint = "checkpoint"
)

// translate decides where the group resumes on each target partition:
// the group's committed offsets on the target (the mirror synced them),
// else the latest checkpoint for it (MirrorClient.remoteConsumerOffsets:
// the last record per partition of the checkpoints topic, read to its end),
// as spec.failover.offsets says. Checkpoint offsets are committed to the
// group on the target, as an operator does with RemoteClusterUtils.
func (d *Drill) translate(ctx context.Context) error {
	cl, err := d.cfg.Target.NewKgo()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	synced, err := adm.FetchOffsets(cctx, d.cfg.Spec.Group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		synced, err = nil, nil // nothing synced (kfake says so; Kafka answers empty)
	}
	if err != nil {
		return fmt.Errorf("reading group %s's offsets on the target: %w", d.cfg.Spec.Group, err)
	}
	cps, err := d.readCheckpoints(cctx)
	if err != nil {
		return err
	}
	mode := d.cfg.Spec.Offsets
	commit := kadm.Offsets{}
	d.mu.Lock()
	for tp, p := range d.parts {
		if s, ok := synced.Lookup(p.TargetTopic, tp.Partition); ok && s.Err == nil && s.At >= 0 && mode != scenarios.OffsetsCheckpoints {
			p.Translated, p.TranslatedFrom = s.At, FromSynced
			continue
		}
		if c, ok := cps[tp]; ok && mode != scenarios.OffsetsSynced {
			p.Translated, p.TranslatedFrom = c, FromCheckpoint
			commit.Add(kadm.Offset{Topic: p.TargetTopic, Partition: tp.Partition, At: c, LeaderEpoch: -1})
		}
	}
	d.mu.Unlock()
	if len(commit) == 0 {
		return nil
	}
	resp, err := adm.CommitOffsets(cctx, d.cfg.Spec.Group, commit)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("committing the checkpoints' offsets for group %s on the target (is the group active there?): %w", d.cfg.Spec.Group, err)
	}
	return nil
}

// readCheckpoints is the latest checkpoint of the group per partition.
func (d *Drill) readCheckpoints(ctx context.Context) (map[TP]int64, error) {
	out := map[TP]int64{}
	res, err := logscan.Scan(ctx, logscan.Options{
		Brokers: d.cfg.Target.Brokers, Dial: logscan.DialFunc(d.cfg.Target.Dial), Security: d.cfg.Target.Security,
		Topics: []string{d.cfg.CheckpointsTopic}, ClientID: "kmt-failover-checkpoints",
	}, func(r *kgo.Record) bool {
		c, err := checkpoint.Decode(r.Key, r.Value)
		if err != nil || c.Group != d.cfg.Spec.Group {
			return true
		}
		if src, ok := d.srcTopic[c.Topic]; ok {
			out[TP{src, c.Partition}] = c.Downstream
		}
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("reading checkpoints from %s on the target: %w", d.cfg.CheckpointsTopic, err)
	}
	if len(res.Missing) > 0 {
		d.log.Warn("failover drill: the checkpoints topic does not exist on the target", "topic", d.cfg.CheckpointsTopic)
	}
	return out, nil
}

// startTarget joins the group on the target; partitions without an offset
// start from the beginning (auto.offset.reset=earliest: re-read, never
// skipped, and counted as untranslated).
func (d *Drill) startTarget(ctx context.Context) error {
	cl, err := d.cfg.Target.NewKgo(
		kgo.ConsumerGroup(d.cfg.Spec.Group), kgo.ConsumeTopics(d.tgtTopics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMaxAge(2*time.Second), kgo.MetadataMinAge(250*time.Millisecond),
		kgo.FetchMaxWait(500*time.Millisecond), kgo.AutoCommitInterval(time.Second),
		// Transaction markers are kept so the group's position passes a
		// commit marker that ends a partition (readToEnd); they are not reads.
		kgo.KeepControlRecords(),
	)
	if err != nil {
		return fmt.Errorf("failover drill: consumer group %s on the target: %w", d.cfg.Spec.Group, err)
	}
	d.tgt = cl
	tctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.tgtStop, d.tgtDone = cancel, make(chan struct{})
	go func() {
		defer close(d.tgtDone)
		defer cl.Close()
		for tctx.Err() == nil {
			fs := cl.PollFetches(tctx)
			fs.EachRecord(func(r *kgo.Record) {
				src := d.srcTopic[r.Topic]
				d.mu.Lock()
				d.tgtPos[TP{src, r.Partition}] = r.Offset + 1
				if r.Attrs.IsControl() {
					d.mu.Unlock()
					return
				}
				if id, ok := d.identify(r); ok {
					d.tgtReads = append(d.tgtReads, Read{ID: id, Partition: r.Partition, Offset: r.Offset})
				}
				d.mu.Unlock()
			})
		}
	}()
	return nil
}

// finishWait bounds how long Finish waits for the group to read the
// target to its end.
const finishWait = 60 * time.Second

// Finish lets the group read the target to the end offsets it has now
// (the run drained: everything the mirror will copy is there), stops it,
// reads the whole target and judges.
func (d *Drill) Finish(ctx context.Context) *report.Failover {
	defer d.Close()
	if d.tgt != nil {
		if err := d.readToEnd(ctx); err != nil {
			d.fail(err.Error())
		}
	}
	d.Close()
	var log []Read
	if d.out.Error == "" {
		sctx, cancel := context.WithTimeout(ctx, finishWait)
		var err error
		log, err = d.scanTarget(sctx)
		cancel()
		if err != nil {
			d.fail("reading the target topics to judge: " + err.Error())
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.out
	Judge(Observed{
		Acked: d.cfg.Ledger.Acked, SourceReads: d.srcReads, TargetReads: d.tgtReads, TargetLog: log,
		Partitions: d.parts, Bound: d.cfg.Bound, BoundFrom: d.cfg.BoundFrom,
	}, &out)
	return &out
}

// readToEnd waits until the group's position on every target partition
// reached the end offset it has now.
func (d *Drill) readToEnd(ctx context.Context) error {
	cl, err := d.cfg.Target.NewKgo()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	cctx, cancel := context.WithTimeout(ctx, finishWait)
	defer cancel()
	ends, err := adm.ListEndOffsets(cctx, d.tgtTopics...)
	if err != nil {
		return fmt.Errorf("listing the target's end offsets: %w", err)
	}
	for {
		behind := 0
		d.mu.Lock()
		ends.Each(func(o kadm.ListedOffset) {
			tp := TP{d.srcTopic[o.Topic], o.Partition}
			start := int64(0)
			if p := d.parts[tp]; p != nil && p.Translated > 0 {
				start = p.Translated
			}
			if o.Err == nil && o.Offset > start && d.tgtPos[tp] < o.Offset {
				behind++
			}
		})
		d.mu.Unlock()
		if behind == 0 {
			return nil
		}
		select {
		case <-cctx.Done():
			return fmt.Errorf("the group did not read %d target partitions to their end within %v", behind, finishWait)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
