package scenarios

import (
	"fmt"
	"time"
)

// Failover drill lags: how far the drill's consumer group is behind the
// source when the failover comes.
const (
	LagCaughtUp  = "caught-up"  // reads records as they arrive, commits every poll
	LagFarBehind = "far-behind" // reads a record only once it is Behind old
	LagIdle      = "idle"       // reads until IdleAt, then leaves the group (its offsets stay)
)

// Where the drill takes the group's offsets on the target from.
const (
	OffsetsAuto        = "auto"        // the mirror's synced group offsets, else its checkpoints
	OffsetsSynced      = "synced"      // only the group offsets the mirror wrote on the target
	OffsetsCheckpoints = "checkpoints" // only checkpoints, translated as RemoteClusterUtils does
)

// DefaultFailoverGroup is the drill's consumer group unless the scenario
// names one.
const DefaultFailoverGroup = "kmt-failover"

// Failover is the failover drill (spec.failover): a consumer group of kmt's
// reads the source topics and commits offsets while the load runs; at At it
// stops there and, after Settle, starts again on the target from the
// offsets the mirror provides, and reads on. The verdict (report.json
// failover) counts per partition records skipped across the failover (a
// failure), records read twice (against MaxReread), translated offsets that
// went backwards, and offsets that could not be translated.
type Failover struct {
	// Group is the consumer group (default kmt-failover). A mirror the user
	// brings must checkpoint it (MirrorMaker 2: `groups`).
	Group string `yaml:"group,omitempty" json:"group,omitempty"`
	// Lag: caught-up (default), far-behind or idle.
	Lag string `yaml:"lag,omitempty" json:"lag,omitempty"`
	// Behind (far-behind): the group reads a record only once it is this old
	// (by its produce time); default 10s.
	Behind Duration `yaml:"behind,omitempty" json:"behind,omitempty"`
	// IdleAt (idle): when, after load start, the group stops reading and
	// leaves; default a quarter of the load.
	IdleAt Duration `yaml:"idleAt,omitempty" json:"idleAt,omitempty"`
	// At: the failover point after load start; default half the load. The
	// load goes on after it, so the group has records to read on the target.
	At Duration `yaml:"at,omitempty" json:"at,omitempty"`
	// Settle: how long after the group stopped on the source kmt waits
	// before it reads the translated offsets (an operator waits for the
	// next checkpoint); default 2x the mirror's checkpoint interval.
	Settle Duration `yaml:"settle,omitempty" json:"settle,omitempty"`
	// Offsets: auto (default), synced or checkpoints.
	Offsets string `yaml:"offsets,omitempty" json:"offsets,omitempty"`
	// CheckpointsTopic on the target; default "<source alias>.checkpoints.internal"
	// (MirrorMaker 2's name; the reference mirror writes the same).
	CheckpointsTopic string `yaml:"checkpointsTopic,omitempty" json:"checkpointsTopic,omitempty"`
	// MaxReread bounds the records per partition the group may read twice
	// across the failover; unset: the mirror's documented bound (MirrorMaker
	// 2: offset.lag.max; the reference mirror: 0).
	MaxReread *int64 `yaml:"maxReread,omitempty" json:"maxReread,omitempty"`
}

// Defaults of the failover drill.
const (
	DefaultFailoverBehind = 10 * time.Second
)

// defaults fills the drill's unset fields; At and IdleAt stay 0 when unset
// (they follow the load's length: AtFor, IdleAtFor).
func (f *Failover) defaults() {
	if f.Group == "" {
		f.Group = DefaultFailoverGroup
	}
	if f.Lag == "" {
		f.Lag = LagCaughtUp
	}
	if f.Lag == LagFarBehind && f.Behind == 0 {
		f.Behind = Duration(DefaultFailoverBehind)
	}
	if f.Offsets == "" {
		f.Offsets = OffsetsAuto
	}
}

// AtFor is the failover point for a load of length load.
func (f *Failover) AtFor(load time.Duration) time.Duration {
	if f.At > 0 {
		return f.At.D()
	}
	return load / 2
}

