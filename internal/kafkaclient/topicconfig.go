package kafkaclient

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// SetTopicConfigs sets configs on topic with IncrementalAlterConfigs (the
// topic's other configs keep their values), as an operator's
// kafka-configs.sh --alter --add-config does. The embedded and the Apache
// Kafka clusters both use it for the topic-config fault.
func SetTopicConfigs(ctx context.Context, adm *kadm.Client, topic string, configs map[string]string) error {
	if len(configs) == 0 {
		return errors.New("no config to set")
	}
	var alter []kadm.AlterConfig
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		v := configs[k]
		alter = append(alter, kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: &v})
	}
	resps, err := adm.AlterTopicConfigs(ctx, alter, topic)
	if err != nil {
		return err
	}
	for _, r := range resps {
		if r.Err != nil {
			return fmt.Errorf("topic %s: %w (%s)", r.Name, r.Err, r.ErrMessage)
		}
	}
	return nil
}

// ConfigPtrs turns topic configs into kadm's form (nil for none).
func ConfigPtrs(configs map[string]string) map[string]*string {
	if len(configs) == 0 {
		return nil
	}
	out := make(map[string]*string, len(configs))
	for k, v := range configs {
		out[k] = &v
	}
	return out
}

// ErrTopicConfigMismatch: a topic exists with configs other than the ones
// asked for (the caller's input is at odds with the cluster: exit 2).
var ErrTopicConfigMismatch = errors.New("topic exists with other configs")

// EnsureTopic makes sure topic exists with configs on the cluster adm
// talks to (a user's cluster, not one kmt started): a missing topic is
// created with partitions and configs (replication factor: the broker's
// default) and created reports true; an existing one must already have
// every config at the value asked for, or the error (wrapping
// ErrTopicConfigMismatch) names each difference and the command that fixes
// it. kmt never alters a topic it did not create.
func EnsureTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int, configs map[string]string) (created bool, err error) {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return false, fmt.Errorf("describe the configs of topic %s: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil && rc.Err != nil {
		err = rc.Err
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		resp, err := adm.CreateTopic(ctx, int32(partitions), -1, ConfigPtrs(configs), topic)
		if err == nil && resp.Err != nil {
			err = fmt.Errorf("%w (%s)", resp.Err, resp.ErrMessage)
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return false, fmt.Errorf("create topic %s with %d partitions and configs %v: %w", topic, partitions, configs, err)
		}
		if err == nil {
			return true, nil
		}
		return EnsureTopic(ctx, adm, topic, partitions, configs) // created meanwhile: check it
	}
	if err != nil {
		return false, fmt.Errorf("describe the configs of topic %s: %w", topic, err)
	}
	have := map[string]string{}
	for _, c := range rc.Configs {
		have[c.Key] = c.MaybeValue()
	}
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(configs)) {
		if !SameTopicConfig(k, have[k], configs[k]) {
			diffs = append(diffs, fmt.Sprintf("%s is %q, the scenario wants %q", k, have[k], configs[k]))
		}
	}
	if len(diffs) > 0 {
		var add []string
		for _, k := range slices.Sorted(maps.Keys(configs)) {
			add = append(add, k+"="+configs[k])
		}
		return false, fmt.Errorf("%w: topic %s: %s; kmt does not change a topic it did not create: set them (kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config %s) or run on another topic",
			ErrTopicConfigMismatch, topic, strings.Join(diffs, "; "), topic, strings.Join(add, ","))
	}
	return false, nil
}

// SameTopicConfig compares two values of topic config name as Kafka means
// them: cleanup.policy is a set ("compact,delete" = "delete, compact").
func SameTopicConfig(name, a, b string) bool {
	if name != "cleanup.policy" {
		return strings.TrimSpace(a) == strings.TrimSpace(b)
	}
	set := func(v string) []string {
		var out []string
		for p := range strings.SplitSeq(v, ",") {
			if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(set(a), set(b))
}
