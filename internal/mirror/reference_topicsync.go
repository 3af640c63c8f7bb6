package mirror

import (
	"context"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// MM2NeverCopiedConfigs are the topic settings MirrorMaker 2 never copies
// to the target by design: the default of DefaultConfigPropertyFilter's
// config.properties.exclude in Apache Kafka 4.3.0 (read from
// connect-mirror-4.3.0.jar; 4.0's sources list six of them, 4.3.0 adds
// the two log.message.timestamp.* names). They are cluster-local choices
// (replication throttles, durability, timestamp policy). The reference
// mirror leaves the same ones alone, and the checker reports them as
// never copied instead of judging them.
var MM2NeverCopiedConfigs = []string{
	"follower.replication.throttled.replicas",
	"leader.replication.throttled.replicas",
	"message.timestamp.difference.max.ms",
	"log.message.timestamp.before.max.ms",
	"log.message.timestamp.after.max.ms",
	"message.timestamp.type",
	"unclean.leader.election.enable",
	"min.insync.replicas",
}

// topicSyncEvery is how often the reference mirror copies topic configs and
// looks for the Later topics (MirrorMaker 2: sync.topic.configs.interval.seconds
// and refresh.topics.interval.seconds).
const topicSyncEvery = partitionPoll

// syncMetadata is the reference mirror's topic metadata sync, until Stop:
// Later topics that appeared on the source are created on the target, and
// every topic's configs set on the source (dynamic topic configs, minus
// MM2NeverCopiedConfigs) are set on the target. Partition counts are
// pollPartitions'. The no-topic-sync defect turns it off.
func (r *Reference) syncMetadata(run *refRun) {
	if r.def.noTopicSync {
		r.log.Warn("defect no-topic-sync: topic configs and new topics are never copied")
		return
	}
	src, err := r.source(adminID).NewKgo()
	if err != nil {
		r.log.Warn("topic sync off: source admin client", "err", err)
		return
	}
	defer src.Close()
	dst, err := r.target(adminID).NewKgo()
	if err != nil {
		r.log.Warn("topic sync off: target admin client", "err", err)
		return
	}
	defer dst.Close()
	sa, da := kadm.NewClient(src), kadm.NewClient(dst)
	run.every(topicSyncEvery, func() {
		ctx, cancel := context.WithTimeout(run.softCtx, adminTimeout)
		defer cancel()
		r.copyConfigs(ctx, sa, da, r.createLater(ctx, run))
	})
}

// createLater creates on the target the Later topics that now exist on the
// source, and returns every topic pair that exists on both sides.
func (r *Reference) createLater(ctx context.Context, run *refRun) []TopicMap {
	pairs := make([]TopicMap, 0, len(r.sources)+len(r.cfg.Later))
	for _, s := range r.sources {
		pairs = append(pairs, TopicMap{s, r.dstOf[s]})
	}
	for _, l := range r.cfg.Later {
		n, err := partitionCount(ctx, r.source(adminID), l.Source)
		if err != nil || n == 0 {
			continue // not there yet, or the source is unreachable: next tick
		}
		have, err := partitionCount(ctx, r.target(adminID), l.Target)
		if err != nil {
			continue
		}
		if have == 0 {
			if err := r.createTarget(ctx, run, l.Target, n); err != nil {
				r.log.Warn("creating a new topic on the target failed; will retry", "topic", l.Target, "err", err)
				continue
			}
			r.log.Info("new source topic copied to the target", "source", l.Source, "target", l.Target, "partitions", n)
		}
		pairs = append(pairs, l)
	}
	return pairs
}

// copyConfigs sets on each target topic the source topic's dynamic configs
// it does not have yet.
func (r *Reference) copyConfigs(ctx context.Context, sa, da *kadm.Client, pairs []TopicMap) {
	for _, p := range pairs {
		want, err := topicConfigs(ctx, sa, p.Source, true)
		if err != nil || len(want) == 0 {
			continue
		}
		have, err := topicConfigs(ctx, da, p.Target, false)
		if err != nil {
			continue
		}
		diff := map[string]string{}
		for k, v := range want {
			if have[k] != v {
				diff[k] = v
			}
		}
		if len(diff) == 0 {
			continue
		}
		if err := kafkaclient.SetTopicConfigs(ctx, da, p.Target, diff); err != nil {
			r.log.Warn("copying topic configs failed; will retry", "topic", p.Target, "configs", diff, "err", err)
			continue
		}
		r.log.Info("copied topic configs to the target", "source", p.Source, "target", p.Target, "configs", slices.Sorted(maps.Keys(diff)))
	}
}

// topicConfigs reads a topic's configs; dynamicOnly keeps those set on the
// topic itself (not defaults) that the mirror copies.
func topicConfigs(ctx context.Context, adm *kadm.Client, topic string, dynamicOnly bool) (map[string]string, error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return nil, err
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return nil, err
	}
	if rc.Err != nil {
		return nil, rc.Err
	}
	out := map[string]string{}
	for _, c := range rc.Configs {
		if c.Value == nil {
			continue
		}
		if dynamicOnly && (c.Source != kmsg.ConfigSourceDynamicTopicConfig || slices.Contains(MM2NeverCopiedConfigs, c.Key)) {
			continue
		}
		out[c.Key] = *c.Value
	}
	return out, nil
}
