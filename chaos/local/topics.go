package local

import (
	"context"
	"fmt"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// topicFaults: topic-add-partitions grows a source topic (no recovery: a
// partition count only grows); topic-purge stops the mirror, deletes the
// source topic's records as retention would (telling the validator which
// offsets are gone on purpose) and starts the mirror again when the window
// ends. Needs PartitionAdder / Purger on the source and MirrorStopper.
var topicFaults = Family{
	Name:  "topics",
	Kinds: []scenarios.FaultKind{scenarios.TopicAddPartitions, scenarios.TopicPurge},
	Plan:  planTopics,
}

func planTopics(env Env, f scenarios.Fault) (Inject, error) {
	if f.Kind == scenarios.TopicAddPartitions {
		c, err := capability[PartitionAdder](env, f, env.Source, "source cluster", "add partitions")
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context, a *Act) (Recover, error) {
			t := a.Topic()
			if err := c.AddPartitions(ctx, t, f.Params.Partitions); err != nil {
				return nil, err
			}
			at := time.Now()
			a.Did("grew source topic %s to %d partitions", t, f.Params.Partitions)
			if sink := env.Metadata; sink != nil {
				sink.NotePartitionsChange(f.Name, t, f.Params.Partitions, at)
			}
			return nil, nil
		}, nil
	}
	c, err := capability[Purger](env, f, env.Source, "source cluster", "purge topics")
	if err != nil {
		return nil, err
	}
	m, err := capability[MirrorStopper](env, f, env.Mirror, "mirror", "be stopped gracefully")
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, a *Act) (Recover, error) {
		return purge(ctx, a, c, m, a.n.env.Truncations)
	}, nil
}

func purge(ctx context.Context, a *Act, c Purger, m MirrorStopper, sink TruncationSink) (Recover, error) {
	unlock := a.LockMirror()
	defer unlock()
	if err := m.Stop(ctx); err != nil {
		return nil, fmt.Errorf("stop the mirror before the purge: %w", err)
	}
	a.Did("stopped the mirror gracefully")
	t := a.Topic()
	starts, err := c.Purge(ctx, t)
	if err != nil {
		// Still restart the mirror at the end of the window.
		err = fmt.Errorf("purge %s: %w", t, err)
	} else {
		a.Did("purged source topic %s up to %v", t, starts)
		if sink != nil {
			sink.NoteTruncation(t, starts)
		}
	}
	return func(ctx context.Context) error {
		unlock := a.LockMirror()
		defer unlock()
		if err := m.Start(ctx); err != nil {
			return err
		}
		a.Did("started the mirror again")
		return nil
	}, err
}
