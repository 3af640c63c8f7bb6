// Package scenarios parses, defaults and validates kmt scenario files, the
// one input every backend (embedded, external clusters, Kubernetes) runs.
//
// The YAML files of the catalogue live beside this code (scenarios/*.yaml)
// and are embedded into the binary, so `kmt run baseline` works from any
// directory.
//
// Time model: t=0 is the moment the load starts. The load runs for
// Load.Duration. Phases:
//
//	warmup    [0, Warmup)
//	steady    [Warmup, first fault start)   (to load end when there is no fault)
//	fault:<n> [At, At+Duration) of each timeline entry
//	recovery  [last fault end, load end)     (must be at least Recovery long)
//	drain     [load end, until every stream reached its last acked sequence or Drain passed)
package scenarios

import (
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// APIVersion and Kind identify a scenario document.
const (
	APIVersion = "kmt.dev/v1"
	Kind       = "Scenario"
)

// Scenario is one scenario file.
type Scenario struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       string   `yaml:"kind" json:"kind"`
	Metadata   Metadata `yaml:"metadata" json:"metadata"`
	Spec       Spec     `yaml:"spec" json:"spec"`

	// File is where the scenario was read from (for error messages).
	File string `yaml:"-" json:"-"`
	// lines maps a field path ("spec.timeline[2].duration") to its line.
	lines map[string]int
	// explicitZeros are fields the file sets to 0 where 0 would mean the
	// default; Validate reports them.
	explicitZeros Errors
}

// Metadata names and explains a scenario.
type Metadata struct {
	Name string `yaml:"name" json:"name"`
	// Description: what the scenario tests and what a healthy mirror shows.
	Description string `yaml:"description,omitempty" json:"description,omitempty"`
}

// Spec is the body of a scenario.
type Spec struct {
	Topology   Topology   `yaml:"topology" json:"topology"`
	Load       Load       `yaml:"load" json:"load"`
	Warmup     Duration   `yaml:"warmup,omitempty" json:"warmup,omitempty"`
	Recovery   Duration   `yaml:"recovery,omitempty" json:"recovery,omitempty"`
	Drain      Duration   `yaml:"drain,omitempty" json:"drain,omitempty"`
	Timeline   []Fault    `yaml:"timeline,omitempty" json:"timeline,omitempty"`
	Assertions Assertions `yaml:"assertions,omitempty" json:"assertions,omitempty"`
	Short      *Short     `yaml:"short,omitempty" json:"short,omitempty"`
	Validation Validation `yaml:"validation,omitempty" json:"validation,omitempty"`
	// Failover is the failover drill (failover.go); nil: none.
	Failover *Failover `yaml:"failover,omitempty" json:"failover,omitempty"`
}

// Isolation levels the validator can read the target with.
const (
	ReadCommitted   = "read_committed"
	ReadUncommitted = "read_uncommitted"
)

// Validation is how the checker reads the target.
type Validation struct {
	// Isolation: read_committed (default; what a downstream consumer of a
	// transactional mirror reads) or read_uncommitted (records of aborted
	// transactions the reader sees are aborted_read and fail the run).
	Isolation string `yaml:"isolation,omitempty" json:"isolation,omitempty"`
	// SyncWithin: how long a metadata change made on the source mid-run
	// (topic-config, topic-add-partitions, topic-create) may take to
	// appear on the target; default 60s.
	SyncWithin Duration `yaml:"syncWithin,omitempty" json:"syncWithin,omitempty"`
	// StallAfter: a target partition that does not move for this long
	// while its source partition does is a stall (reported live and in the
	// report; one still stalled at the end fails the run); default 30s.
	// A short form scales it by its timeScale (not below
	// MinShortStallAfter), like the fault windows it must see inside.
	StallAfter Duration `yaml:"stallAfter,omitempty" json:"stallAfter,omitempty"`
	// StallWatchdog: "off" switches the stall watchdog off, for a mirror
	// that re-partitions (target partition p is not the copy of source
	// partition p, so comparing them blames a healthy mirror). Default on.
	// stallAfter: 0 is refused rather than read as off or as the default.
	StallWatchdog string `yaml:"stallWatchdog,omitempty" json:"stallWatchdog,omitempty"`
}

// Stall watchdog switch values (Validation.StallWatchdog).
const (
	StallWatchdogOn  = "on"
	StallWatchdogOff = "off"
)

