package mirror

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// MM2Topic is a topic MirrorMaker 2 would create itself.
type MM2Topic struct {
	Name       string
	Partitions int32
	Compact    bool
}

// MM2InternalTopics lists the topics MirrorMaker 2 (and the Kafka Connect
// worker inside it) creates on each cluster for settings s, with the
// partition counts and cleanup policies it asks for: Connect's offset,
// status and config topics, the checkpoints and heartbeats topics on the
// target, and the offset-syncs topic on the source.
func MM2InternalTopics(s MM2Settings) (source, target []MM2Topic) {
	s = s.withDefaults()
	src, dst := s.SourceAlias, s.TargetAlias
	target = []MM2Topic{
		{"mm2-offsets." + src + ".internal", 25, true},
		{"mm2-status." + src + ".internal", 5, true},
		{"mm2-configs." + src + ".internal", 1, true},
		{src + ".checkpoints.internal", 1, true},
		{"heartbeats", 1, true},
	}
	source = []MM2Topic{{"mm2-offset-syncs." + dst + ".internal", 1, true}}
	return source, target
}

// PrecreateTopics creates topics on the cluster kc reaches (an existing
// topic is fine). kmt uses it on its embedded (kfake) clusters: kfake
// answers a CreateTopics request that carries configs with a config source
// of -1, which Kafka's 4.x admin client rejects ("id should be positive"),
// so the Connect worker inside MirrorMaker 2 dies creating its compacted
// topics. Created here, MirrorMaker 2 finds them and goes on.
func PrecreateTopics(ctx context.Context, kc kafkaclient.Config, topics []MM2Topic) error {
	if kc.ClientID == "" {
		kc.ClientID = "kmt-mm2-precreate"
	}
	cl, err := kc.NewKgo()
	if err != nil {
		return fmt.Errorf("mirrormaker2 topics: %w", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 15000
	for _, t := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t.Name, t.Partitions, -1 // -1: the broker default
		if t.Compact {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = "cleanup.policy", kmsg.StringPtr("compact")
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("mirrormaker2 topics: create on %v: %w", kc.Brokers, err)
	}
	var errs []error
	for _, t := range resp.Topics {
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create %s on %v: %w", t.Topic, kc.Brokers, err))
		}
	}
	return errors.Join(errs...)
}
