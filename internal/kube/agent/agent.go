package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kmt-dev/kafka-mirror-tester/chaos/mesh"
	bootlist "github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Config configures one cluster's agent.
type Config struct {
	Scenario        *scenarios.Scenario
	Role            mesh.Cluster // the cluster this agent runs in
	RunID           string
	Targets         Targets
	SourceBootstrap string // the ledger and fault topics live here
	// Security is how the agent reaches the source (TLS, SASL).
	Security    kafkaclient.Security
	LedgerTopic string
	FaultsTopic string
	// Inject performs this side's faults; false records each as not done.
	Inject bool
	// Kube reads this cluster's Chaos Mesh objects (Workflow in Namespace).
	Kube      client.Client
	Namespace string
	Workflow  string
	// Pauser is needed when this side pauses a process.
	Pauser     *Pauser
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Poll is how often Chaos Mesh status is read (default 2s); Linger how
	// long /metrics stays up after the last record (default 30s).
	Poll, Linger time.Duration
}

// source is the source cluster, where the ledger and fault topics live
// and the topic faults act.
func (c Config) source() kafkaclient.Config {
	return kafkaclient.Config{Brokers: bootlist.Split(c.SourceBootstrap), Security: c.Security}
}

// duty is one fault this agent answers for.
type duty struct {
	f  scenarios.Fault
	by string
}

// Duties lists the faults the agent of cluster c answers for: the ones
// placed there (mesh.Placements), and (the target's agent) the ones with no
// Kubernetes form, so the validator hears that they did not happen.
func Duties(s *scenarios.Scenario, p mesh.Params, c mesh.Cluster) ([]duty, error) {
	var out []duty
	for _, f := range s.Spec.Timeline {
		if !f.Kind.Supports(scenarios.BackendKubernetes) {
			if c == mesh.Target {
				out = append(out, duty{f, ByNobody})
			}
			continue
		}
		cs, err := mesh.Placements(f, p)
		if err != nil {
			return nil, err
		}
		for _, x := range cs {
			if x != c {
				continue
			}
			by := ByChaosMesh
			if mesh.InCluster(f.Kind) {
				by = ByKmt
			}
			out = append(out, duty{f, by})
		}
	}
	return out, nil
}

// Run does the agent's whole job and returns when every record is out.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 2 * time.Second
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 30 * time.Second
	}
	s, log := cfg.Scenario, cfg.Logger.With("cluster", cfg.Role)
	duties, err := Duties(s, cfg.Targets.Params(), cfg.Role)
	if err != nil {
		return err
	}
	g := newGauges(cfg.Registerer)
	w, err := NewWriter(ctx, cfg.source(), cfg.FaultsTopic)
	if err != nil {
		return err
	}
	defer w.Close()
	log.Info("waiting for the load to start", "run", cfg.RunID, "ledger_topic", cfg.LedgerTopic, "faults", len(duties))
	start, err := LoadStart(ctx, cfg.source(), cfg.LedgerTopic, cfg.RunID, kube.LoadWait(s))
	if err != nil {
		// Every owned fault is reported as not done, then the agent fails.
		var errs []error
		var names []string
		for _, d := range duties {
			errs = append(errs, w.Write(ctx, cfg.record(d, Record{Error: "not performed: " + err.Error()})))
			names = append(names, d.f.Name)
		}
		errs = append(errs, w.Write(ctx, Record{Run: cfg.RunID, Cluster: string(cfg.Role), Done: true, Faults: names}))
		return errors.Join(append(errs, err)...)
	}
	log.Info("load started", "at", start)
	stopPhases := g.phases(s, start)
	defer stopPhases()
	// A live record when a fault begins (the other cluster's gauges follow
	// it); a purge's final record at once (its new log start must reach the
	// validator before it drains); the others when all faults are over; then
	// the done record.
	var mu sync.Mutex
	var werr error
	emit := func(r Record) {
		if err := w.Write(ctx, r); err != nil {
			mu.Lock()
			werr = errors.Join(werr, err)
			mu.Unlock()
		}
	}
	by := map[string]string{}
	for _, d := range duties {
		by[d.f.Name] = d.by
	}
	g.mu.Lock()
	g.onStart = func(f scenarios.Fault) {
		emit(cfg.record(duty{f, by[f.Name]}, Record{Start: time.Now()}))
	}
	g.mu.Unlock()
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	go g.follow(fctx, cfg)
	recs := cfg.perform(ctx, duties, start, g, log, emit)
	var names []string
	for _, r := range recs {
		names = append(names, r.Fault)
	}
	if err := errors.Join(werr, w.Write(ctx, Record{Run: cfg.RunID, Cluster: string(cfg.Role), Done: true, Faults: names, LoadStart: start})); err != nil {
		return err
	}
	// Let Prometheus scrape the last fault and phase values.
	select {
	case <-time.After(cfg.Linger):
	case <-ctx.Done():
	}
	return nil
}