// StallThreshold is the stall watchdog's threshold, or 0 when the
// scenario switched the watchdog off.
func (v Validation) StallThreshold() time.Duration {
	if v.StallWatchdog == StallWatchdogOff {
		return 0
	}
	if v.StallAfter <= 0 {
		return DefaultStallAfter
	}
	return v.StallAfter.D()
}

// Topology is the two clusters, the topics and the mirror.
type Topology struct {
	Source Cluster `yaml:"source,omitempty" json:"source,omitempty"`
	Target Cluster `yaml:"target,omitempty" json:"target,omitempty"`
	Topics []Topic `yaml:"topics" json:"topics"`
	Mirror Mirror  `yaml:"mirror,omitempty" json:"mirror,omitempty"`
}

// Cluster describes one embedded cluster (ignored against existing clusters).
type Cluster struct {
	Brokers int `yaml:"brokers,omitempty" json:"brokers,omitempty"` // default 3
}

// Topic is one source topic and where the mirror writes it.
type Topic struct {
	Name       string `yaml:"name" json:"name"`
	Partitions int    `yaml:"partitions,omitempty" json:"partitions,omitempty"` // default 6
	// TargetName is the topic's name on the target; default Name. MirrorMaker
	// 2 with its default replication policy writes "source.<name>".
	TargetName string `yaml:"targetName,omitempty" json:"targetName,omitempty"`
	// Config: Kafka topic configs the source topic is created with, e.g.
	// {cleanup.policy: compact, segment.ms: "2000"} (topicconfigs.go).
	// The mirror carries them to the target (MirrorMaker 2 syncs topic
	// configs); the run watches each arrive (report.json metadata_sync).
	Config map[string]string `yaml:"config,omitempty" json:"config,omitempty"`
	// TargetConfig: topic configs the target topic is created with
	// beforehand, as an operator would (e.g. a smaller max.message.bytes).
	TargetConfig map[string]string `yaml:"targetConfig,omitempty" json:"targetConfig,omitempty"`
}

// Target returns the target-side topic name.
func (t Topic) Target() string {
	if t.TargetName != "" {
		return t.TargetName
	}
	return t.Name
}

// Mirror kinds.
const (
	MirrorReference = "reference" // kmt's built-in at-least-once mirror
	MirrorProcess   = "process"   // an external command kmt starts and signals
	MirrorExternal  = "external"  // the user's mirror, already running; kmt starts nothing
	// MirrorMirrorMaker2 is Apache Kafka's MirrorMaker 2 in dedicated mode,
	// started by kmt from a Kafka distribution with generated properties.
	MirrorMirrorMaker2 = "mirrormaker2"
)

// Mirror selects and configures the mirror under test.
type Mirror struct {
	Kind string `yaml:"kind,omitempty" json:"kind,omitempty"` // default reference
	// Command (kind process) is run through `sh -c` after Go template
	// substitution of {{.SourceBootstrap}}, {{.TargetBootstrap}},
	// {{.SourceTopic}}, {{.TargetTopic}}, {{.Group}} and {{.ReportDir}}.
	Command string `yaml:"command,omitempty" json:"command,omitempty"`
	// Defects (kind reference) make the reference mirror misbehave on
	// purpose, to prove the checker catches it. Never on by default.
	Defects []Defect `yaml:"defects,omitempty" json:"defects,omitempty"`
	// Group is the consumer group the mirror uses on the source.
	Group string `yaml:"group,omitempty" json:"group,omitempty"`
	// Config (kind mirrormaker2) is a Java properties fragment, your
	// production MirrorMaker 2 settings, added after the properties kmt
	// generates; its keys win. The effective file is in the report folder.
	Config string `yaml:"config,omitempty" json:"config,omitempty"`
	// MirrorMaker2 (kind mirrormaker2) is what kmt generates the properties from.
	MirrorMaker2 MirrorMaker2 `yaml:"mirrormaker2,omitempty" json:"mirrormaker2,omitempty"`
}

// MirrorMaker 2 replication policies.
const (
	PolicyDefault  = "default"  // target topic "<sourceAlias>.<topic>"
	PolicyIdentity = "identity" // target topic keeps the source name
)

