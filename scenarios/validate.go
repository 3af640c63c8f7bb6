package scenarios

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Defaults.
const (
	DefaultBrokers     = 3
	DefaultPartitions  = 6
	DefaultRate        = 1000
	DefaultMessageSize = 256
	DefaultStreams     = 32
	DefaultDuration    = 60 * time.Second
	DefaultDrain       = 60 * time.Second
	DefaultLagBelow    = 100
	DefaultInterval    = 5 * time.Second
	DefaultSyncWithin  = 60 * time.Second
	DefaultStallAfter  = 30 * time.Second
)

func (s *Scenario) applyDefaults() {
	sp := &s.Spec
	if sp.Topology.Source.Brokers == 0 {
		sp.Topology.Source.Brokers = DefaultBrokers
	}
	if sp.Topology.Target.Brokers == 0 {
		sp.Topology.Target.Brokers = DefaultBrokers
	}
	for i := range sp.Topology.Topics {
		if sp.Topology.Topics[i].Partitions == 0 {
			sp.Topology.Topics[i].Partitions = DefaultPartitions
		}
	}
	if sp.Topology.Mirror.Kind == "" {
		sp.Topology.Mirror.Kind = MirrorReference
	}
	if sp.Topology.Mirror.Group == "" {
		sp.Topology.Mirror.Group = "kmt-mirror"
	}
	if sp.Load.Rate == 0 {
		sp.Load.Rate = DefaultRate
	}
	if sp.Load.MessageSize == 0 {
		sp.Load.MessageSize = DefaultMessageSize
	}
	if sp.Load.Streams == 0 {
		sp.Load.Streams = DefaultStreams
	}
	if sp.Load.Duration == 0 {
		sp.Load.Duration = Duration(DefaultDuration)
	}
	if sp.Drain == 0 {
		sp.Drain = Duration(DefaultDrain)
	}
	if t := sp.Load.Transactions; t != nil && t.Size == 0 {
		t.Size = DefaultTxnSize
	}
	if sp.Validation.Isolation == "" {
		sp.Validation.Isolation = ReadCommitted
	}
	if sp.Validation.SyncWithin == 0 {
		sp.Validation.SyncWithin = Duration(DefaultSyncWithin)
	}
	if sp.Validation.StallAfter == 0 {
		sp.Validation.StallAfter = Duration(DefaultStallAfter)
	}
	for i := range sp.Timeline {
		p := &sp.Timeline[i].Params
		if sp.Timeline[i].Kind == TopicCreate && p.Partitions == 0 {
			p.Partitions = DefaultPartitions
		}
		if (sp.Timeline[i].Kind == BrokerKill || sp.Timeline[i].Kind == BrokerPause) && p.Brokers == 0 && len(p.Nodes) == 0 {
			p.Brokers = 1
		}
	}
	if sp.Failover != nil {
		sp.Failover.defaults()
	}
	if rw := sp.Assertions.RecoversWithin; rw != nil && rw.LagBelow == 0 {
		rw.LagBelow = DefaultLagBelow
	}
	for i := range sp.Assertions.Custom {
		c := &sp.Assertions.Custom[i]
		if c.Window == "" {
			c.Window = "run"
		}
		if c.Mode == "" {
			c.Mode = "end"
		}
		if c.Mode == "continuous" && c.Interval == 0 {
			c.Interval = Duration(DefaultInterval)
		}
	}
}

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,51}[a-z0-9])?$`)
	topicRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,200}$`)
)

// Validate checks the scenario for backend b and returns every problem
// found (as Errors), or nil. It validates the short form too when present,
// because CI runs it. The checks run in the order of the scenario's fields,
// so errors are listed in file order.
func (s *Scenario) Validate(b Backend) error {
	es := append(Errors(nil), s.explicitZeros...)
	for _, check := range []func() Errors{
		s.validateHeader,
		s.validateTopology,
		s.validateMirror,
		s.validateLoad,
		s.validateLoadModes,    // loadmodes.go
		s.validateTopicConfigs, // topicconfigs.go
		s.validateValidation,
		func() Errors { return s.validateTimelines(b) },
		s.validateAssertions,
		func() Errors { return s.validateFailover(b) }, // failover.go
		func() Errors { return s.localLimits(b) },      // limits.go
	} {
		es = append(es, check()...)
	}
	if len(es) == 0 {
		return nil
	}
	return es
}

