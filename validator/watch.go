package validator

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
)

// watchEvery is how often the watch loop reads both clusters' end offsets
// and the target's metadata: the resolution of stall starts and sync times.
const watchEvery = time.Second

// watcher is the validator's second look at the clusters, beside the
// record readers: the stall watchdog (stall.go) on end offsets and the
// metadata sync watch (metasync.go) on the target's topics.
type watcher struct {
	mu      sync.Mutex
	dog     *Watchdog  // nil: disabled
	sync    *SyncWatch // changes noted by the nemesis
	stalled *prometheus.GaugeVec
	stalls  *prometheus.CounterVec
	syncSec *prometheus.GaugeVec
}

func newWatcher(cfg Config, reg prometheus.Registerer) (*watcher, error) {
	w := &watcher{
		sync: NewSyncWatch(cfg.SyncWithin, neverCopiedSet(cfg.NeverCopied)),
		stalled: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metrics.ValidatorStalled,
			Help: "Target partitions that stand still while their source partition moves, for longer than the stall threshold."}, []string{metrics.LabelTopic}),
		stalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metrics.ValidatorStalls,
			Help: "Stalls begun: a target partition stood still longer than the threshold while its source moved."}, []string{metrics.LabelTopic}),
		syncSec: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metrics.ValidatorSyncSeconds,
			Help: "Seconds a metadata change of the source took to appear on the target."}, []string{metrics.LabelKind, metrics.LabelFault}),
	}
	// A shard's watchdog watches the shard's own target partitions
	// (endOffsets), so each stall is reported by one shard and Merge lists
	// them all.
	if cfg.StallAfter > 0 && cfg.SourceBootstrap != "" {
		w.dog = NewWatchdog(cfg.StallAfter)
	}
	for _, c := range []prometheus.Collector{w.stalled, w.stalls, w.syncSec} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, p := range cfg.Topics {
		w.stalled.WithLabelValues(p.Target).Set(0)
		w.stalls.WithLabelValues(p.Target).Add(0)
	}
	return w, nil
}

func neverCopiedSet(names []string) func(string) bool {
	return func(k string) bool { return slices.Contains(names, k) }
}

// targetOf names the target copy of a source topic.
func (v *Validator) targetOf(source string) string {
	for _, p := range v.cfg.Topics {
		if p.Source == source {
			return p.Target
		}
	}
	if v.cfg.TargetTopicOf != nil {
		return v.cfg.TargetTopicOf(source)
	}
	return source
}

// watchesMetadata: the target's topics are the same for every shard, so
// shard 0 alone times metadata changes (the merge takes its section) and
// the Note* calls of the other shards are ignored: callers may tell every
// shard.
func (v *Validator) watchesMetadata() bool { return v.cfg.Shard == 0 }

// NoteConfigChange: configs were set on the source topic at at (by the
// nemesis); the watch times their arrival on the target.
func (v *Validator) NoteConfigChange(fault, topic string, configs map[string]string, at time.Time) {
	if !v.watchesMetadata() {
		return
	}
	v.w.mu.Lock()
	defer v.w.mu.Unlock()
	v.w.sync.AddConfig(fault, topic, v.targetOf(topic), configs, at)
}

// NotePartitionsChange: the source topic grew to total partitions at at.
func (v *Validator) NotePartitionsChange(fault, topic string, total int, at time.Time) {
	if !v.watchesMetadata() {
		return
	}
	v.w.mu.Lock()
	defer v.w.mu.Unlock()
	v.w.sync.AddPartitions(fault, topic, v.targetOf(topic), total, at)
}

// NoteNewTopic: a topic the mirror should copy was created on the source.
func (v *Validator) NoteNewTopic(fault, topic string, partitions int, at time.Time) {
	if !v.watchesMetadata() {
		return
	}
	v.w.mu.Lock()
	defer v.w.mu.Unlock()
	v.w.sync.AddTopic(fault, topic, v.targetOf(topic), partitions, at)
}

// watchLoop polls both clusters every watchEvery until the validator stops.
func (v *Validator) watchLoop() {
	defer v.wg.Done()
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-v.ctx.Done():
			return
		case <-t.C:
			v.watchOnce(v.ctx)
		}
	}
}

func (v *Validator) watchOnce(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*watchEvery)
	defer cancel()
	if v.w.dog != nil && v.source != nil {
		if ps, ok := v.endOffsets(ctx); ok {
			v.observeProgress(time.Now(), ps)
		}
	}
	v.w.mu.Lock()
	pending := v.w.sync.Pending()
	v.w.mu.Unlock()
	if len(pending) == 0 {
		return
	}
	state := v.topicStates(ctx, pending)
	v.w.mu.Lock()
	seen := v.w.sync.Observe(time.Now(), state)
	v.w.mu.Unlock()
	for _, c := range seen {
		v.w.syncSec.WithLabelValues(c.Kind, c.Fault).Set(*c.Seconds)
		v.log.Info("metadata change appeared on the target", "fault", c.Fault, "kind", c.Kind, "what", c.What,
			"target_topic", c.TargetTopic, "seconds", *c.Seconds, "within_window", c.Synced)
	}
}