// MirrorMaker2 are the settings kmt generates MirrorMaker 2's properties
// from; zero values are kmt's defaults.
type MirrorMaker2 struct {
	// ReplicationPolicy: default (MirrorMaker 2's: the target topic is
	// "<sourceAlias>.<topic>") or identity (same name).
	ReplicationPolicy string `yaml:"replicationPolicy,omitempty" json:"replicationPolicy,omitempty"`
	SourceAlias       string `yaml:"sourceAlias,omitempty" json:"sourceAlias,omitempty"` // default "source"
	TargetAlias       string `yaml:"targetAlias,omitempty" json:"targetAlias,omitempty"` // default "target"
	Tasks             int    `yaml:"tasks,omitempty" json:"tasks,omitempty"`             // tasks.max; default 1
	// ExactlyOnce: exactly-once source support on the target worker and
	// read_committed on the source consumer.
	ExactlyOnce bool `yaml:"exactlyOnce,omitempty" json:"exactlyOnce,omitempty"`
	// CheckpointInterval: checkpoints and group offset sync; default 5s.
	CheckpointInterval Duration `yaml:"checkpointInterval,omitempty" json:"checkpointInterval,omitempty"`
	// OffsetLagMax: offset.lag.max (offset syncs); unset keeps MirrorMaker 2's 100.
	OffsetLagMax *int64 `yaml:"offsetLagMax,omitempty" json:"offsetLagMax,omitempty"`
	// OffsetFlushInterval: how often copied source offsets are committed;
	// unset keeps Kafka Connect's 60s (a hard kill re-copies up to that much).
	OffsetFlushInterval Duration `yaml:"offsetFlushInterval,omitempty" json:"offsetFlushInterval,omitempty"`
	// RefreshInterval: topic/group discovery and config sync; default 5s
	// (MirrorMaker 2's own default is 10 minutes).
	RefreshInterval Duration `yaml:"refreshInterval,omitempty" json:"refreshInterval,omitempty"`
}

// MM2TargetTopic is the name MirrorMaker 2 gives topic on the target.
func (m MirrorMaker2) TargetTopic(topic string) string {
	if m.ReplicationPolicy == PolicyIdentity {
		return topic
	}
	alias := m.SourceAlias
	if alias == "" {
		alias = "source"
	}
	return alias + "." + topic
}

// Defect names of the reference mirror. Each proves one checker rule; the
// two marked "correct" are controls a sound checker must pass.
const (
	DefectDrop                = "drop"                  // drop every Nth record
	DefectDuplicate           = "duplicate"             // write every Nth record twice
	DefectReorder             = "reorder"               // hold every Nth record back behind the next record of its key
	DefectCorrupt             = "corrupt"               // damage one byte (magic, sequence digit or padding, in turn) of every Nth record
	DefectCommitBeforeProduce = "commit-before-produce" // commit source offsets before the target acknowledged (loses records when killed)
	DefectKeyDamage           = "key-damage"            // rewrite the key of every Nth record
	DefectTopicSwap           = "topic-swap"            // write every Nth record to the next mirrored topic's target (needs two topics)
	DefectKeyScatter          = "key-scatter"           // write every Nth record to the next target partition
	DefectHeaderDamage        = "header-damage"         // give every Nth record a damaged kmt header
	DefectTxnAbort            = "txn-abort"             // write in transactions; abort every Nth, never re-send it
	DefectTxnAbortResend      = "txn-abort-resend"      // correct exactly-once: abort every Nth transaction, then re-send it
	DefectRehash              = "rehash"                // correct: route records by key hash into N target partitions
	DefectCopyAborted         = "copy-aborted"          // read the source read_uncommitted: copy records of aborted transactions
	DefectDropHeaders         = "drop-headers"          // drop the fidelity headers of every Nth record (the kmt header kept)
	DefectRewriteTimestamp    = "rewrite-timestamp"     // give every Nth record the copy time as its timestamp
	DefectDropTombstones      = "drop-tombstones"       // never copy a record with a null value (a tombstone)
	DefectPartitionStall      = "partition-stall"       // after N records of source partition 0, silently stop copying it (the task died, all looks Ready)
	DefectNoTopicSync         = "no-topic-sync"         // never copy topic configs nor create topics that appear on the source
	// Failover drill defects (N is a number of offsets, not a period):
	DefectCheckpointAhead  = "checkpoint-ahead"  // translate group offsets N records too far ahead (the group skips them)
	DefectCheckpointRewind = "checkpoint-rewind" // after each (re)start, first checkpoints N records lower (translations go backwards)
)

