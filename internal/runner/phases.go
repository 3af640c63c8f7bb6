package runner

import (
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// phaseTracker exports kmt_phase{phase} (1 while current) on the planned
// timeline and records when each phase really started and ended. Fault
// windows are phases too (fault:<name>), so assertions and plots can be
// windowed by them.
type phaseTracker struct {
	gauge *prometheus.GaugeVec

	mu     sync.Mutex
	t0     time.Time
	plan   []scenarios.Phase
	rec    map[string]*report.Phase
	order  []string
	timers []*time.Timer
	drain  bool
}

func newPhaseTracker(reg prometheus.Registerer) *phaseTracker {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: metrics.Phase, Help: "1 while the phase (warmup, steady, fault:<name>, recovery, drain) is current.",
	}, []string{metrics.LabelPhase})
	reg.MustRegister(g)
	return &phaseTracker{gauge: g, rec: map[string]*report.Phase{}}
}

// start schedules the planned phases (all but drain, which starts when the
// load really ends) relative to t0.
func (p *phaseTracker) start(t0 time.Time, plan []scenarios.Phase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.t0, p.plan = t0, plan
	for _, ph := range plan {
		p.gauge.WithLabelValues(ph.Name).Set(0)
		if ph.Name == "drain" {
			continue
		}
		ph := ph
		p.rec[ph.Name] = &report.Phase{Name: ph.Name, Start: t0.Add(ph.Start), End: t0.Add(ph.End)}
		p.order = append(p.order, ph.Name)
		p.timers = append(p.timers,
			time.AfterFunc(max(0, time.Until(t0.Add(ph.Start))), func() { p.gauge.WithLabelValues(ph.Name).Set(1) }),
			time.AfterFunc(max(0, time.Until(t0.Add(ph.End))), func() { p.gauge.WithLabelValues(ph.Name).Set(0) }))
	}
}

// enter starts the drain phase (or any unplanned one) at t.
func (p *phaseTracker) enter(name string, t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, tm := range p.timers {
		tm.Stop()
	}
	// Phases cut short by an interruption end now.
	for _, n := range p.order {
		r := p.rec[n]
		if r.End.After(t) {
			r.End = t
		}
		if r.Start.After(t) {
			r.Start = t
		}
		p.gauge.WithLabelValues(n).Set(0)
	}
	p.rec[name] = &report.Phase{Name: name, Start: t}
	p.order = append(p.order, name)
	p.gauge.WithLabelValues(name).Set(1)
	p.drain = true
}

// end closes the last phase at t.
func (p *phaseTracker) end(t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.order) == 0 {
		return
	}
	last := p.rec[p.order[len(p.order)-1]]
	if last.End.IsZero() || last.End.After(t) {
		last.End = t
	}
	p.gauge.WithLabelValues(last.Name).Set(0)
}

// current names the phase in force now (fault windows win over steady).
func (p *phaseTracker) current() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drain {
		return "drain"
	}
	now := time.Now()
	cur := ""
	for _, n := range p.order {
		r := p.rec[n]
		if !now.Before(r.Start) && now.Before(r.End) {
			if cur == "" || len(n) > 6 && n[:6] == "fault:" {
				cur = n
			}
		}
	}
	if cur == "" {
		return "-"
	}
	return cur
}

// records returns the phases as they happened, in start order.
func (p *phaseTracker) records() []report.Phase {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]report.Phase, 0, len(p.order))
	for _, n := range p.order {
		out = append(out, *p.rec[n])
	}
	return out
}

// windows returns the phase windows by name, plus "run" spanning them all.
func (p *phaseTracker) windows() map[string][2]time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := map[string][2]time.Time{}
	var lo, hi time.Time
	for _, n := range p.order {
		r := p.rec[n]
		w[n] = [2]time.Time{r.Start, r.End}
		if lo.IsZero() || r.Start.Before(lo) {
			lo = r.Start
		}
		if r.End.After(hi) {
			hi = r.End
		}
	}
	w["run"] = [2]time.Time{lo, hi}
	return w
}

// actualFaults replaces the planned fault:<name> windows with the times the
// nemesis really applied and reverted each fault; a fault that never started
// loses its window, so an assertion over it fails ("no window recorded")
// instead of judging a fault that did not happen.
func (p *phaseTracker) actualFaults(recs []report.Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range recs {
		name := "fault:" + f.Name
		r, ok := p.rec[name]
		if !ok {
			continue
		}
		if f.Start.IsZero() {
			delete(p.rec, name)
			p.order = slices.DeleteFunc(p.order, func(n string) bool { return n == name })
			continue
		}
		r.Start = f.Start
		if !f.End.IsZero() {
			r.End = f.End
		}
	}
}
