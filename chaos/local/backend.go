package local

import (
	"context"
	"fmt"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// A backend is the set of capabilities its clusters, WAN and mirror offer;
// each fault family asks for the ones it needs (see registry.go). The
// embedded clusters (internal/env/embedded) offer every cluster capability; a
// backend of real brokers offers what it can do to them, and a fault whose
// capability is missing is refused before the run with an error naming the
// fault, its kind, the backend and what is missing.
//
// The interfaces are small on purpose: a backend that can kill brokers but
// not pause them implements BrokerKiller and not BrokerPauser, and only
// broker-pause is refused.

// Cluster is one side (source or target) of a backend. Its capabilities are
// the interfaces below that it implements; nil means the side is not under
// kmt's control (external runs).
type Cluster = any

// BrokerSet lists a cluster's brokers so broker faults can pick theirs.
type BrokerSet interface {
	Nodes() []int32
	// LeaderNodes returns up to n distinct leaders of topic's first partitions.
	LeaderNodes(topic string, n int) []int32
}

// BrokerKiller takes brokers down hard and brings the same ones back.
type BrokerKiller interface {
	BrokerSet
	KillBrokers(nodes []int32) error
	RestoreBrokers(nodes []int32) error
}

// BrokerPauser freezes brokers with their connections kept open.
type BrokerPauser interface {
	BrokerSet
	PauseBrokers(nodes []int32) error
	ResumeBrokers(nodes []int32) error
}

// ClusterRestarter stops every broker of a cluster and restarts the cluster
// from its persisted data.
type ClusterRestarter interface {
	Stop() error
	Restart(ctx context.Context) error
}

// PartitionAdder grows a topic to a new partition count.
type PartitionAdder interface {
	AddPartitions(ctx context.Context, topic string, total int) error
}

// Purger deletes a topic's records below its high watermark, as retention
// would, and returns the new log start offset per partition.
type Purger interface {
	Purge(ctx context.Context, topic string) (map[int]int64, error)
}

// WAN is the link between the mirror and the source cluster.
type WAN interface {
	SetLatency(oneWay, jitter time.Duration)
	SetBandwidth(bytesPerSecond int64)
	SetPartition(on bool)
	SetStall(percent float64, stall time.Duration)
	ResetConnections() int
}

// Mirror is the mirror under test. Its capabilities are the interfaces
// below that it implements; internal/mirror's Controller has them all.
type Mirror = any

// MirrorStarter (re)starts a mirror after a kill or a stop.
type MirrorStarter interface {
	Start(ctx context.Context) error
}

// MirrorKiller kills the mirror hard: no final commit, in-flight work lost.
type MirrorKiller interface {
	MirrorStarter
	Kill() error
}

// MirrorStopper stops the mirror gracefully: finish in-flight, commit, exit.
type MirrorStopper interface {
	MirrorStarter
	Stop(ctx context.Context) error
}

// MirrorPauser freezes the mirror with its connections kept.
type MirrorPauser interface {
	Pause() error
	Resume() error
}

// TruncationSink learns about source records deleted on purpose, so they
// are reported as truncated and not as mirror loss (the validator).
type TruncationSink interface {
	NoteTruncation(sourceTopic string, logStart map[int]int64)
}

// capability returns what of type T env's named part offers, or an
// *scenarios.UnsupportedError saying which capability is missing.
func capability[T any](env Env, f scenarios.Fault, part any, partName, capName string) (T, error) {
	var zero T
	if part == nil {
		return zero, env.refuse(f, fmt.Sprintf("no %s under kmt's control", partName))
	}
	c, ok := part.(T)
	if !ok {
		return zero, env.refuse(f, fmt.Sprintf("its %s cannot %s", partName, capName))
	}
	return c, nil
}

// cluster picks the source or target side of env.
func (env Env) cluster(name string) Cluster {
	switch name {
	case "source":
		return env.Source
	case "target":
		return env.Target
	}
	return nil
}

func (env Env) refuse(f scenarios.Fault, missing string) error {
	return &scenarios.UnsupportedError{Fault: f.Name, Kind: f.Kind, Backend: env.backend(), Missing: missing}
}

func (env Env) backend() scenarios.Backend {
	if env.Backend == "" {
		return scenarios.BackendLocal
	}
	return env.Backend
}
