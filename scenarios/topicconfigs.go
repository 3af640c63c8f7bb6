package scenarios

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Topic configs (spec.topology.topics[].config and targetConfig) are Kafka
// topic-level settings kmt passes to topic creation on every backend: the
// embedded (kfake) and Apache Kafka clusters kmt starts, the user's clusters
// (a missing topic is created with them; an existing one must already have
// them), and the charts' loadgen (--create-topics). Only settings Kafka 4.x
// knows are accepted, with their values checked here, so a typo is exit 2
// before anything starts rather than a broker's INVALID_CONFIG mid-run.

// topicConfigKind checks one config's value; "" means valid.
type topicConfigKind func(v string) string

// intAtLeast accepts an integer of at least lo.
func intAtLeast(lo int64) topicConfigKind {
	return func(v string) string {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return "is not a whole number"
		}
		if n < lo {
			return fmt.Sprintf("must be at least %d", lo)
		}
		return ""
	}
}

// oneOf accepts one of the values (case-sensitive, as Kafka is).
func oneOf(values ...string) topicConfigKind {
	return func(v string) string {
		if slices.Contains(values, v) {
			return ""
		}
		return fmt.Sprintf("must be one of %s", strings.Join(values, ", "))
	}
}

// cleanupPolicy accepts delete, compact or both (a comma list).
func cleanupPolicy(v string) string {
	parts := strings.Split(v, ",")
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "delete" && p != "compact" {
			return "must be delete, compact or \"compact,delete\""
		}
	}
	return ""
}

// ratio accepts a number in [0, 1].
func ratio(v string) string {
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
		return "must be a number between 0 and 1"
	}
	return ""
}

var boolean = oneOf("true", "false")

// topicConfigKinds are the topic configs of Apache Kafka 4.x
// (org.apache.kafka.common.config.TopicConfig) with their value rules
// (the minimums are Kafka's own: segment.bytes is at least 1 MiB since 4.0).
var topicConfigKinds = map[string]topicConfigKind{
	"cleanup.policy":                          cleanupPolicy,
	"compression.type":                        oneOf("producer", "uncompressed", "none", "gzip", "snappy", "lz4", "zstd"),
	"compression.gzip.level":                  intAtLeast(-1),
	"compression.lz4.level":                   intAtLeast(1),
	"compression.zstd.level":                  intAtLeast(-131072),
	"delete.retention.ms":                     intAtLeast(0),
	"file.delete.delay.ms":                    intAtLeast(0),
	"flush.messages":                          intAtLeast(1),
	"flush.ms":                                intAtLeast(0),
	"index.interval.bytes":                    intAtLeast(0),
	"local.retention.bytes":                   intAtLeast(-2),
	"local.retention.ms":                      intAtLeast(-2),
	"max.compaction.lag.ms":                   intAtLeast(1),
	"max.message.bytes":                       intAtLeast(0),
	"message.timestamp.after.max.ms":          intAtLeast(0),
	"message.timestamp.before.max.ms":         intAtLeast(0),
	"message.timestamp.type":                  oneOf("CreateTime", "LogAppendTime"),
	"min.cleanable.dirty.ratio":               ratio,
	"min.compaction.lag.ms":                   intAtLeast(0),
	"min.insync.replicas":                     intAtLeast(1),
	"preallocate":                             boolean,
	"retention.bytes":                         intAtLeast(-1),
	"retention.ms":                            intAtLeast(-1),
	"segment.bytes":                           intAtLeast(1 << 20),
	"segment.index.bytes":                     intAtLeast(4),
	"segment.jitter.ms":                       intAtLeast(0),
	"segment.ms":                              intAtLeast(1),
	"unclean.leader.election.enable":          boolean,
	"follower.replication.throttled.replicas": func(string) string { return "" },
	"leader.replication.throttled.replicas":   func(string) string { return "" },
}

// TopicConfigNames lists the topic configs a scenario may set, for messages.
func TopicConfigNames() []string { return slices.Sorted(maps.Keys(topicConfigKinds)) }

// CheckTopicConfig says what is wrong with one topic config ("" if nothing).
func CheckTopicConfig(name, value string) string {
	kind, ok := topicConfigKinds[name]
	if !ok {
		return fmt.Sprintf("%q is not a Kafka topic config (known: %s)", name, strings.Join(TopicConfigNames(), ", "))
	}
	if msg := kind(value); msg != "" {
		return fmt.Sprintf("%s=%q %s", name, value, msg)
	}
	return ""
}

// IsCompact reports whether a cleanup.policy value includes compaction.
func IsCompact(policy string) bool {
	for p := range strings.SplitSeq(policy, ",") {
		if strings.TrimSpace(p) == "compact" {
			return true
		}
	}
	return false
}

// CompactedTopics lists the source topics created with a cleanup.policy
// that compacts.
func (s *Scenario) CompactedTopics() []string {
	var out []string
	for _, t := range s.Spec.Topology.Topics {
		if IsCompact(t.Config["cleanup.policy"]) {
			out = append(out, t.Name)
		}
	}
	return out
}

// validateTopicConfigs checks spec.topology.topics[].config and targetConfig.
func (s *Scenario) validateTopicConfigs() Errors {
	var es Errors
	if f := s.Spec.Load.Fidelity; len(s.CompactedTopics()) > 0 && (f == nil || !f.Compacted) {
		es = append(es, s.errAt("spec.topology.topics", "topic(s) %v are compacted (cleanup.policy compact): their records are judged by key, so set spec.load.fidelity.compacted: true with tombstoneEvery (the final key -> value maps are compared)", s.CompactedTopics()))
	}
	for i, t := range s.Spec.Topology.Topics {
		for _, side := range []struct {
			field string
			cfg   map[string]string
		}{{"config", t.Config}, {"targetConfig", t.TargetConfig}} {
			for _, k := range slices.Sorted(maps.Keys(side.cfg)) {
				if msg := CheckTopicConfig(k, side.cfg[k]); msg != "" {
					es = append(es, s.errAt(fmt.Sprintf("spec.topology.topics[%d].%s.%s", i, side.field, k), "%s", msg))
				}
			}
		}
	}
	return es
}