// validateHeader checks apiVersion, kind and metadata.name.
func (s *Scenario) validateHeader() Errors {
	var es Errors
	if s.APIVersion != APIVersion {
		es = append(es, s.errAt("apiVersion", "must be %q, got %q", APIVersion, s.APIVersion))
	}
	if s.Kind != Kind {
		es = append(es, s.errAt("kind", "must be %q, got %q", Kind, s.Kind))
	}
	if !nameRE.MatchString(s.Metadata.Name) {
		es = append(es, s.errAt("metadata.name", "%q is not a valid name (lower-case letters, digits and '-', at most 53 characters: it names Helm releases)", s.Metadata.Name))
	}
	return es
}

// validateTopology checks broker counts and the topic list.
func (s *Scenario) validateTopology() Errors {
	var es Errors
	tp := &s.Spec.Topology
	for _, c := range []struct {
		path string
		n    int
	}{{"spec.topology.source.brokers", tp.Source.Brokers}, {"spec.topology.target.brokers", tp.Target.Brokers}} {
		if c.n < 1 || c.n > 9 {
			es = append(es, s.errAt(c.path, "must be between 1 and 9, got %d", c.n))
		}
	}
	if len(tp.Topics) == 0 {
		es = append(es, s.errAt("spec.topology.topics", "at least one topic is required"))
	}
	seen := map[string]bool{}
	for i, t := range tp.Topics {
		p := fmt.Sprintf("spec.topology.topics[%d]", i)
		if !topicRE.MatchString(t.Name) {
			es = append(es, s.errAt(p+".name", "%q is not a valid Kafka topic name", t.Name))
		}
		if strings.HasPrefix(t.Name, "__") {
			es = append(es, s.errAt(p+".name", "topic names starting with __ are internal (kmt's ledger uses them)"))
		}
		if seen[t.Name] {
			es = append(es, s.errAt(p+".name", "topic %q listed twice", t.Name))
		}
		seen[t.Name] = true
		if t.TargetName != "" && !topicRE.MatchString(t.TargetName) {
			es = append(es, s.errAt(p+".targetName", "%q is not a valid Kafka topic name", t.TargetName))
		}
		if t.Partitions < 1 || t.Partitions > 1000 {
			es = append(es, s.errAt(p+".partitions", "must be between 1 and 1000, got %d", t.Partitions))
		}
	}
	return es
}

// validateMirror checks the mirror's kind and the settings only some kinds
// read (command, MirrorMaker 2 settings, defects).
func (s *Scenario) validateMirror() Errors {
	var es Errors
	m := s.Spec.Topology.Mirror
	switch m.Kind {
	case MirrorReference:
		if m.Command != "" {
			es = append(es, s.errAt("spec.topology.mirror.command", "only a mirror of kind %q runs a command", MirrorProcess))
		}
	case MirrorProcess:
		if strings.TrimSpace(m.Command) == "" {
			es = append(es, s.errAt("spec.topology.mirror.command", "a mirror of kind process needs a command, e.g. 'kcat -C -b {{.SourceBootstrap}} ... | kcat -P -b {{.TargetBootstrap}} ...'"))
		}
	case MirrorExternal:
	case MirrorMirrorMaker2:
		es = append(es, s.validateMirrorMaker2()...)
	default:
		es = append(es, s.errAt("spec.topology.mirror.kind", "unknown mirror kind %q (use reference, process, external or mirrormaker2)", m.Kind))
	}
	if m.Kind != MirrorMirrorMaker2 && (m.Config != "" || m.MirrorMaker2 != (MirrorMaker2{})) {
		es = append(es, s.errAt("spec.topology.mirror.config", "config and mirrormaker2 settings are for a mirror of kind %q", MirrorMirrorMaker2))
	}
	if len(m.Defects) > 0 && m.Kind != MirrorReference {
		es = append(es, s.errAt("spec.topology.mirror.defects", "defects exist only on the reference mirror"))
	}
	for i, d := range m.Defects {
		p := fmt.Sprintf("spec.topology.mirror.defects[%d]", i)
		switch takesN, known := DefectTakesN(d.Name); {
		case !known:
			es = append(es, s.errAt(p+".name", "unknown defect %q (%s)", d.Name, DefectNames()))
		case takesN && d.Every < 2:
			es = append(es, s.errAt(p+".every", "defect %s needs every >= 2, got %d", d.Name, d.Every))
		}
	}
	return es
}