// perform carries out kmt's own faults and observes Chaos Mesh's, all on
// the scenario's clock from start, and returns one record per duty.
func (cfg Config) perform(ctx context.Context, duties []duty, start time.Time, g *gauges, log *slog.Logger, emit func(Record)) []Record {
	recs := make([]Record, len(duties))
	defer func() {
		for _, r := range recs {
			if r.LogStart == nil {
				emit(r) // purges were emitted at once
			}
		}
	}()
	var wg sync.WaitGroup
	var mesh []int
	for i, d := range duties {
		switch {
		case !cfg.Inject && d.by != ByNobody:
			recs[i] = cfg.record(d, Record{Error: "not performed: chaos.enabled is false"})
		case d.by == ByNobody:
			recs[i] = cfg.record(d, Record{Error: fmt.Sprintf("not performed: %s has no Kubernetes form (run this scenario locally with kmt run)", d.f.Kind)})
		case d.by == ByKmt:
			wg.Add(1)
			go func(i int, d duty) {
				defer wg.Done()
				recs[i] = cfg.record(d, cfg.inject(ctx, d.f, start, g, log))
				if recs[i].LogStart != nil {
					emit(recs[i])
				}
			}(i, d)
		default:
			mesh = append(mesh, i)
		}
	}
	if len(mesh) > 0 {
		obs := cfg.observe(ctx, duties, mesh, start, g, log)
		for _, i := range mesh {
			recs[i] = cfg.record(duties[i], obs[i])
		}
	}
	wg.Wait()
	return recs
}

func (cfg Config) record(d duty, r Record) Record {
	r.Run, r.Cluster, r.Fault, r.Kind, r.By = cfg.RunID, string(cfg.Role), d.f.Name, string(d.f.Kind), d.by
	return r
}

// until sleeps until t (or ctx ends: false).
func until(ctx context.Context, t time.Time) bool {
	select {
	case <-time.After(time.Until(t)):
		return true
	case <-ctx.Done():
		return false
	}
}

// gauges are the run's harness series, in-cluster. A fault is active while
// this agent holds it or the other cluster's agent reports it in force, so
// the target's Prometheus (where the PrometheusRule runs) sees source-side
// faults too.
type gauges struct {
	phase, fault *prometheus.GaugeVec

	mu            sync.Mutex
	local, remote map[string]bool
	// onStart is told when this agent's hold of a fault begins (a live
	// record for the other cluster's agent).
	onStart func(f scenarios.Fault)
}

func newGauges(reg prometheus.Registerer) *gauges {
	g := &gauges{
		local: map[string]bool{}, remote: map[string]bool{},
		phase: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metrics.Phase, Help: "1 while the phase (warmup, steady, fault:<name>, recovery, drain) is current, on the load's clock."}, []string{metrics.LabelPhase}),
		fault: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metrics.FaultActive, Help: "1 while the fault is really in force in this cluster."}, []string{metrics.LabelFault, metrics.LabelKind}),
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{Name: metrics.RunInfo, Help: "1 for the run; carries the scenario, run and role labels."})
	info.Set(1)
	if reg != nil {
		reg.MustRegister(g.phase, g.fault, info)
	}
	return g
}

// active records whether this agent holds f in force now.
func (g *gauges) active(f scenarios.Fault, on bool) {
	g.mu.Lock()
	began := on && !g.local[f.Name]
	g.local[f.Name] = on
	g.setLocked(f.Name, string(f.Kind))
	onStart := g.onStart
	g.mu.Unlock()
	if began && onStart != nil {
		onStart(f)
	}
}

// remoteActive records what the other cluster's agent reports.
func (g *gauges) remoteActive(name, kind string, on bool) {
	g.mu.Lock()
	g.remote[name] = on
	g.setLocked(name, kind)
	g.mu.Unlock()
}

func (g *gauges) setLocked(name, kind string) {
	v := 0.0
	if g.local[name] || g.remote[name] {
		v = 1
	}
	g.fault.WithLabelValues(name, kind).Set(v)
}

// follow mirrors the other cluster's live fault records into the gauges
// until ctx ends.
func (g *gauges) follow(ctx context.Context, cfg Config) {
	_ = Read(ctx, cfg.source(), cfg.FaultsTopic, cfg.RunID, func(r Record) {
		if r.Cluster == string(cfg.Role) || r.Done || r.Fault == "" {
			return
		}
		g.remoteActive(r.Fault, r.Kind, !r.Start.IsZero() && r.End.IsZero() && r.Error == "")
	})
}

// phases keeps kmt_phase current on the planned timeline from start.
func (g *gauges) phases(s *scenarios.Scenario, start time.Time) func() {
	done := make(chan struct{})
	tick := func() {
		d := time.Since(start)
		for _, p := range s.Phases() {
			v := 0.0
			if d >= p.Start && d < p.End {
				v = 1
			}
			g.phase.WithLabelValues(p.Name).Set(v)
		}
	}
	tick()
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				tick()
			}
		}
	}()
	return func() { close(done) }
}