// EveryDefects take N ("every"); the other defects take none.
var EveryDefects = []string{DefectDrop, DefectDuplicate, DefectReorder, DefectCorrupt, DefectKeyDamage, DefectTopicSwap,
	DefectKeyScatter, DefectHeaderDamage, DefectTxnAbort, DefectTxnAbortResend, DefectRehash, DefectDropHeaders, DefectRewriteTimestamp,
	DefectCheckpointAhead, DefectCheckpointRewind, DefectPartitionStall}

// DefectTakesN reports whether the defect needs N (known: whether it exists).
func DefectTakesN(name string) (takesN, known bool) {
	if name == DefectCommitBeforeProduce || name == DefectNoTopicSync || name == DefectCopyAborted || name == DefectDropTombstones {
		return false, true
	}
	for _, d := range EveryDefects {
		if d == name {
			return true, true
		}
	}
	return false, false
}

// DefectNames lists every defect, for messages.
func DefectNames() string {
	return strings.Join(append(append([]string(nil), EveryDefects...), DefectCommitBeforeProduce, DefectNoTopicSync, DefectCopyAborted, DefectDropTombstones), ", ")
}

// Defect is one deliberate misbehaviour of the reference mirror.
type Defect struct {
	Name  string `yaml:"name" json:"name"`
	Every int    `yaml:"every,omitempty" json:"every,omitempty"` // N for the EveryDefects
}

// Load is what loadgen produces.
type Load struct {
	Rate        float64  `yaml:"rate,omitempty" json:"rate,omitempty"`               // messages per second over all topics; default 1000
	MessageSize int      `yaml:"messageSize,omitempty" json:"messageSize,omitempty"` // bytes per record value; default 256
	Streams     int      `yaml:"streams,omitempty" json:"streams,omitempty"`         // keys per topic; default 32
	Duration    Duration `yaml:"duration,omitempty" json:"duration,omitempty"`       // default 60s
	Count       int64    `yaml:"count,omitempty" json:"count,omitempty"`             // stop after this many records (0: duration only)
	// Transactions: write in transactions, aborting a chosen fraction (loadmodes.go).
	Transactions *Transactions `yaml:"transactions,omitempty" json:"transactions,omitempty"`
	// Fidelity: headers, timestamps, tombstones, large records, compression (loadmodes.go).
	Fidelity *Fidelity `yaml:"fidelity,omitempty" json:"fidelity,omitempty"`
}

// Fault is one window of the timeline.
type Fault struct {
	Name     string      `yaml:"name" json:"name"`
	Kind     FaultKind   `yaml:"kind" json:"kind"`
	At       Duration    `yaml:"at" json:"at"`
	Duration Duration    `yaml:"duration" json:"duration"`
	Params   FaultParams `yaml:"params,omitempty" json:"params,omitempty"`
}

// End is when the fault window closes.
func (f Fault) End() time.Duration { return f.At.D() + f.Duration.D() }

// FaultParams are the parameters of every fault kind; each kind documents
// which it reads (see faultkinds.go) and validation rejects the others.
type FaultParams struct {
	Cluster string  `yaml:"cluster,omitempty" json:"cluster,omitempty"` // source | target
	Brokers int     `yaml:"brokers,omitempty" json:"brokers,omitempty"` // how many brokers (default 1)
	Nodes   []int32 `yaml:"nodes,omitempty" json:"nodes,omitempty"`     // which broker node ids (default: leaders of the first partitions)

	Latency Duration `yaml:"latency,omitempty" json:"latency,omitempty"` // one-way added latency
	Jitter  Duration `yaml:"jitter,omitempty" json:"jitter,omitempty"`
	// BytesPerSecond caps WAN throughput (each direction).
	BytesPerSecond int64 `yaml:"bytesPerSecond,omitempty" json:"bytesPerSecond,omitempty"`
	// Every: period of connection resets (wan-reset).
	Every Duration `yaml:"every,omitempty" json:"every,omitempty"`
	// Percent: share of packets/chunks affected (wan-stall, wan-loss, ...).
	Percent float64  `yaml:"percent,omitempty" json:"percent,omitempty"`
	Stall   Duration `yaml:"stall,omitempty" json:"stall,omitempty"` // stall length per hit (wan-stall)

	Topic      string `yaml:"topic,omitempty" json:"topic,omitempty"`           // topic faults
	Partitions int    `yaml:"partitions,omitempty" json:"partitions,omitempty"` // new total partition count (topic-add-partitions), or a new topic's (topic-create)
	// Config: topic configs to set on the source (topic-config), e.g.
	// {retention.ms: "3600000", cleanup.policy: compact}.
	Config map[string]string `yaml:"config,omitempty" json:"config,omitempty"`

	// Kubernetes-only kinds.
	Workers    int      `yaml:"workers,omitempty" json:"workers,omitempty"`       // cpu-stress
	Memory     string   `yaml:"memory,omitempty" json:"memory,omitempty"`         // memory-stress, e.g. 256MB
	TimeOffset Duration `yaml:"timeOffset,omitempty" json:"timeOffset,omitempty"` // clock-skew
}