// validateMirrorMaker2 checks spec.topology.mirror.mirrormaker2 and that no
// topic asks for a target name the replication policy would not write.
func (s *Scenario) validateMirrorMaker2() Errors {
	var es Errors
	mm := s.Spec.Topology.Mirror.MirrorMaker2
	if p := mm.ReplicationPolicy; p != "" && p != PolicyDefault && p != PolicyIdentity {
		es = append(es, s.errAt("spec.topology.mirror.mirrormaker2.replicationPolicy", "%q: use default (target topic <sourceAlias>.<topic>) or identity (same name)", p))
	}
	if mm.Tasks < 0 {
		es = append(es, s.errAt("spec.topology.mirror.mirrormaker2.tasks", "must be >= 1, got %d", mm.Tasks))
	}
	for i, t := range s.Spec.Topology.Topics {
		if t.TargetName != "" && t.TargetName != mm.TargetTopic(t.Name) {
			es = append(es, s.errAt(fmt.Sprintf("spec.topology.topics[%d].targetName", i), "MirrorMaker 2 with replication policy %q writes %s to %q, not %q; drop targetName or change the policy", mm.ReplicationPolicy, t.Name, mm.TargetTopic(t.Name), t.TargetName))
		}
	}
	return es
}

// validateLoad checks the load's rate, message size, streams and count
// (the load modes are validateLoadModes').
func (s *Scenario) validateLoad() Errors {
	var es Errors
	ld := &s.Spec.Load
	if ld.Rate < 0 || ld.Rate > 1e6 {
		es = append(es, s.errAt("spec.load.rate", "must be between 0 and 1000000 messages/s, got %g", ld.Rate))
	}
	if ld.MessageSize < 80 || ld.MessageSize > 1<<20 {
		es = append(es, s.errAt("spec.load.messageSize", "must be between 80 bytes (the header) and 1 MiB, got %d", ld.MessageSize))
	}
	if ld.Streams < 1 || ld.Streams > 100000 {
		es = append(es, s.errAt("spec.load.streams", "must be between 1 and 100000, got %d", ld.Streams))
	}
	if ld.Count < 0 {
		es = append(es, s.errAt("spec.load.count", "must not be negative"))
	}
	return es
}

// validateValidation checks spec.validation: isolation and the stall watchdog.
func (s *Scenario) validateValidation() Errors {
	var es Errors
	v := &s.Spec.Validation
	if iso := v.Isolation; iso != ReadCommitted && iso != ReadUncommitted {
		es = append(es, s.errAt("spec.validation.isolation", "must be %s or %s, got %q", ReadCommitted, ReadUncommitted, iso))
	}
	switch w := v.StallWatchdog; w {
	case "", StallWatchdogOn:
	case StallWatchdogOff:
		if _, written := s.lines["spec.validation.stallAfter"]; written {
			es = append(es, s.errAt("spec.validation.stallAfter", "has no effect with stallWatchdog: off; drop one of them"))
		}
	default:
		es = append(es, s.errAt("spec.validation.stallWatchdog", "must be %s or %s, got %q", StallWatchdogOn, StallWatchdogOff, w))
	}
	return es
}

// validateTimelines checks the timeline as written and, when the scenario
// has a short form, the short form's scaled timeline.
func (s *Scenario) validateTimelines(b Backend) Errors {
	sp := &s.Spec
	es := s.validateTimeline("", sp.Load.Duration.D(), sp.Warmup.D(), sp.Recovery.D(), b)
	sh := sp.Short
	if sh == nil {
		return es
	}
	if sh.TimeScale < 0 || sh.TimeScale > 1 {
		return append(es, s.errAt("spec.short.timeScale", "must be in (0, 1], got %g", sh.TimeScale))
	}
	short := s.ShortForm()
	return append(es, s.validateTimeline("short form: ", short.Spec.Load.Duration.D(), short.Spec.Warmup.D(), short.Spec.Recovery.D(), b)...)
}

// timelineErrs collects a timeline's errors; prefix ("short form: ") says
// which timeline they are about.
type timelineErrs struct {
	s      *Scenario
	prefix string
	es     Errors
}

