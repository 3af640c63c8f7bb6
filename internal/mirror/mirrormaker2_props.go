package mirror

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MirrorMaker 2 replication policies kmt knows how to name target topics for.
const (
	// PolicyDefault is MirrorMaker 2's DefaultReplicationPolicy: the target
	// topic is "<source alias>.<topic>".
	PolicyDefault = "default"
	// PolicyIdentity is IdentityReplicationPolicy: the target topic keeps
	// the source topic's name.
	PolicyIdentity = "identity"

	identityPolicyClass = "org.apache.kafka.connect.mirror.IdentityReplicationPolicy"
	// DefaultSourceAlias and DefaultTargetAlias are the cluster aliases kmt
	// gives MirrorMaker 2 unless the scenario names others.
	DefaultSourceAlias = "source"
	DefaultTargetAlias = "target"
)

// MM2TargetTopic is the name MirrorMaker 2 gives the copy of topic on the
// target under policy (PolicyDefault or PolicyIdentity).
func MM2TargetTopic(policy, sourceAlias, topic string) string {
	if policy == PolicyIdentity {
		return topic
	}
	if sourceAlias == "" {
		sourceAlias = DefaultSourceAlias
	}
	return sourceAlias + "." + topic
}

// MM2Settings is what kmt generates MirrorMaker 2's properties from. Zero
// values mean "kmt's default" (documented per field); durations are written
// in the unit MirrorMaker 2 reads (seconds or milliseconds).
type MM2Settings struct {
	SourceBootstrap string // what MirrorMaker 2 dials (through the WAN)
	TargetBootstrap string
	SourceAlias     string // default "source"
	TargetAlias     string // default "target"
	Topics          []string
	Policy          string // PolicyDefault (default) or PolicyIdentity

	Tasks int // tasks.max; default 1
	// CheckpointInterval: emit.checkpoints.interval.seconds and
	// sync.group.offsets.interval.seconds; default 5 s (MirrorMaker 2's own
	// default is 60 s).
	CheckpointInterval time.Duration
	// OffsetLagMax: offset.lag.max, how far the target may move before an
	// offset sync is written; nil keeps MirrorMaker 2's default (100).
	OffsetLagMax *int64
	// OffsetFlushInterval: the target worker's offset.flush.interval.ms, how
	// often the source offsets MirrorMaker 2 has copied are committed. 0
	// keeps Kafka Connect's default (60 s): after a hard kill everything
	// since the last flush is copied again.
	OffsetFlushInterval time.Duration
	// RefreshInterval: topic and group discovery and topic-config sync;
	// default 5 s (MirrorMaker 2's own default is 600 s), so partitions
	// added mid-run are picked up within a short scenario.
	RefreshInterval time.Duration
	// SyncGroupOffsets: sync.group.offsets.enabled, MirrorMaker 2 commits
	// the translated offsets of the checkpointed groups to the same groups
	// on the target (while they have no member there): the failover drill.
	SyncGroupOffsets bool

	// ExactlyOnce turns on exactly-once source support on the target worker
	// and read_committed on the source consumer; it needs the internal REST
	// listener on RESTPort.
	ExactlyOnce bool
	RESTPort    int

	// SourceBrokers/TargetBrokers, when known (kmt started the clusters),
	// cap every replication factor MirrorMaker 2 uses at min(3, brokers):
	// its defaults (2 for mirrored topics, 3 for internal ones) fail on a
	// smaller cluster. 0 leaves MirrorMaker 2's defaults.
	SourceBrokers, TargetBrokers int

	// SourceClient/TargetClient are Java client properties for each cluster
	// (security.protocol, sasl.*, ssl.*), written with the cluster's alias
	// prefix so MirrorMaker 2 passes them to every client of that cluster.
	SourceClient, TargetClient map[string]string

	// Fragment is the user's properties (their production settings). Its
	// keys win over kmt's; the effective file shows which were overridden.
	Fragment string
}

const (
	defaultMM2Tasks    = 1
	defaultMM2Interval = 5 * time.Second
)

// prop is one generated property with why kmt sets it.
type prop struct{ key, value, why string }