// endOffsets reads the end offsets of every watched partition on both
// clusters; a failed read skips the poll (a broker fault must not look
// like a stall of the mirror).
func (v *Validator) endOffsets(ctx context.Context) ([]Progress, bool) {
	var src, tgt []string
	for _, p := range v.cfg.Topics {
		src, tgt = append(src, p.Source), append(tgt, p.Target)
	}
	se, err := v.source.adm.ListEndOffsets(ctx, src...)
	if err != nil || se.Error() != nil {
		return nil, false
	}
	te, err := v.target.adm.ListEndOffsets(ctx, tgt...)
	if err != nil {
		return nil, false
	}
	var ps []Progress
	for _, p := range v.cfg.Topics {
		for part, o := range se[p.Source] {
			if !v.owns(int(part)) {
				continue // another shard's partition: its watchdog watches it
			}
			target := int64(-1)
			if t, ok := te.Lookup(p.Target, part); ok {
				if t.Err != nil && !isUnknownTopic(t.Err) {
					return nil, false
				}
				if t.Err == nil {
					target = t.Offset
				}
			}
			ps = append(ps, Progress{Topic: p.Target, SourceTopic: p.Source, Partition: part, Source: o.Offset, Target: target})
		}
	}
	return ps, true
}

func (v *Validator) observeProgress(now time.Time, ps []Progress) {
	v.w.mu.Lock()
	changed := v.w.dog.Observe(now, ps)
	stalled := map[string]int{}
	for _, p := range ps {
		stalled[p.Topic] += 0
	}
	for k, st := range v.w.dog.parts {
		if st.stall >= 0 {
			stalled[k.topic]++
		}
	}
	v.w.mu.Unlock()
	for topic, n := range stalled {
		v.w.stalled.WithLabelValues(topic).Set(float64(n))
	}
	for _, e := range changed {
		switch {
		case e.Kind == report.RewindKind:
			v.log.Warn("target partition end offset went backwards", "topic", e.Topic, "partition", e.Partition, "to", e.TargetOffset, "by", e.SourceGained)
		case e.Recovered:
			v.log.Info("stalled target partition moves again", "topic", e.Topic, "partition", e.Partition, "stalled_seconds", e.Seconds)
		default:
			v.w.stalls.WithLabelValues(e.Topic).Inc()
			v.log.Warn("target partition stalled: it stands still while its source partition moves (a mirror task dead or hung?)",
				"topic", e.Topic, "partition", e.Partition, "since", e.Start.Format(time.RFC3339), "target_offset", e.TargetOffset,
				"source_gained", e.SourceGained, "threshold", v.w.dog.After())
		}
	}
}

// topicStates describes the target topics: existence, partitions, configs.
func (v *Validator) topicStates(ctx context.Context, topics []string) map[string]TopicState {
	out := map[string]TopicState{}
	md, err := v.target.adm.ListTopics(ctx, topics...)
	if err != nil {
		return out // not polled this time
	}
	var existing []string
	for _, t := range topics {
		d, ok := md[t]
		if !ok || d.Err != nil {
			if !ok || isUnknownTopic(d.Err) {
				out[t] = TopicState{}
			}
			continue
		}
		out[t] = TopicState{Exists: true, Partitions: len(d.Partitions)}
		existing = append(existing, t)
	}
	if len(existing) == 0 {
		return out
	}
	cfgs, err := v.target.adm.DescribeTopicConfigs(ctx, existing...)
	if err != nil {
		for _, t := range existing {
			delete(out, t) // configs unknown: not polled this time
		}
		return out
	}
	for _, rc := range cfgs {
		st, ok := out[rc.Name]
		if !ok {
			continue
		}
		if rc.Err != nil {
			delete(out, rc.Name)
			continue
		}
		st.Configs = map[string]string{}
		for _, c := range rc.Configs {
			if c.Value != nil {
				st.Configs[c.Key] = *c.Value
			}
		}
		out[rc.Name] = st
	}
	return out
}

// waitSynced keeps polling, after the records drained, until every
// metadata change was seen or its window passed, or end.
func (v *Validator) waitSynced(ctx context.Context, end time.Time) {
	for {
		v.w.mu.Lock()
		done := v.w.sync.Settled(time.Now())
		v.w.mu.Unlock()
		if done || !time.Now().Before(end) {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(watchEvery):
		}
	}
}

// finalProgress is the watchdog's last poll, taken when the drain ends.
func (v *Validator) finalProgress(ctx context.Context) {
	if v.w.dog == nil || v.source == nil || ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*watchEvery)
	defer cancel()
	if ps, ok := v.endOffsets(ctx); ok {
		v.observeProgress(time.Now(), ps)
	}
}

// finishWatch ends a drain's watching: it waits for the metadata changes
// still within their window, takes the watchdog's last look (the drain often
// ends less than a poll after the last records land, and a stall the
// watchdog saw start must not stay open because it never looked again: real
// MirrorMaker 2 restarts ended exactly so, all records delivered, stalls
// "never recovered"), stops the readers and the live gauges (the final
// judgement must not race a live one) and returns the stalls and
// metadata_sync sections.
func (v *Validator) finishWatch(ctx context.Context, end time.Time) (*report.Stalls, *report.MetadataSync) {
	v.waitSynced(ctx, end)
	v.finalProgress(ctx)
	v.stop()
	return v.watchResults(time.Now())
}

// watchResults are the stalls and metadata_sync sections at the end.
func (v *Validator) watchResults(now time.Time) (*report.Stalls, *report.MetadataSync) {
	v.w.mu.Lock()
	defer v.w.mu.Unlock()
	var st *report.Stalls
	if v.w.dog != nil {
		st = v.w.dog.Report(now)
	}
	var ms *report.MetadataSync
	if !v.w.sync.Empty() {
		names := slices.Clone(v.cfg.NeverCopied)
		slices.Sort(names)
		ms = v.w.sync.Report(names)
	}
	return st, ms
}

func isUnknownTopic(err error) bool { return errors.Is(err, kerr.UnknownTopicOrPartition) }
