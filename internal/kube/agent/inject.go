package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/chaos/mesh"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// inject performs one of kmt's own faults on the scenario's clock and
// returns what really happened.
func (cfg Config) inject(ctx context.Context, f scenarios.Fault, start time.Time, g *gauges, log *slog.Logger) Record {
	at, end := start.Add(f.At.D()), start.Add(f.End())
	switch f.Kind {
	case scenarios.BrokerPause:
		b := cfg.Targets.Source
		if mesh.Cluster(f.Params.Cluster) == mesh.Target {
			b = cfg.Targets.Target
		}
		sel, _ := ParseSelector(b.BrokerSelector)
		n := max(f.Params.Brokers, 1)
		if len(f.Params.Nodes) > 0 {
			n = 0
		}
		return cfg.pause(ctx, f, at, end, b.Namespace, sel, brokerPodNames(b.BrokerPodPrefix, f.Params.Nodes), n, "", g, log)
	case scenarios.MirrorPause:
		m := cfg.Targets.Mirror
		sel, _ := ParseSelector(m.Selector)
		return cfg.pause(ctx, f, at, end, m.Namespace, sel, nil, 0, m.Container, g, log)
	case scenarios.TopicPurge:
		if cfg.Role == mesh.Source {
			// Mid-window: the mirror is paused on both clusters' clocks
			// even with up to half the window of skew between them.
			return cfg.purge(ctx, f, start.Add(f.At.D()+f.Duration.D()/2), g, log)
		}
		m := cfg.Targets.Mirror
		sel, _ := ParseSelector(m.Selector)
		return cfg.pause(ctx, f, at, end, m.Namespace, sel, nil, 0, m.Container, g, log)
	case scenarios.TopicAddPartitions:
		return cfg.grow(ctx, f, at, g, log)
	}
	return Record{Error: fmt.Sprintf("kmt's agent cannot perform %s", f.Kind)}
}

// pause freezes the selected containers from at to end.
func (cfg Config) pause(ctx context.Context, f scenarios.Fault, at, end time.Time, ns string, sel map[string]string, names []string, n int, container string, g *gauges, log *slog.Logger) Record {
	var r Record
	if cfg.Pauser == nil {
		r.Error = "no Kubernetes access to pause processes (the agent runs without a service account?)"
		return r
	}
	if !until(ctx, at) {
		r.Error = "interrupted before the fault window"
		return r
	}
	pods, err := cfg.Pauser.Select(ctx, ns, sel, names, n, container)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	var paused []PodRef
	// Each pod heals itself a little after the window even if this agent
	// is gone by then (see Pauser.Freeze).
	healAfter := time.Until(end) + pauseHealSlack
	for _, p := range pods {
		// Resumed at the end even when the freeze reports an error: the
		// SIGSTOP may have landed before the exec stream failed, and a
		// SIGCONT to a running pod is harmless.
		paused = append(paused, p)
		if err := cfg.Pauser.Freeze(ctx, p, healAfter); err != nil {
			r.Error = err.Error()
			break
		}
		r.Targets = append(r.Targets, p.String())
	}
	if len(paused) > 0 {
		r.Start = time.Now()
		g.active(f, true)
		r.Actions = append(r.Actions, "paused (SIGSTOP) "+strings.Join(r.Targets, ", "))
		log.Info("fault started", "fault", f.Name, "paused", r.Targets)
		until(ctx, end)
	}
	// Resume even when interrupted: a fault always ends.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	for _, p := range paused {
		if err := resume(rctx, cfg.Pauser, p); err != nil && r.Error == "" {
			r.Error = "resume: " + err.Error()
		}
		if re, err := cfg.Pauser.RestartedSince(rctx, p); err == nil && re {
			r.Actions = append(r.Actions, p.String()+" restarted while paused (a liveness probe failed): the pause became a restart")
		}
	}
	if len(paused) > 0 {
		r.End = time.Now()
		g.active(f, false)
		r.Actions = append(r.Actions, "resumed (SIGCONT)")
		log.Info("fault ended", "fault", f.Name)
	}
	return r
}

func (cfg Config) topic(f scenarios.Fault) string {
	if f.Params.Topic != "" {
		return f.Params.Topic
	}
	return cfg.Scenario.Spec.Topology.Topics[0].Name
}

// purge deletes the source topic's records below the high watermark at t.
func (cfg Config) purge(ctx context.Context, f scenarios.Fault, t time.Time, g *gauges, log *slog.Logger) Record {
	r := Record{Topic: cfg.topic(f)}
	if !until(ctx, t) {
		r.Error = "interrupted before the fault window"
		return r
	}
	cl, err := kafkaClient(cfg.source())
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer cl.Close()
	g.active(f, true)
	defer g.active(f, false)
	r.Start = time.Now()
	r.LogStart, err = purge(ctx, cl, r.Topic)
	r.End = time.Now()
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.Targets = []string{r.Topic}
	r.Actions = []string{fmt.Sprintf("deleted the records of %s below the high watermark: new log start %v", r.Topic, r.LogStart)}
	log.Info("purged", "topic", r.Topic, "log_start", r.LogStart)
	return r
}

// grow adds partitions to the source topic at t.
func (cfg Config) grow(ctx context.Context, f scenarios.Fault, t time.Time, g *gauges, log *slog.Logger) Record {
	r := Record{Topic: cfg.topic(f)}
	if !until(ctx, t) {
		r.Error = "interrupted before the fault window"
		return r
	}
	cl, err := kafkaClient(cfg.source(), kgo.RequestTimeoutOverhead(30*time.Second))
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer cl.Close()
	r.Start = time.Now()
	g.active(f, true)
	if err := addPartitions(ctx, cl, r.Topic, f.Params.Partitions); err != nil {
		r.Error = err.Error()
		g.active(f, false)
		return r
	}
	r.Targets = []string{r.Topic}
	r.Actions = []string{fmt.Sprintf("grew %s to %d partitions", r.Topic, f.Params.Partitions)}
	log.Info("partitions added", "topic", r.Topic, "total", f.Params.Partitions)
	// The topic keeps its new partitions: the window only marks the phase.
	until(ctx, t.Add(f.Duration.D()))
	r.End = time.Now()
	g.active(f, false)
	return r
}

// pauseHealSlack: how long after the window a frozen pod resumes itself
// when the agent could not resume it (Pauser.Freeze).
const pauseHealSlack = 30 * time.Second

// resume sends SIGCONT to p, retrying a failed exec (an API server hiccup)
// until ctx ends: a pod left frozen would fail the rest of the run.
func resume(ctx context.Context, pz *Pauser, p PodRef) error {
	for {
		err := pz.Signal(ctx, p, "CONT")
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(2 * time.Second):
		}
	}
}
