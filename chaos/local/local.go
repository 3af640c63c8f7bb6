// Package local is the nemesis of the local backend: it turns a scenario's
// timeline into actions on the embedded clusters, the user-space WAN and the
// mirror process. Every fault is applied at its start and reverted at its end
// on its own timer; when the run is interrupted, every active fault is
// reverted at once. A fault the local backend cannot perform was rejected by
// scenario validation before the run started.
package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Cluster is what the nemesis needs from an embedded cluster.
type Cluster interface {
	Nodes() []int32
	LeaderNodes(topic string, n int) []int32
	KillBrokers(nodes []int32) error
	RestoreBrokers(nodes []int32) error
	PauseBrokers(nodes []int32) error
	ResumeBrokers(nodes []int32) error
	Stop() error
	Restart(ctx context.Context) error
	AddPartitions(ctx context.Context, topic string, total int) error
	Purge(ctx context.Context, topic string) (map[int]int64, error)
}

// WAN is the link between the mirror and the source.
type WAN interface {
	SetLatency(oneWay, jitter time.Duration)
	SetBandwidth(bytesPerSecond int64)
	SetPartition(on bool)
	SetStall(percent float64, stall time.Duration)
	ResetConnections() int
}

// Mirror is the mirror under test.
type Mirror interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Kill() error
	Pause() error
	Resume() error
}

// TruncationSink learns about source records deleted on purpose, so they
// are reported as truncated and not as mirror loss (the validator).
type TruncationSink interface {
	NoteTruncation(sourceTopic string, logStart map[int]int64)
}

// Env is everything the nemesis acts on. Any may be nil when the scenario
// has no fault that needs it (validation guarantees that).
type Env struct {
	Source, Target Cluster
	WAN            WAN
	Mirror         Mirror
	Truncations    TruncationSink
	// DefaultTopic is the source topic used when a topic fault names none.
	DefaultTopic string
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
}

// Nemesis runs one timeline.
type Nemesis struct {
	env    Env
	faults []scenarios.Fault
	active *prometheus.GaugeVec

	mu      sync.Mutex
	records map[string]*report.Fault
	current map[string]bool
	// mirrorMu serialises mirror state changes from overlapping faults.
	mirrorMu sync.Mutex
}

// RevertTimeout bounds how long reverting one fault may take.
const RevertTimeout = 60 * time.Second

// New prepares a nemesis for faults.
func New(env Env, faults []scenarios.Fault) *Nemesis {
	if env.Logger == nil {
		env.Logger = slog.Default()
	}
	n := &Nemesis{env: env, faults: faults, records: map[string]*report.Fault{}, current: map[string]bool{}}
	n.active = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: metrics.FaultActive, Help: "1 while the fault window is open.",
	}, []string{metrics.LabelFault, metrics.LabelKind})
	if env.Registerer != nil {
		if err := env.Registerer.Register(n.active); err != nil {
			env.Logger.Warn("fault metric not registered", "err", err)
		}
	}
	for _, f := range faults {
		n.records[f.Name] = &report.Fault{Name: f.Name, Kind: string(f.Kind)}
		n.active.WithLabelValues(f.Name, string(f.Kind)).Set(0)
	}
	return n
}

// Run applies every fault at t0+At and reverts it at t0+At+Duration. It
// returns when every fault has been reverted; if ctx ends first, active
// faults are reverted immediately and faults not yet started never start.
func (n *Nemesis) Run(ctx context.Context, t0 time.Time) {
	var wg sync.WaitGroup
	for _, f := range n.faults {
		wg.Add(1)
		go func(f scenarios.Fault) {
			defer wg.Done()
			n.runOne(ctx, t0, f)
		}(f)
	}
	wg.Wait()
}

func (n *Nemesis) runOne(ctx context.Context, t0 time.Time, f scenarios.Fault) {
	if !sleepUntil(ctx, t0.Add(f.At.D())) {
		n.note(f.Name, func(r *report.Fault) { r.Error = "not started: run interrupted" })
		return
	}
	log := n.env.Logger.With("fault", f.Name, "kind", f.Kind)
	log.Info("fault starts", "duration", f.Duration)
	n.setActive(f, true)
	revert, err := n.apply(ctx, f)
	if err != nil {
		log.Error("fault could not be applied", "err", err)
		n.note(f.Name, func(r *report.Fault) { r.Error = err.Error() })
	}
	sleepUntil(ctx, t0.Add(f.End()))
	rctx, cancel := context.WithTimeout(context.Background(), RevertTimeout)
	defer cancel()
	if revert != nil {
		if err := revert(rctx); err != nil {
			log.Error("fault could not be reverted", "err", err)
			n.note(f.Name, func(r *report.Fault) { r.Error = joinErr(r.Error, "revert: "+err.Error()) })
		}
	}
	n.setActive(f, false)
	log.Info("fault ends")
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func (n *Nemesis) setActive(f scenarios.Fault, on bool) {
	v := 0.0
	if on {
		v = 1
	}
	n.active.WithLabelValues(f.Name, string(f.Kind)).Set(v)
	n.note(f.Name, func(r *report.Fault) {
		if on {
			r.Start = time.Now()
		} else {
			r.End = time.Now()
		}
	})
	n.mu.Lock()
	n.current[f.Name] = on
	n.mu.Unlock()
}

func (n *Nemesis) note(name string, fn func(*report.Fault)) {
	n.mu.Lock()
	fn(n.records[name])
	n.mu.Unlock()
}

func (n *Nemesis) action(f scenarios.Fault, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	n.env.Logger.Info("fault action", "fault", f.Name, "action", msg)
	n.note(f.Name, func(r *report.Fault) { r.Actions = append(r.Actions, msg) })
}

// Active lists the names of faults whose window is open.
func (n *Nemesis) Active() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var a []string
	for k, on := range n.current {
		if on {
			a = append(a, k)
		}
	}
	sort.Strings(a)
	return a
}

