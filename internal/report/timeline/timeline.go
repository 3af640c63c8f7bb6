// Package timeline records, once a second while a run goes on, what
// report.json's per-second timeline needs beyond the validator's arrival
// and latency figures: records produced and acknowledged by the source,
// the lag (acknowledged, not yet delivered) and the anomalies detected in
// that second. The runner starts a Sampler when the load starts and calls
// Finish before it writes the report.
package timeline

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/validator"
)

// Sample is the state of a run at one instant, as running totals.
type Sample struct {
	Produced uint64        // records handed to the source producer so far
	Counts   report.Counts // the validator's live counts (acked, received, anomalies)
}

// Categories are the anomaly categories recorded per second: the ones the
// validator detects as records arrive (lost when a later record shows the
// gap).
var Categories = []string{"lost", "duplicate", "reordered", "corrupt"}

func category(c report.Counts, name string) uint64 {
	switch name {
	case "lost":
		return c.Lost
	case "duplicate":
		return c.Duplicate
	case "reordered":
		return c.Reordered
	case "corrupt":
		return c.Corrupt
	}
	return 0
}

// Sampler takes a Sample at the end of every second after t0.
type Sampler struct {
	t0   time.Time
	read func() Sample

	mu   sync.Mutex
	secs []report.Second
	prev Sample

	stop chan struct{}
	done chan struct{}
}

// Start samples read at t0+1s, t0+2s, ... until Finish.
func Start(t0 time.Time, read func() Sample) *Sampler {
	s := &Sampler{t0: t0, read: read, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	return s
}

func (s *Sampler) loop() {
	defer close(s.done)
	for k := 1; ; k++ {
		t := time.NewTimer(time.Until(s.t0.Add(time.Duration(k) * time.Second)))
		select {
		case <-s.stop:
			t.Stop()
			return
		case <-t.C:
		}
		s.record(k-1, s.read())
	}
}

// record stores second sec from the totals at its end.
func (s *Sampler) record(sec int, cur Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secs = append(s.secs, Step(sec, s.prev, cur))
	s.prev = cur
}

// Step is second sec of the timeline from the totals at its start (prev)
// and its end (cur). Totals that went down (a gap filled by a late record
// is no longer lost) count as nothing new.
func Step(sec int, prev, cur Sample) report.Second {
	out := report.Second{
		T:        sec,
		Produced: sub(cur.Produced, prev.Produced),
		Acked:    sub(cur.Counts.Acked, prev.Counts.Acked),
		Lag:      Lag(cur.Counts),
	}
	for _, c := range Categories {
		if n := sub(category(cur.Counts, c), category(prev.Counts, c)); n > 0 {
			if out.Anomalies == nil {
				out.Anomalies = map[string]uint64{}
			}
			out.Anomalies[c] = n
		}
	}
	return out
}

// Lag is acknowledged minus distinct delivered (the validator's own lag).
func Lag(c report.Counts) int64 {
	distinct := int64(c.Received) - int64(c.Duplicate)
	return max(0, int64(c.Acked)-distinct)
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// Finish stops sampling, takes a last sample for the seconds not yet
// recorded (the one in progress, and any the sampler fell behind on: their
// totals land in the first of them), and merges what was sampled into
// rep.Timeline (which already holds the validator's arrivals and latencies
// by second); it sets LoadStartedAt.
func (s *Sampler) Finish(rep *report.Report) {
	close(s.stop)
	<-s.done
	last := s.read()
	s.mu.Lock()
	for sec := len(s.secs); time.Since(s.t0) > time.Duration(sec)*time.Second; sec++ {
		s.secs = append(s.secs, Step(sec, s.prev, last))
		s.prev = last
	}
	secs := s.secs
	s.mu.Unlock()
	t0 := s.t0
	rep.LoadStartedAt = &t0
	rep.Timeline = Merge(rep.Timeline, secs)
}

// Merge fills the sampled fields of tl from sampled, second by second,
// extending tl when sampling went on longer than anything arrived.
func Merge(tl, sampled []report.Second) []report.Second {
	for len(tl) < len(sampled) {
		tl = append(tl, report.Second{T: len(tl)})
	}
	for _, s := range sampled {
		if s.T < 0 || s.T >= len(tl) {
			continue
		}
		d := &tl[s.T]
		d.Produced, d.Acked, d.Lag, d.Anomalies = s.Produced, s.Acked, s.Lag, s.Anomalies
	}
	return tl
}

// Live is what a Sampler reads from a running validator.
type Live interface{ Live() report.Counts }

// Validator is what PerSecond reads from a validator.
type Validator interface {
	Arrivals() []validator.Bucket
	LatencyTimeline() []validator.LatencyPoint
}

// PerSecond folds the validator's arrival buckets (100 ms) and per-second
// latency medians into whole seconds since load start; offset is how long
// after the validator started the load began.
func PerSecond(v Validator, offset time.Duration) []report.Second {
	secs := map[int]*report.Second{}
	last := -1
	get := func(t int) *report.Second {
		s := secs[t]
		if s == nil {
			s = &report.Second{T: t}
			secs[t] = s
		}
		last = max(last, t)
		return s
	}
	off := offset.Seconds()
	for _, b := range v.Arrivals() {
		if t := int(b.Start - off); b.Start-off >= 0 && b.Count > 0 {
			get(t).Arrivals += b.Count
		}
	}
	for _, p := range v.LatencyTimeline() {
		if t := int(float64(p.Second) - off + 0.5); t >= 0 && p.Count > 0 {
			s := get(t)
			s.LatencyP50, s.LatencyP99, s.LatencyMax = p.P50, p.P99, p.Max
		}
	}
	out := make([]report.Second, 0, last+1)
	for t := 0; t <= last; t++ {
		if s := secs[t]; s != nil {
			out = append(out, *s)
		} else {
			out = append(out, report.Second{T: t})
		}
	}
	return out
}

// StartRun samples a run's validator and the loadgen's sent counter in g.
func StartRun(t0 time.Time, v Live, g prometheus.Gatherer) *Sampler {
	produced := CounterSum(g, metrics.LoadgenSent)
	return Start(t0, func() Sample { return Sample{Produced: produced(), Counts: v.Live()} })
}

// CounterSum returns a function reading the sum of every series of the
// counter named name in g (0 when absent): how the sampler reads the
// loadgen's sent records without a hook in the loadgen.
func CounterSum(g prometheus.Gatherer, name string) func() uint64 {
	return func() uint64 {
		mfs, err := g.Gather()
		if err != nil {
			return 0
		}
		var sum float64
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
		return uint64(sum)
	}
}
