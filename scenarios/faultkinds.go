package scenarios

import (
	"fmt"
	"sort"
	"strings"
)

// FaultKind names what a timeline entry breaks.
type FaultKind string

// Fault kinds. Where each is carried out:
//   - local backend (embedded clusters, reference or process mirror): chaos/local
//   - Kubernetes: Chaos Mesh objects (chaos/mesh), and kmt's in-cluster
//     agent for what Chaos Mesh cannot do (broker-pause, mirror-pause,
//     topic-add-partitions, topic-purge: internal/kube/agent)
const (
	// Brokers (param cluster: source|target).
	BrokerKill     FaultKind = "broker-kill"     // kill brokers (brokers/nodes); they come back at window end
	BrokerPause    FaultKind = "broker-pause"    // brokers stop answering but keep connections open
	ClusterRestart FaultKind = "cluster-restart" // stop a whole cluster, restart it from its persisted data at window end

	// Mirror process.
	MirrorKill    FaultKind = "mirror-kill"    // hard kill (no final commit); restarted at window end
	MirrorRestart FaultKind = "mirror-restart" // graceful stop; restarted at window end
	MirrorPause   FaultKind = "mirror-pause"   // freeze (SIGSTOP); resumed at window end

	// WAN link between the mirror and the source cluster.
	WANLatency   FaultKind = "wan-latency"   // latency, jitter
	WANBandwidth FaultKind = "wan-bandwidth" // bytesPerSecond
	WANReset     FaultKind = "wan-reset"     // reset every mirror connection each `every`
	WANPartition FaultKind = "wan-partition" // blackhole: bytes stop flowing, connections stay open
	WANStall     FaultKind = "wan-stall"     // loss-like stalls: percent of chunks wait `stall`

	// Topic operations on the source.
	TopicAddPartitions FaultKind = "topic-add-partitions" // topic, partitions (new total)
	TopicPurge         FaultKind = "topic-purge"          // mirror stopped; source records deleted by retention; mirror restarted
	TopicConfig        FaultKind = "topic-config"         // topic, config: set topic configs on the source (retention.ms, cleanup.policy, ...)
	TopicCreate        FaultKind = "topic-create"         // topic (a new name the mirror's topic list matches), partitions

	// Kubernetes-only (Chaos Mesh) kinds.
	PodFailure    FaultKind = "pod-failure"    // mirror pod made unavailable (PodChaos pod-failure)
	ContainerKill FaultKind = "container-kill" // kill the mirror container (PodChaos container-kill)
	WANLoss       FaultKind = "wan-loss"       // percent packet loss
	WANDuplicate  FaultKind = "wan-duplicate"  // percent packet duplication
	WANCorrupt    FaultKind = "wan-corrupt"    // percent packet corruption
	CPUStress     FaultKind = "cpu-stress"     // workers
	MemoryStress  FaultKind = "memory-stress"  // memory
	ClockSkew     FaultKind = "clock-skew"     // timeOffset
)

// Backend is a way of running a scenario.
type Backend string

// Backends.
const (
	BackendLocal      Backend = "local"      // embedded clusters, kmt starts the mirror
	BackendExternal   Backend = "external"   // user's clusters and mirror: kmt injects nothing
	BackendKubernetes Backend = "kubernetes" // Chaos Mesh
)

// KindInfo documents a fault kind: what it reads and who can do it.
type KindInfo struct {
	Kind     FaultKind
	Params   []string // params the kind reads (others are rejected)
	Required []string // params that must be set
	Backends []Backend
	// Exclusive groups kinds that cannot overlap in time on the same
	// object (two faults that both stop the mirror, say).
	Exclusive string
	Help      string
}

var local = []Backend{BackendLocal, BackendKubernetes}