func (t *timelineErrs) add(path, format string, args ...any) {
	e := t.s.errAt(path, format, args...)
	e.Msg = t.prefix + e.Msg
	t.es = append(t.es, e)
}

// validateTimeline checks fault windows against the load's time span. The
// faults' own settings are checked once, on the timeline as written
// (prefix ""); the short form only rescales the windows.
func (s *Scenario) validateTimeline(prefix string, dur, warmup, recovery time.Duration, b Backend) Errors {
	t := &timelineErrs{s: s, prefix: prefix}
	if warmup >= dur {
		t.add("spec.warmup", "warmup %s must be shorter than the load duration %s", warmup, dur)
	}
	tl := s.Spec.Timeline
	if prefix != "" {
		tl = s.ShortForm().Spec.Timeline
	}
	names := map[string]bool{}
	for i, f := range tl {
		p := fmt.Sprintf("spec.timeline[%d]", i)
		if prefix == "" {
			if !s.checkFault(t, p, f, names, b) {
				continue // unknown kind: its window means nothing
			}
		}
		checkFaultWindow(t, p, f, dur, warmup, recovery)
		checkFaultOverlaps(t, p, f, tl[:i])
	}
	return t.es
}

// checkFault checks one fault's name, kind and params; false when the kind
// is unknown.
func (s *Scenario) checkFault(t *timelineErrs, p string, f Fault, names map[string]bool, b Backend) bool {
	if !nameRE.MatchString(f.Name) {
		t.add(p+".name", "%q is not a valid fault name (lower-case letters, digits, '-')", f.Name)
	}
	if names[f.Name] {
		t.add(p+".name", "fault name %q used twice", f.Name)
	}
	names[f.Name] = true
	info, ok := Kinds[f.Kind]
	if !ok {
		t.add(p+".kind", "unknown fault kind %q (known: %s)", f.Kind, strings.Join(KindNames(), ", "))
		return false
	}
	if b != "" && !f.Kind.Supports(b) {
		t.es = append(t.es, s.errAt(p+".kind", "%s", (&UnsupportedError{Fault: f.Name, Kind: f.Kind, Backend: b}).Error()))
	}
	for _, ps := range f.Params.set() {
		if !slices.Contains(info.Params, ps) {
			t.add(p+".params."+ps, "fault kind %s does not take %s (it takes: %s)", f.Kind, ps, orNone(info.Params))
		}
	}
	for _, r := range info.Required {
		if !slices.Contains(f.Params.set(), r) {
			t.add(p+".params", "fault kind %s needs params.%s", f.Kind, r)
		}
	}
	s.checkFaultParams(t, p, f)
	if (f.Kind == MirrorKill || f.Kind == MirrorRestart || f.Kind == MirrorPause || f.Kind == TopicPurge || strings.HasPrefix(string(f.Kind), "wan-")) && s.Spec.Topology.Mirror.Kind == MirrorExternal {
		t.add(p+".kind", "fault %s acts on the mirror, but mirror kind is external (kmt does not control it); use kind process", f.Kind)
	}
	return true
}

// checkFaultParams checks the values of a fault's params.
func (s *Scenario) checkFaultParams(t *timelineErrs, p string, f Fault) {
	if f.Params.Cluster != "" && f.Params.Cluster != "source" && f.Params.Cluster != "target" {
		t.add(p+".params.cluster", "must be source or target, got %q", f.Params.Cluster)
	}
	if f.Params.Percent < 0 || f.Params.Percent > 100 {
		t.add(p+".params.percent", "must be between 0 and 100, got %g", f.Params.Percent)
	}
	if f.Params.Brokers < 0 {
		t.add(p+".params.brokers", "must not be negative")
	}
	if f.Kind == WANBandwidth && f.Params.BytesPerSecond < 1024 {
		t.add(p+".params.bytesPerSecond", "must be at least 1024, got %d", f.Params.BytesPerSecond)
	}
	t.es = append(t.es, s.validateMetadataFault(p, f)...)
	if f.Params.Topic != "" && !s.hasTopic(f.Params.Topic) && f.Kind != TopicCreate {
		t.add(p+".params.topic", "topic %q is not in spec.topology.topics", f.Params.Topic)
	}
	if f.Kind == TopicAddPartitions {
		tp := s.topic(f.Params.Topic)
		if tp != nil && f.Params.Partitions <= tp.Partitions {
			t.add(p+".params.partitions", "new partition count %d must exceed the topic's %d", f.Params.Partitions, tp.Partitions)
		}
	}
}