// Assertions are the built-in checks and hand-written PromQL of a scenario.
// The anomaly verdict (no loss, no corruption, ...) is always judged; these
// add PromQL-expressed expectations on top.
type Assertions struct {
	NoLoss          *bool           `yaml:"noLoss,omitempty" json:"noLoss,omitempty"`
	MaxDuplicates   *int64          `yaml:"maxDuplicates,omitempty" json:"maxDuplicates,omitempty"`
	Ordered         *bool           `yaml:"ordered,omitempty" json:"ordered,omitempty"`
	P99LatencyBelow *PhaseValue     `yaml:"p99LatencyBelow,omitempty" json:"p99LatencyBelow,omitempty"`
	RecoversWithin  *RecoversWithin `yaml:"recoversWithin,omitempty" json:"recoversWithin,omitempty"`
	Custom          []PromAssertion `yaml:"custom,omitempty" json:"custom,omitempty"`
}

// PhaseValue bounds a duration within a phase window.
type PhaseValue struct {
	Phase string   `yaml:"phase" json:"phase"`
	Value Duration `yaml:"value" json:"value"`
}

// RecoversWithin: after the fault named After ends, mirror lag must be back
// under LagBelow records within Value.
type RecoversWithin struct {
	After    string   `yaml:"after" json:"after"`
	Value    Duration `yaml:"value" json:"value"`
	LagBelow float64  `yaml:"lagBelow,omitempty" json:"lagBelow,omitempty"` // default 100 records
}

// PromAssertion is one hand-written PromQL assertion.
type PromAssertion struct {
	Name string `yaml:"name" json:"name"`
	Expr string `yaml:"expr" json:"expr"`
	// Op is one of < <= == != >= > between; between uses Range.
	Op    string    `yaml:"op" json:"op"`
	Value float64   `yaml:"value,omitempty" json:"value,omitempty"`
	Range []float64 `yaml:"range,omitempty" json:"range,omitempty"` // [lo, hi] inclusive, with op between
	// Window: run | warmup | steady | recovery | drain | fault:<name>. Default run.
	Window string `yaml:"window,omitempty" json:"window,omitempty"`
	// Mode: end (once, at the window's end) | continuous (every Interval across the window).
	Mode     string   `yaml:"mode,omitempty" json:"mode,omitempty"`
	Interval Duration `yaml:"interval,omitempty" json:"interval,omitempty"` // continuous; default 5s
	Tolerate int      `yaml:"tolerate,omitempty" json:"tolerate,omitempty"` // continuous: failed evaluations tolerated
}

// Short overrides for `kmt run --short` (seconds, not minutes). Fault At and
// Duration are multiplied by TimeScale.
type Short struct {
	Duration  Duration `yaml:"duration,omitempty" json:"duration,omitempty"`
	Rate      float64  `yaml:"rate,omitempty" json:"rate,omitempty"`
	Warmup    Duration `yaml:"warmup,omitempty" json:"warmup,omitempty"`
	Recovery  Duration `yaml:"recovery,omitempty" json:"recovery,omitempty"`
	Drain     Duration `yaml:"drain,omitempty" json:"drain,omitempty"`
	TimeScale float64  `yaml:"timeScale,omitempty" json:"timeScale,omitempty"`
}

// Duration is a time.Duration written as "80ms", "1m30s" in YAML.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String formats like time.Duration.
func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML accepts a Go duration string ("250ms", "2m"), or 0.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a duration such as 30s or 250ms", n.Line)
	}
	if n.Value == "0" {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (use a number with a unit: 250ms, 30s, 2m)", n.Line, n.Value)
	}
	if v < 0 {
		return fmt.Errorf("line %d: duration %q must not be negative", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' {
		return fmt.Errorf("duration must be a string, got %s", b)
	}
	v, err := time.ParseDuration(string(b[1 : len(b)-1]))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}
