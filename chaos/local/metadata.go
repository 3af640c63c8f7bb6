package local

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// metadataFaults change a source topic's metadata mid-run the way an
// operator does: topic-config sets topic configs (retention.ms,
// cleanup.policy, ...), topic-create creates a topic the mirror's topic
// list matches. Neither is undone at the window's end (an operator's
// change stays); the MetadataSink (the validator) is told what changed and
// when, and watches the target for it. topic-add-partitions (topics.go) is
// a metadata change too and tells the sink the same way.
var metadataFaults = Family{
	Name:  "metadata",
	Kinds: []scenarios.FaultKind{scenarios.TopicConfig, scenarios.TopicCreate},
	Plan:  planMetadata,
}

// TopicConfigurer sets topic configs (incrementally: other configs keep
// their values).
type TopicConfigurer interface {
	AlterTopicConfigs(ctx context.Context, topic string, configs map[string]string) error
}

// TopicCreator creates a topic with a partition count.
type TopicCreator interface {
	CreateTopic(ctx context.Context, name string, partitions int) error
}

// MetadataSink learns about metadata changes made to the source on
// purpose, so it can time how long each takes to appear on the target.
type MetadataSink interface {
	NoteConfigChange(fault, topic string, configs map[string]string, at time.Time)
	NotePartitionsChange(fault, topic string, total int, at time.Time)
	NoteNewTopic(fault, topic string, partitions int, at time.Time)
}

func planMetadata(env Env, f scenarios.Fault) (Inject, error) {
	sink := env.Metadata
	if f.Kind == scenarios.TopicCreate {
		c, err := capability[TopicCreator](env, f, env.Source, "source cluster", "create topics")
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, a *Act) (Recover, error) {
			t, n := f.Params.Topic, f.Params.Partitions
			if err := c.CreateTopic(ctx, t, n); err != nil {
				return nil, fmt.Errorf("create source topic %s with %d partitions: %w", t, n, err)
			}
			at := time.Now()
			a.Did("created source topic %s with %d partitions", t, n)
			if sink != nil {
				sink.NoteNewTopic(f.Name, t, n, at)
			}
			return nil, nil
		}, nil
	}
	c, err := capability[TopicConfigurer](env, f, env.Source, "source cluster", "alter topic configs")
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, a *Act) (Recover, error) {
		t := a.Topic()
		if err := c.AlterTopicConfigs(ctx, t, f.Params.Config); err != nil {
			return nil, fmt.Errorf("set configs %s on source topic %s: %w", configList(f.Params.Config), t, err)
		}
		at := time.Now()
		a.Did("set %s on source topic %s", configList(f.Params.Config), t)
		if sink != nil {
			sink.NoteConfigChange(f.Name, t, maps.Clone(f.Params.Config), at)
		}
		return nil, nil
	}, nil
}

// configList renders configs as "k=v, k=v" in name order.
func configList(m map[string]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ", ")
}