// checkFaultWindow checks that a fault ends by itself, after the warmup,
// before the load ends, and leaves the recovery time asked for.
func checkFaultWindow(t *timelineErrs, p string, f Fault, dur, warmup, recovery time.Duration) {
	if f.Duration <= 0 {
		t.add(p+".duration", "a fault needs a duration > 0 so that it ends by itself")
	}
	if f.At.D() < warmup {
		t.add(p+".at", "fault starts at %s, inside the warmup (%s)", f.At, warmup)
	}
	if f.End() > dur {
		t.add(p+".duration", "fault ends at %s, after the load ends (%s)", f.End(), dur)
	}
	if rec := dur - f.End(); f.End() <= dur && rec < recovery {
		t.add(p+".duration", "fault ends at %s, leaving %s of load before the end; the scenario asks for recovery %s", f.End(), rec, recovery)
	}
}

// checkFaultOverlaps refuses a fault overlapping an earlier one of the same
// exclusivity group on the same object.
func checkFaultOverlaps(t *timelineErrs, p string, f Fault, earlier []Fault) {
	for _, g := range earlier {
		if !(f.At.D() < g.End() && g.At.D() < f.End()) {
			continue
		}
		ki, kj := Kinds[f.Kind], Kinds[g.Kind]
		if ki.Exclusive != "" && ki.Exclusive == kj.Exclusive && sameObject(f, g) {
			t.add(p+".at", "fault %q overlaps fault %q (%s..%s) and both act on the %s; they cannot coexist", f.Name, g.Name, g.At, Duration(g.End()), ki.Exclusive)
		}
	}
}

// sameObject reports whether two exclusive faults touch the same thing:
// broker faults only collide on the same cluster.
func sameObject(f, g Fault) bool {
	if Kinds[f.Kind].Exclusive == "broker" {
		return f.Params.Cluster == g.Params.Cluster
	}
	return true
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "no params"
	}
	return strings.Join(s, ", ")
}

func (s *Scenario) hasTopic(name string) bool { return s.topic(name) != nil }

func (s *Scenario) topic(name string) *Topic {
	if name == "" && len(s.Spec.Topology.Topics) > 0 {
		return &s.Spec.Topology.Topics[0]
	}
	for i := range s.Spec.Topology.Topics {
		if s.Spec.Topology.Topics[i].Name == name {
			return &s.Spec.Topology.Topics[i]
		}
	}
	return nil
}

var ops = []string{"<", "<=", "==", "!=", ">=", ">", "between"}

func (s *Scenario) validateAssertions() Errors {
	var es Errors
	a := s.Spec.Assertions
	if a.MaxDuplicates != nil && *a.MaxDuplicates < 0 {
		es = append(es, s.errAt("spec.assertions.maxDuplicates", "must not be negative"))
	}
	if p := a.P99LatencyBelow; p != nil {
		if err := s.checkWindow(p.Phase); err != "" {
			es = append(es, s.errAt("spec.assertions.p99LatencyBelow.phase", "%s", err))
		}
		if p.Value <= 0 {
			es = append(es, s.errAt("spec.assertions.p99LatencyBelow.value", "must be > 0"))
		}
	}
	if r := a.RecoversWithin; r != nil {
		if !s.hasFault(r.After) {
			es = append(es, s.errAt("spec.assertions.recoversWithin.after", "no fault named %q in spec.timeline", r.After))
		}
		if r.Value <= 0 {
			es = append(es, s.errAt("spec.assertions.recoversWithin.value", "must be > 0"))
		}
	}
	names := map[string]bool{}
	for i, c := range a.Custom {
		p := fmt.Sprintf("spec.assertions.custom[%d]", i)
		if c.Name == "" {
			es = append(es, s.errAt(p+".name", "an assertion needs a name"))
		}
		if names[c.Name] {
			es = append(es, s.errAt(p+".name", "assertion name %q used twice", c.Name))
		}
		names[c.Name] = true
		if strings.TrimSpace(c.Expr) == "" {
			es = append(es, s.errAt(p+".expr", "an assertion needs a PromQL expression"))
		}
		if !slices.Contains(ops, c.Op) {
			es = append(es, s.errAt(p+".op", "unknown comparison %q (use one of %s)", c.Op, strings.Join(ops, " ")))
		}
		if c.Op == "between" && (len(c.Range) != 2 || c.Range[0] > c.Range[1]) {
			es = append(es, s.errAt(p+".range", "op between needs range: [low, high] with low <= high"))
		}
		if c.Op != "between" && len(c.Range) != 0 {
			es = append(es, s.errAt(p+".range", "range is only read with op between"))
		}
		if err := s.checkWindow(c.Window); err != "" {
			es = append(es, s.errAt(p+".window", "%s", err))
		}
		if c.Mode != "end" && c.Mode != "continuous" {
			es = append(es, s.errAt(p+".mode", "unknown mode %q (end or continuous)", c.Mode))
		}
		if c.Tolerate < 0 {
			es = append(es, s.errAt(p+".tolerate", "must not be negative"))
		}
		if c.Mode != "continuous" && (c.Tolerate != 0 || c.Interval != 0) {
			es = append(es, s.errAt(p+".mode", "interval and tolerate need mode: continuous"))
		}
	}
	return es
}