// Records returns what happened, in timeline order.
func (n *Nemesis) Records() []report.Fault {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]report.Fault, 0, len(n.faults))
	for _, f := range n.faults {
		r := *n.records[f.Name]
		r.Actions = append([]string(nil), r.Actions...)
		out = append(out, r)
	}
	return out
}

type revertFunc func(ctx context.Context) error

func (n *Nemesis) cluster(name string) (Cluster, error) {
	var c Cluster
	switch name {
	case "source":
		c = n.env.Source
	case "target":
		c = n.env.Target
	}
	if c == nil {
		return nil, fmt.Errorf("no %s cluster under kmt's control (only embedded clusters can be faulted locally)", name)
	}
	return c, nil
}

// pickNodes returns the nodes a broker fault acts on: the listed ones, or
// the leaders of the first partitions of the default topic, so the fault
// surely hits brokers that carry traffic.
func (n *Nemesis) pickNodes(c Cluster, p scenarios.FaultParams) ([]int32, error) {
	if len(p.Nodes) > 0 {
		return p.Nodes, nil
	}
	nodes := c.LeaderNodes(n.env.DefaultTopic, p.Brokers)
	if len(nodes) < p.Brokers {
		// Fewer distinct leaders than asked: fill with other nodes.
		seen := map[int32]bool{}
		for _, x := range nodes {
			seen[x] = true
		}
		for _, x := range c.Nodes() {
			if len(nodes) >= p.Brokers {
				break
			}
			if !seen[x] {
				nodes = append(nodes, x)
			}
		}
	}
	if len(nodes) >= len(c.Nodes()) {
		return nil, fmt.Errorf("asked to act on %d brokers but the cluster has %d: at least one must stay up", p.Brokers, len(c.Nodes()))
	}
	if len(nodes) == 0 {
		return nil, errors.New("no broker to act on")
	}
	return nodes, nil
}

func (n *Nemesis) topic(p scenarios.FaultParams) string {
	if p.Topic != "" {
		return p.Topic
	}
	return n.env.DefaultTopic
}

