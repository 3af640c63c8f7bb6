package validator

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyHist is kmt_validator_latency_seconds, one histogram per source
// topic like the prometheus.HistogramVec it replaces, fed a block of
// records at a time: a HistogramVec child costs three atomic additions per
// observation, which the target's verifier goroutines contend on, where
// this takes one lock a block. Its exported buckets, count and sum are the
// ones per-record Observe calls in the same order give, bit for bit
// (TestLatencyHistMatchesPrometheus): each observation goes to the first
// bucket whose upper bound is >= it, and the sum adds the observations one
// at a time in arrival order, as Observe does.
type latencyHist struct {
	desc   *prometheus.Desc
	bounds []float64

	mu     sync.Mutex
	topics map[string]*latencyCounts // every topic, from the start (fixed after register)
}

type latencyCounts struct {
	buckets []uint64 // per bucket (not cumulative); the last is +Inf
	count   uint64
	sum     float64
}

func newLatencyHist(name, help, label string, bounds []float64, topics []string) *latencyHist {
	h := &latencyHist{desc: prometheus.NewDesc(name, help, []string{label}, nil), bounds: bounds, topics: map[string]*latencyCounts{}}
	for _, t := range topics {
		h.topics[t] = &latencyCounts{buckets: make([]uint64, len(bounds)+1)}
	}
	return h
}

// Describe implements prometheus.Collector.
func (h *latencyHist) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

// Collect implements prometheus.Collector.
func (h *latencyHist) Collect(ch chan<- prometheus.Metric) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for topic, c := range h.topics {
		cum := make(map[float64]uint64, len(h.bounds))
		var n uint64
		for i, b := range h.bounds {
			n += c.buckets[i]
			cum[b] = n
		}
		ch <- prometheus.MustNewConstHistogram(h.desc, c.count, c.sum, cum, topic)
	}
}

// bucket is the index of the first bound >= v (len(bounds): +Inf), as
// prometheus' histogram finds it.
func (h *latencyHist) bucket(v float64) int {
	for i, b := range h.bounds[:min(len(h.bounds), 16)] { // most latencies are small
		if v <= b {
			return i
		}
	}
	if len(h.bounds) <= 16 {
		return len(h.bounds)
	}
	return 16 + sort.SearchFloat64s(h.bounds[16:], v)
}

// observeBlock observes the latency of every first arrival in batch, in
// order, in topic's histogram.
func (h *latencyHist) observeBlock(topic string, batch []decoded) {
	c := h.topics[topic]
	if c == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range batch {
		if d := &batch[i]; d.first {
			v := d.lat.Seconds()
			c.buckets[h.bucket(v)]++
			c.count++
			c.sum += v
		}
	}
}