// Kinds is the fault catalogue.
var Kinds = map[FaultKind]KindInfo{
	BrokerKill:         {BrokerKill, []string{"cluster", "brokers", "nodes"}, []string{"cluster"}, local, "broker", "kill brokers of a cluster; they return when the window ends"},
	BrokerPause:        {BrokerPause, []string{"cluster", "brokers", "nodes"}, []string{"cluster"}, local, "broker", "brokers stop answering without closing connections"},
	ClusterRestart:     {ClusterRestart, []string{"cluster"}, []string{"cluster"}, local, "broker", "stop every broker of a cluster, restart from persisted data"},
	MirrorKill:         {MirrorKill, nil, nil, local, "mirror", "kill the mirror hard (no final commit), restart at window end"},
	MirrorRestart:      {MirrorRestart, nil, nil, local, "mirror", "stop the mirror gracefully, restart at window end"},
	MirrorPause:        {MirrorPause, nil, nil, local, "mirror", "freeze the mirror (SIGSTOP), resume at window end"},
	WANLatency:         {WANLatency, []string{"latency", "jitter"}, []string{"latency"}, local, "wan-shape", "add one-way latency (and jitter) to mirror<->source traffic"},
	WANBandwidth:       {WANBandwidth, []string{"bytesPerSecond"}, []string{"bytesPerSecond"}, local, "wan-shape", "cap mirror<->source throughput"},
	WANReset:           {WANReset, []string{"every"}, nil, []Backend{BackendLocal}, "wan-cut", "reset every mirror<->source connection periodically"},
	WANPartition:       {WANPartition, nil, nil, local, "wan-cut", "blackhole mirror<->source traffic"},
	WANStall:           {WANStall, []string{"percent", "stall"}, []string{"percent"}, []Backend{BackendLocal}, "wan-shape", "loss-like stalls: a share of writes wait before going through"},
	TopicAddPartitions: {TopicAddPartitions, []string{"topic", "partitions"}, []string{"partitions"}, local, "", "grow a source topic's partition count mid-run"},
	TopicPurge:         {TopicPurge, []string{"topic"}, nil, local, "mirror", "stop the mirror, delete source records by retention, restart the mirror"},
	// Metadata changes: Kubernetes has no form for them yet (the in-cluster
	// agent could make them), so they are local only and refused there.
	TopicConfig:   {TopicConfig, []string{"topic", "config"}, []string{"config"}, []Backend{BackendLocal}, "", "set topic configs on the source mid-run; the target must show them within spec.validation.syncWithin"},
	TopicCreate:   {TopicCreate, []string{"topic", "partitions"}, []string{"topic"}, []Backend{BackendLocal}, "", "create a new source topic the mirror's topic list matches; the target must have it within spec.validation.syncWithin"},
	PodFailure:    {PodFailure, nil, nil, []Backend{BackendKubernetes}, "mirror", "make the mirror pod unavailable"},
	ContainerKill: {ContainerKill, nil, nil, []Backend{BackendKubernetes}, "mirror", "kill the mirror container"},
	WANLoss:       {WANLoss, []string{"percent"}, []string{"percent"}, []Backend{BackendKubernetes}, "wan-shape", "packet loss between mirror and source"},
	WANDuplicate:  {WANDuplicate, []string{"percent"}, []string{"percent"}, []Backend{BackendKubernetes}, "wan-shape", "packet duplication between mirror and source"},
	WANCorrupt:    {WANCorrupt, []string{"percent"}, []string{"percent"}, []Backend{BackendKubernetes}, "wan-shape", "packet corruption between mirror and source"},
	CPUStress:     {CPUStress, []string{"workers"}, nil, []Backend{BackendKubernetes}, "", "CPU stress on the mirror"},
	MemoryStress:  {MemoryStress, []string{"memory"}, []string{"memory"}, []Backend{BackendKubernetes}, "", "memory stress on the mirror"},
	ClockSkew:     {ClockSkew, []string{"timeOffset"}, []string{"timeOffset"}, []Backend{BackendKubernetes}, "", "skew the mirror's clock"},
}

// Supports reports whether backend b can perform kind k.
func (k FaultKind) Supports(b Backend) bool {
	for _, x := range Kinds[k].Backends {
		if x == b {
			return true
		}
	}
	return false
}

// KindNames lists the known kinds, sorted, for help and error messages.
func KindNames() []string {
	var n []string
	for k := range Kinds {
		n = append(n, string(k))
	}
	sort.Strings(n)
	return n
}

// paramSet returns which params f sets (by YAML name).
func (p FaultParams) set() []string {
	var s []string
	add := func(ok bool, name string) {
		if ok {
			s = append(s, name)
		}
	}
	add(p.Cluster != "", "cluster")
	add(p.Brokers != 0, "brokers")
	add(len(p.Nodes) != 0, "nodes")
	add(p.Latency != 0, "latency")
	add(p.Jitter != 0, "jitter")
	add(p.BytesPerSecond != 0, "bytesPerSecond")
	add(p.Every != 0, "every")
	add(p.Percent != 0, "percent")
	add(p.Stall != 0, "stall")
	add(p.Topic != "", "topic")
	add(p.Partitions != 0, "partitions")
	add(len(p.Config) != 0, "config")
	add(p.Workers != 0, "workers")
	add(p.Memory != "", "memory")
	add(p.TimeOffset != 0, "timeOffset")
	return s
}

// UnsupportedError says a backend cannot perform a fault.
type UnsupportedError struct {
	Fault   string
	Kind    FaultKind
	Backend Backend
	// Missing says what this backend lacks for the kind (a cluster it does
	// not control, a capability its brokers or mirror do not offer); empty
	// when the kind has no meaning on the backend at all.
	Missing string
}

func (e *UnsupportedError) Error() string {
	if e.Missing != "" {
		return fmt.Sprintf("fault %q of kind %s cannot be performed by the %s backend: %s", e.Fault, e.Kind, e.Backend, e.Missing)
	}
	var can []string
	for _, b := range Kinds[e.Kind].Backends {
		can = append(can, string(b))
	}
	return fmt.Sprintf("fault %q of kind %s cannot be performed by the %s backend (it can run on: %s)", e.Fault, e.Kind, e.Backend, strings.Join(can, ", "))
}