// apply performs the start of f and returns how to revert it.
func (n *Nemesis) apply(ctx context.Context, f scenarios.Fault) (revertFunc, error) {
	p := f.Params
	switch f.Kind {
	case scenarios.BrokerKill, scenarios.BrokerPause:
		c, err := n.cluster(p.Cluster)
		if err != nil {
			return nil, err
		}
		nodes, err := n.pickNodes(c, p)
		if err != nil {
			return nil, err
		}
		if f.Kind == scenarios.BrokerKill {
			if err := c.KillBrokers(nodes); err != nil {
				return nil, err
			}
			n.action(f, "killed %s brokers %v", p.Cluster, nodes)
			return func(context.Context) error {
				if err := c.RestoreBrokers(nodes); err != nil {
					return err
				}
				n.action(f, "restored %s brokers %v", p.Cluster, nodes)
				return nil
			}, nil
		}
		if err := c.PauseBrokers(nodes); err != nil {
			return nil, err
		}
		n.action(f, "paused %s brokers %v", p.Cluster, nodes)
		return func(context.Context) error {
			if err := c.ResumeBrokers(nodes); err != nil {
				return err
			}
			n.action(f, "resumed %s brokers %v", p.Cluster, nodes)
			return nil
		}, nil

	case scenarios.ClusterRestart:
		c, err := n.cluster(p.Cluster)
		if err != nil {
			return nil, err
		}
		if err := c.Stop(); err != nil {
			return nil, err
		}
		n.action(f, "stopped the %s cluster", p.Cluster)
		return func(ctx context.Context) error {
			if err := c.Restart(ctx); err != nil {
				return err
			}
			n.action(f, "restarted the %s cluster from its data", p.Cluster)
			return nil
		}, nil

	case scenarios.MirrorKill, scenarios.MirrorRestart, scenarios.MirrorPause:
		m := n.env.Mirror
		if m == nil {
			return nil, errors.New("no mirror under kmt's control")
		}
		n.mirrorMu.Lock()
		defer n.mirrorMu.Unlock()
		var err error
		var did, undo string
		var back func(ctx context.Context) error
		switch f.Kind {
		case scenarios.MirrorKill:
			err, did, undo, back = m.Kill(), "killed the mirror (hard)", "started the mirror again", m.Start
		case scenarios.MirrorRestart:
			err, did, undo, back = m.Stop(ctx), "stopped the mirror gracefully", "started the mirror again", m.Start
		default:
			err, did, undo = m.Pause(), "paused the mirror", "resumed the mirror"
			back = func(context.Context) error { return m.Resume() }
		}
		if err != nil {
			return nil, err
		}
		n.action(f, "%s", did)
		return func(ctx context.Context) error {
			n.mirrorMu.Lock()
			defer n.mirrorMu.Unlock()
			if err := back(ctx); err != nil {
				return err
			}
			n.action(f, "%s", undo)
			return nil
		}, nil

	case scenarios.WANLatency, scenarios.WANBandwidth, scenarios.WANPartition, scenarios.WANStall, scenarios.WANReset:
		w := n.env.WAN
		if w == nil {
			return nil, errors.New("no WAN link under kmt's control (the source cluster must be embedded)")
		}
		return n.applyWAN(ctx, f, w)

	case scenarios.TopicAddPartitions:
		c, err := n.cluster("source")
		if err != nil {
			return nil, err
		}
		t := n.topic(p)
		if err := c.AddPartitions(ctx, t, p.Partitions); err != nil {
			return nil, err
		}
		n.action(f, "grew source topic %s to %d partitions", t, p.Partitions)
		return nil, nil

	case scenarios.TopicPurge:
		c, err := n.cluster("source")
		if err != nil {
			return nil, err
		}
		m := n.env.Mirror
		if m == nil {
			return nil, errors.New("no mirror under kmt's control")
		}
		n.mirrorMu.Lock()
		defer n.mirrorMu.Unlock()
		if err := m.Stop(ctx); err != nil {
			return nil, fmt.Errorf("stop the mirror before the purge: %w", err)
		}
		n.action(f, "stopped the mirror gracefully")
		t := n.topic(p)
		starts, err := c.Purge(ctx, t)
		if err != nil {
			// Still restart the mirror at the end of the window.
			err = fmt.Errorf("purge %s: %w", t, err)
		} else {
			n.action(f, "purged source topic %s up to %v", t, starts)
			if n.env.Truncations != nil {
				n.env.Truncations.NoteTruncation(t, starts)
			}
		}
		return func(ctx context.Context) error {
			n.mirrorMu.Lock()
			defer n.mirrorMu.Unlock()
			if err := m.Start(ctx); err != nil {
				return err
			}
			n.action(f, "started the mirror again")
			return nil
		}, err
	}
	return nil, &scenarios.UnsupportedError{Fault: f.Name, Kind: f.Kind, Backend: scenarios.BackendLocal}
}

func (n *Nemesis) applyWAN(ctx context.Context, f scenarios.Fault, w WAN) (revertFunc, error) {
	p := f.Params
	switch f.Kind {
	case scenarios.WANLatency:
		w.SetLatency(p.Latency.D(), p.Jitter.D())
		n.action(f, "WAN latency %s one way, jitter %s", p.Latency, p.Jitter)
		return func(context.Context) error { w.SetLatency(0, 0); n.action(f, "WAN latency removed"); return nil }, nil
	case scenarios.WANBandwidth:
		w.SetBandwidth(p.BytesPerSecond)
		n.action(f, "WAN capped at %d bytes/s", p.BytesPerSecond)
		return func(context.Context) error { w.SetBandwidth(0); n.action(f, "WAN cap lifted"); return nil }, nil
	case scenarios.WANPartition:
		w.SetPartition(true)
		n.action(f, "WAN partitioned (blackhole)")
		return func(context.Context) error { w.SetPartition(false); n.action(f, "WAN healed"); return nil }, nil
	case scenarios.WANStall:
		stall := p.Stall.D()
		if stall == 0 {
			stall = time.Second
		}
		w.SetStall(p.Percent, stall)
		n.action(f, "WAN stalls: %g%% of writes wait %s", p.Percent, stall)
		return func(context.Context) error { w.SetStall(0, 0); n.action(f, "WAN stalls off"); return nil }, nil
	default: // WANReset
		every := p.Every.D()
		if every <= 0 {
			every = f.Duration.D() + time.Hour // once, at the start
		}
		resets := w.ResetConnections()
		total := resets
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-rctx.Done():
					return
				case <-t.C:
					k := w.ResetConnections()
					n.mu.Lock()
					total += k
					n.mu.Unlock()
				}
			}
		}()
		return func(context.Context) error {
			cancel()
			<-done
			n.mu.Lock()
			t := total
			n.mu.Unlock()
			n.action(f, "reset %d WAN connections in all", t)
			return nil
		}, nil
	}
}

// sleepUntil waits for t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}
