package mirror

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
)

// refMetrics are the reference mirror's series. The topic label is the
// SOURCE topic name, like the validator's, so the two can be joined in PromQL.
type refMetrics struct {
	consumed, produced, commits, errors *prometheus.CounterVec
	running                             prometheus.Gauge
	defect                              *prometheus.CounterVec // label defect
}

func newRefMetrics(reg prometheus.Registerer) *refMetrics {
	cv := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{metrics.LabelTopic})
	}
	m := &refMetrics{
		consumed: cv(metrics.MirrorConsumed, "Records the reference mirror read from the source."),
		produced: cv(metrics.MirrorProduced, "Records the target acknowledged (duplicates included)."),
		commits:  cv(metrics.MirrorCommits, "Source offset commits, per source topic in the commit."),
		errors:   cv(metrics.MirrorErrors, "Consume, produce, commit and admin errors."),
		defect: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metrics.MirrorDefect,
			Help: "Records each deliberate reference-mirror defect affected (self-tests only)."}, []string{"defect"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{Name: metrics.MirrorRunning,
			Help: "1 while the reference mirror copies, 0 while stopped, killed or paused."}),
	}
	if reg == nil {
		return m
	}
	// A second mirror on the same registry (a restart in the same process
	// builds a new Reference) shares the already registered series.
	m.consumed = register(reg, m.consumed)
	m.produced = register(reg, m.produced)
	m.commits = register(reg, m.commits)
	m.errors = register(reg, m.errors)
	m.running = register(reg, m.running)
	m.defect = register(reg, m.defect)
	return m
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// Unregistrable (a conflicting definition): keep counting locally
		// rather than failing the mirror over its metrics.
	}
	return c
}

// DefectRecords reads kmt_mirror_defect_records_total{defect=name} from g:
// how many records a deliberate defect affected, as the mirror counted them
// (the self-tests' expected anomaly counts). 0 when the series is absent.
func DefectRecords(g prometheus.Gatherer, name string) (uint64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() != metrics.MirrorDefect {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "defect" && l.GetValue() == name {
					return uint64(m.GetCounter().GetValue()), nil
				}
			}
		}
	}
	return 0, nil
}