// MM2Properties renders the effective MirrorMaker 2 properties file:
// kmt's settings (each with a comment saying why), then the user's
// fragment. A fragment key that would break what kmt relies on (which
// clusters, which topics, how target topics are named) is an error that
// names the scenario field to use instead.
func MM2Properties(s MM2Settings) (string, error) {
	if s.SourceBootstrap == "" || s.TargetBootstrap == "" {
		return "", errors.New("mirrormaker2: source and target bootstrap are both needed")
	}
	if len(s.Topics) == 0 {
		return "", errors.New("mirrormaker2: no topic to mirror")
	}
	s = s.withDefaults()
	if s.SourceAlias == s.TargetAlias {
		return "", fmt.Errorf("mirrormaker2: source and target alias are both %q; give them different names", s.SourceAlias)
	}
	for _, a := range []string{s.SourceAlias, s.TargetAlias} {
		if !validAlias(a) {
			return "", fmt.Errorf("mirrormaker2: cluster alias %q: use letters, digits, '_' or '-'", a)
		}
	}
	if s.Policy != PolicyDefault && s.Policy != PolicyIdentity {
		return "", fmt.Errorf("mirrormaker2: replication policy %q: use %q (target topic <alias>.<topic>) or %q (same name)", s.Policy, PolicyDefault, PolicyIdentity)
	}
	if s.ExactlyOnce && s.RESTPort <= 0 {
		return "", errors.New("mirrormaker2: exactly-once needs the internal REST listener; give it a port")
	}
	user, err := parseProperties(s.Fragment)
	if err != nil {
		return "", fmt.Errorf("mirrormaker2: your properties fragment (mirror.config / --mirror-config): %w", err)
	}
	if err := s.checkFragment(user); err != nil {
		return "", err
	}
	gen := s.generated()
	overridden := map[string]bool{}
	for _, u := range user {
		overridden[u.key] = true
	}

	var b strings.Builder
	b.WriteString("# MirrorMaker 2 dedicated mode, generated by kmt from the scenario.\n")
	b.WriteString("# Lines kmt set but your fragment overrides are commented out with \"overridden:\".\n\n")
	for _, p := range gen {
		if p.why != "" {
			fmt.Fprintf(&b, "# %s\n", p.why)
		}
		line := escapeKey(p.key) + "=" + escapeValue(p.value)
		if overridden[p.key] {
			line = "# overridden: " + line
		}
		b.WriteString(line + "\n")
	}
	if len(user) > 0 {
		b.WriteString("\n# ---- your fragment (mirror.config / --mirror-config), as given ----\n")
		b.WriteString(strings.TrimRight(s.Fragment, "\n") + "\n")
	}
	return b.String(), nil
}

func (s MM2Settings) withDefaults() MM2Settings {
	if s.SourceAlias == "" {
		s.SourceAlias = DefaultSourceAlias
	}
	if s.TargetAlias == "" {
		s.TargetAlias = DefaultTargetAlias
	}
	if s.Policy == "" {
		s.Policy = PolicyDefault
	}
	if s.Tasks <= 0 {
		s.Tasks = defaultMM2Tasks
	}
	if s.CheckpointInterval <= 0 {
		s.CheckpointInterval = defaultMM2Interval
	}
	if s.RefreshInterval <= 0 {
		s.RefreshInterval = defaultMM2Interval
	}
	return s
}

// generated lists kmt's properties in file order.
func (s MM2Settings) generated() []prop {
	src, dst := s.SourceAlias, s.TargetAlias
	flow, back := src+"->"+dst+".", dst+"->"+src+"."
	ps := []prop{
		{"clusters", src + ", " + dst, "the two clusters under test"},
		{src + ".bootstrap.servers", s.SourceBootstrap, "the source, reached through kmt's WAN when kmt runs it"},
		{dst + ".bootstrap.servers", s.TargetBootstrap, ""},
		{flow + "enabled", "true", "one flow, source to target"},
		{flow + "topics", strings.Join(quoteTopics(s.Topics), ","), "only the scenario's topics (regular expressions, so dots are escaped)"},
		{back + "enabled", "false", ""},
		{back + "emit.heartbeats.enabled", "false", "no reverse herder: it would write heartbeats into the source"},
		{"tasks.max", strconv.Itoa(s.Tasks), ""},
		{"refresh.topics.interval.seconds", seconds(s.RefreshInterval), "discovery and config sync in seconds, not MirrorMaker 2's 10 minutes, to fit a test run"},
		{"refresh.groups.interval.seconds", seconds(s.RefreshInterval), ""},
		{"sync.topic.configs.interval.seconds", seconds(s.RefreshInterval), ""},
		{"sync.topic.acls.enabled", "false", "kmt's clusters have no authorizer; set it in your fragment to test ACL sync"},
		{"emit.checkpoints.interval.seconds", seconds(s.CheckpointInterval), ""},
		{"sync.group.offsets.interval.seconds", seconds(s.CheckpointInterval), ""},
	}
	if s.SyncGroupOffsets {
		ps = append(ps, prop{"sync.group.offsets.enabled", "true", "the failover drill: translated group offsets committed on the target"})
	}
	if s.Policy == PolicyIdentity {
		ps = append(ps, prop{"replication.policy.class", identityPolicyClass, "target topics keep the source names"})
	}
	if s.OffsetLagMax != nil {
		ps = append(ps, prop{"offset.lag.max", strconv.FormatInt(*s.OffsetLagMax, 10), ""})
	}
	if s.OffsetFlushInterval > 0 {
		ps = append(ps, prop{dst + ".offset.flush.interval.ms", strconv.FormatInt(s.OffsetFlushInterval.Milliseconds(), 10),
			"how often copied source offsets are committed (worker setting: needs the target alias prefix)"})
	}
	ps = append(ps, s.replicationFactors()...)
	if s.ExactlyOnce {
		ps = append(ps,
			prop{dst + ".exactly.once.source.support", "enabled", "exactly-once: transactional writes to the target"},
			prop{src + ".consumer.isolation.level", "read_committed", "and no aborted source records copied"},
			prop{"dedicated.mode.enable.internal.rest", "true", "exactly-once needs the internal REST listener"},
			prop{"listeners", fmt.Sprintf("http://127.0.0.1:%d", s.RESTPort), ""},
		)
	}
	ps = append(ps, clientProps(src, s.SourceClient, "source cluster security")...)
	ps = append(ps, clientProps(dst, s.TargetClient, "target cluster security")...)
	if s.usesEnvSecrets() {
		ps = append(ps,
			prop{"config.providers", envProvider, "secrets come from MirrorMaker 2's environment (set by kmt), never from this file"},
			prop{"config.providers." + envProvider + ".class", envProviderClass, ""})
	}
	return ps
}

