package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// TopicSpec is a topic to create when missing.
type TopicSpec struct {
	Name       string
	Partitions int
	// Configs: topic configs (the scenario's spec.topology.topics[].config).
	// A missing topic is created with them; an existing one must have them
	// (kafkaclient.EnsureTopic), or EnsureTopics fails with ErrBadConfig.
	Configs map[string]string
}

// EnsureTopics creates the topics that do not exist yet on the cluster at
// bootstrap (replication factor rf, -1 for the broker's default) and leaves
// existing ones alone. The loadgen itself never creates topics (a typo must
// not silently produce to a new topic); this is for cluster runs where kmt
// owns the source topic, e.g. the Helm charts (kmt loadgen --create-topics).
func EnsureTopics(ctx context.Context, client kafkaclient.Config, topics []TopicSpec, rf int) error {
	addrs := client.Brokers
	if len(addrs) == 0 {
		return badConfig("creating topics %v: no bootstrap address; give the source cluster's brokers (--bootstrap host:port,...)", topicNames(topics))
	}
	if err := ensureConfigured(ctx, client, topics); err != nil {
		return err
	}
	tr, err := client.Transport()
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(addrs...), Transport: tr, Timeout: 30 * time.Second}
	req := &kafka.CreateTopicsRequest{}
	for _, t := range topics {
		if len(t.Configs) == 0 {
			req.Topics = append(req.Topics, kafka.TopicConfig{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: rf})
		}
	}
	if len(req.Topics) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := c.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("create topics on %s: %w", strings.Join(addrs, ","), err)
	}
	for name, e := range res.Errors {
		if e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s on %s: %w", name, strings.Join(addrs, ","), e)
		}
	}
	return nil
}

// topicNames lists the names of topics, for messages.
func topicNames(topics []TopicSpec) []string {
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	return names
}

// ensureConfigured creates (or checks) the topics that have configs, with
// kadm: kafka-go cannot describe a topic's configs.
func ensureConfigured(ctx context.Context, client kafkaclient.Config, topics []TopicSpec) error {
	var cl *kgo.Client
	for _, t := range topics {
		if len(t.Configs) == 0 {
			continue
		}
		if cl == nil {
			var err error
			if cl, err = client.NewKgo(); err != nil {
				return err
			}
			defer cl.Close()
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_, err := kafkaclient.EnsureTopic(cctx, kadm.NewClient(cl), t.Name, t.Partitions, t.Configs)
		cancel()
		if errors.Is(err, kafkaclient.ErrTopicConfigMismatch) {
			return badConfig("%v", err)
		}
		if err != nil {
			return fmt.Errorf("on %s: %w", strings.Join(client.Brokers, ","), err)
		}
	}
	return nil
}
