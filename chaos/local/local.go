// Package local is the nemesis of the backends kmt drives itself (embedded
// clusters today, real Apache Kafka brokers next): it turns a scenario's
// timeline into actions on the clusters, the user-space WAN and the mirror.
// Every fault is injected at its start and recovered at its end on its own
// timer; when the run is interrupted, every active fault is recovered at
// once.
//
// Where things live: local.go runs the timeline; backend.go lists the
// capabilities a backend offers (kill a broker, restart a cluster, purge a
// topic, stop the mirror, shape the WAN...); registry.go maps each fault
// kind to its family; one file per family (brokers.go, cluster.go,
// mirror.go, wan.go, topics.go, metadata.go) holds how it is injected and recovered. A
// kind with no family, or whose capability the backend lacks, is refused
// with a *scenarios.UnsupportedError naming the fault and the backend.
package local

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/internal/wait"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Env is everything the nemesis acts on: a backend's parts, whose
// capabilities (backend.go) the fault families (registry.go) ask for. Any
// may be nil when the scenario has no fault that needs it; Check says
// before the run whether every fault can be performed.
type Env struct {
	// Backend names the backend in refusals; default scenarios.BackendLocal.
	Backend        scenarios.Backend
	Source, Target Cluster
	WAN            WAN
	Mirror         Mirror
	Truncations    TruncationSink
	// Metadata learns about source metadata changes (topic configs,
	// partitions, new topics) so it can time their arrival on the target.
	Metadata MetadataSink
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

// RevertTimeout bounds how long reverting one fault may take. It is a
// bound, not an expectation: restarting a cluster of real broker JVMs on a
// busy 2-core machine takes minutes (internal/env/apachekafka waits up to 4 min
// for a start), and a revert cut short would report a fault kmt failed to
// end as if the run had gone wrong.
const RevertTimeout = 5 * time.Minute

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
	if !wait.Until(ctx, t0.Add(f.At.D())) {
		n.note(f.Name, func(r *report.Fault) { r.Error = "not started: run interrupted" })
		return
	}
	log := n.env.Logger.With("fault", f.Name, "kind", f.Kind)
	log.Info("fault starts", "duration", f.Duration)
	n.setActive(f, true)
	revert, err := n.inject(ctx, f)
	if err != nil {
		log.Error("fault could not be applied", "err", err)
		n.note(f.Name, func(r *report.Fault) { r.Error = err.Error() })
	}
	wait.Until(ctx, t0.Add(f.End()))
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

// inject plans f against the backend and performs its start.
func (n *Nemesis) inject(ctx context.Context, f scenarios.Fault) (Recover, error) {
	do, err := Plan(n.env, f)
	if err != nil {
		return nil, err
	}
	return do(ctx, &Act{n: n, fault: f})
}

// Check says before the run whether the backend can perform every fault
// of the timeline (nil), or which it cannot and why.
func (n *Nemesis) Check() error { return Check(n.env, n.faults) }

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
