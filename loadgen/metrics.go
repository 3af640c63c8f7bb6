package loadgen

import (
	"errors"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
)

type counters struct {
	sent, acked, failed, bytes *prometheus.CounterVec
	rate                       prometheus.Gauge
}

// perTopic are one topic's counters, looked up once instead of per message.
type perTopic struct{ sent, acked, failed, bytes prometheus.Counter }

func register[T prometheus.Collector](reg prometheus.Registerer, c T) T {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if ex, ok := are.ExistingCollector.(T); ok {
				return ex // a second run on the same registry keeps counting
			}
		}
		slog.Warn("loadgen: metric not registered", "err", err)
	}
	return c
}

func newCounters(reg prometheus.Registerer) *counters {
	cv := func(name, help string) *prometheus.CounterVec {
		return register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{metrics.LabelTopic}))
	}
	return &counters{
		sent:   cv(metrics.LoadgenSent, "Records handed to the producer."),
		acked:  cv(metrics.LoadgenAcked, "Records the source acknowledged (acks=all)."),
		failed: cv(metrics.LoadgenFailed, "Records whose send failed."),
		bytes:  cv(metrics.LoadgenBytes, "Value bytes the source acknowledged."),
		rate:   register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: metrics.LoadgenRate, Help: "Configured messages per second (0: unlimited)."})),
	}
}