// usesEnvSecrets reports whether a client property refers to the env
// config provider.
func (s MM2Settings) usesEnvSecrets() bool {
	for _, m := range []map[string]string{s.SourceClient, s.TargetClient} {
		for _, v := range m {
			if strings.Contains(v, "${"+envProvider+":") {
				return true
			}
		}
	}
	return false
}

// replicationFactors caps every replication factor at what the clusters have.
func (s MM2Settings) replicationFactors() []prop {
	var ps []prop
	if s.TargetBrokers > 0 {
		rf := strconv.Itoa(min(3, s.TargetBrokers))
		ps = append(ps,
			prop{"replication.factor", rf, "replication factors fit the target's " + strconv.Itoa(s.TargetBrokers) + " broker(s)"},
			prop{"checkpoints.topic.replication.factor", rf, ""},
			prop{"heartbeats.topic.replication.factor", rf, ""},
			prop{"offset.storage.replication.factor", rf, ""},
			prop{"config.storage.replication.factor", rf, ""},
			prop{"status.storage.replication.factor", rf, ""},
		)
	}
	if s.SourceBrokers > 0 {
		ps = append(ps, prop{"offset-syncs.topic.replication.factor", strconv.Itoa(min(3, s.SourceBrokers)),
			"the offset-syncs topic lives on the source"})
	}
	return ps
}

func clientProps(alias string, m map[string]string, why string) []prop {
	keys := slices.Sorted(maps.Keys(m))
	var ps []prop
	for i, k := range keys {
		p := prop{key: alias + "." + k, value: m[k]}
		if i == 0 {
			p.why = why
		}
		ps = append(ps, p)
	}
	return ps
}

// checkFragment refuses user keys that would make kmt check the wrong
// topics: the validator reads the target topics kmt derived from the
// scenario's aliases and policy.
func (s MM2Settings) checkFragment(user []prop) error {
	src, dst := s.SourceAlias, s.TargetAlias
	reserved := map[string]string{
		"clusters":                                     "spec.topology.mirror.mirrormaker2.sourceAlias/targetAlias",
		src + ".bootstrap.servers":                     "--source-bootstrap (kmt puts its WAN in front of the source)",
		dst + ".bootstrap.servers":                     "--target-bootstrap",
		src + "->" + dst + ".topics":                   "spec.topology.topics",
		src + "->" + dst + ".enabled":                  "(kmt always runs the source->target flow)",
		"replication.policy.class":                     "spec.topology.mirror.mirrormaker2.replicationPolicy",
		"replication.policy.separator":                 "(kmt names target topics with MirrorMaker 2's default separator '.')",
		src + "->" + dst + ".replication.policy.class": "spec.topology.mirror.mirrormaker2.replicationPolicy",
	}
	for _, u := range user {
		if use, ok := reserved[u.key]; ok {
			return fmt.Errorf("mirrormaker2: your fragment sets %s, which decides what kmt checks; use %s instead", u.key, use)
		}
		if u.key == "config.providers" && s.usesEnvSecrets() && !slices.Contains(strings.Split(strings.ReplaceAll(u.value, " ", ""), ","), envProvider) {
			return fmt.Errorf("mirrormaker2: your fragment sets config.providers=%s, but kmt passes the cluster passwords through the %q provider; list it too (config.providers=%s,%s)", u.value, envProvider, u.value, envProvider)
		}
	}
	return nil
}

// quoteTopics escapes regular-expression dots: MirrorMaker 2 reads topics
// as a list of regular expressions, and "a.b" would also match "aXb".
func quoteTopics(ts []string) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = strings.ReplaceAll(t, ".", `\.`)
	}
	return out
}

func seconds(d time.Duration) string {
	s := int64(d / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

func validAlias(a string) bool {
	if a == "" {
		return false
	}
	for _, r := range a {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