func (s *Scenario) hasFault(name string) bool {
	for _, f := range s.Spec.Timeline {
		if f.Name == name {
			return true
		}
	}
	return false
}

// checkWindow returns "" when w names a window of this scenario.
func (s *Scenario) checkWindow(w string) string {
	switch w {
	case "run", "warmup", "steady", "recovery", "drain":
		return ""
	}
	if name, ok := strings.CutPrefix(w, "fault:"); ok {
		if s.hasFault(name) {
			return ""
		}
		return fmt.Sprintf("window %q names no fault of spec.timeline", w)
	}
	return fmt.Sprintf("unknown window %q (run, warmup, steady, recovery, drain or fault:<name>)", w)
}

// validateMetadataFault checks the source changes of the metadata family:
// a new topic must be new and named as Kafka allows; configs need names.
func (s *Scenario) validateMetadataFault(p string, f Fault) Errors {
	var es Errors
	switch f.Kind {
	case TopicCreate:
		switch {
		case !topicRE.MatchString(f.Params.Topic):
			es = append(es, s.errAt(p+".params.topic", "%q is not a valid Kafka topic name", f.Params.Topic))
		case s.hasTopic(f.Params.Topic):
			es = append(es, s.errAt(p+".params.topic", "topic-create needs a new topic, but %q is in spec.topology.topics already", f.Params.Topic))
		}
		if f.Params.Partitions < 1 {
			es = append(es, s.errAt(p+".params.partitions", "a new topic needs at least 1 partition, got %d", f.Params.Partitions))
		}
	case TopicConfig:
		for k := range f.Params.Config {
			if strings.TrimSpace(k) == "" {
				es = append(es, s.errAt(p+".params.config", "a config name is empty"))
			}
		}
	}
	return es
}

// CreatedTopics lists the topics the timeline creates on the source
// (topic-create): a mirror must be told to copy them before they exist.
func (s *Scenario) CreatedTopics() []string {
	var ts []string
	for _, f := range s.Spec.Timeline {
		if f.Kind == TopicCreate {
			ts = append(ts, f.Params.Topic)
		}
	}
	return ts
}

// TargetTopicOf names the target copy of a source topic the scenario does
// not list (one the timeline creates). MirrorMaker 2 started by kmt: its
// replication policy's name. Any other mirror: the rename the listed
// topics show, when every one of them is the same prefix plus its name
// (an external MirrorMaker 2 writing "<alias>.<topic>"); else the same
// name. Watching the unrenamed name would blame a mirror that created the
// topic where it always puts them.
func (s *Scenario) TargetTopicOf(source string) string {
	m := s.Spec.Topology.Mirror
	if m.Kind == MirrorMirrorMaker2 {
		return m.MirrorMaker2.TargetTopic(source)
	}
	prefix, ok := "", false
	for i, t := range s.Spec.Topology.Topics {
		p, found := strings.CutSuffix(t.Target(), t.Name)
		if !found || (i > 0 && p != prefix) {
			return source
		}
		prefix, ok = p, true
	}
	if !ok {
		return source
	}
	return prefix + source
}