// IdleAtFor is when an idle group stops reading, for a load of length load.
func (f *Failover) IdleAtFor(load time.Duration) time.Duration {
	if f.IdleAt > 0 {
		return f.IdleAt.D()
	}
	return load / 4
}

// scaled is the drill with its times multiplied by k (the short form).
func (f *Failover) scaled(k float64) *Failover {
	if f == nil {
		return nil
	}
	c := *f
	for _, d := range []*Duration{&c.Behind, &c.IdleAt, &c.At} {
		*d = Duration(time.Duration(float64(*d) * k).Round(time.Millisecond))
	}
	return &c
}

// validateFailover checks spec.failover (when present) for backend b.
func (s *Scenario) validateFailover(b Backend) Errors {
	f := s.Spec.Failover
	if f == nil {
		return nil
	}
	var es Errors
	add := func(path, format string, args ...any) {
		es = append(es, s.errAt("spec.failover."+path, format, args...))
	}
	if b == BackendKubernetes {
		es = append(es, s.errAt("spec.failover", "the failover drill has no Kubernetes form: at the failover point it moves a consumer group of "+
			"kmt's own from the source to the target on the load's clock and reads the mirror's checkpoints, which only a kmt that runs the load "+
			"itself does (no scenario chart runs that group in a pod). Run it with kmt run instead: against your clusters, "+
			"kmt run %s --source-bootstrap SRC --target-bootstrap TGT --mirror external --target-topic TOPIC (docs/mirrormaker2.md, Failover drill), "+
			"or on this machine, kmt run %s --brokers apache --mirror mirrormaker2", s.Metadata.Name, s.Metadata.Name))
	}
	switch f.Lag {
	case LagCaughtUp, LagFarBehind, LagIdle:
	default:
		add("lag", "must be %s, %s or %s, got %q", LagCaughtUp, LagFarBehind, LagIdle, f.Lag)
	}
	switch f.Offsets {
	case OffsetsAuto, OffsetsSynced, OffsetsCheckpoints:
	default:
		add("offsets", "must be %s, %s or %s, got %q", OffsetsAuto, OffsetsSynced, OffsetsCheckpoints, f.Offsets)
	}
	for _, form := range []*Scenario{s, s.ShortForm()} {
		load, prefix := form.Spec.Load.Duration.D(), ""
		if form != s {
			prefix = "short form: "
		}
		ff := form.Spec.Failover
		if at := ff.AtFor(load); at >= load {
			add("at", "%sthe failover point %v must be before the load ends (%v): the group needs records to read on the target", prefix, at, load)
		}
		if f.Lag == LagIdle && ff.IdleAtFor(load) >= ff.AtFor(load) {
			add("idleAt", "%sthe group must go idle (%v) before the failover point (%v)", prefix, ff.IdleAtFor(load), ff.AtFor(load))
		}
		if form.Spec.Short == nil {
			break
		}
	}
	if f.Lag != LagFarBehind && f.Behind != 0 {
		add("behind", "is for lag %s", LagFarBehind)
	}
	if f.Lag != LagIdle && f.IdleAt != 0 {
		add("idleAt", "is for lag %s", LagIdle)
	}
	if f.MaxReread != nil && *f.MaxReread < 0 {
		add("maxReread", "must not be negative, got %d", *f.MaxReread)
	}
	if k := s.Spec.Topology.Mirror.Kind; k == MirrorProcess {
		es = append(es, s.errAt("spec.failover", "a process mirror (%s) writes no checkpoints kmt can read; use the reference mirror, mirrormaker2, or external (your MirrorMaker 2)", k))
	}
	if f.Group == s.Spec.Topology.Mirror.Group {
		add("group", "%q is the mirror's own consumer group; give the drill another", f.Group)
	}
	if len(es) > 0 {
		return es
	}
	return nil
}

// String says what the drill does, for logs.
func (f *Failover) String() string {
	return fmt.Sprintf("group %s, %s, failover at %v, offsets %s", f.Group, f.Lag, f.At, f.Offsets)
}
