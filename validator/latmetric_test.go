package validator

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
)

// TestLatencyHistMatchesPrometheus feeds the same latencies, in the same
// order, to a prometheus.Histogram one Observe at a time and to
// latencyHist in blocks of targetBlock records (some of them not first
// arrivals, which must not count), then compares what both export: every
// cumulative bucket count, the count, and the sum bit for bit. The
// latencies include every bucket bound exactly, just above and below it,
// negative values, zero and values above the last bound.
func TestLatencyHistMatchesPrometheus(t *testing.T) {
	bounds := metrics.LatencyBuckets
	var lats []time.Duration
	for _, b := range bounds {
		d := time.Duration(b * float64(time.Second))
		lats = append(lats, d, d-1, d+1, d-time.Microsecond)
	}
	lats = append(lats, 0, -1, -time.Hour, 2*time.Hour, time.Duration(math.MaxInt64), time.Duration(math.MinInt64))
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		lats = append(lats, time.Duration(rng.Int64N(int64(20*time.Second)))>>rng.IntN(30))
	}
	rng.Shuffle(len(lats), func(i, j int) { lats[i], lats[j] = lats[j], lats[i] })

	ref := prometheus.NewHistogram(prometheus.HistogramOpts{Name: metrics.ValidatorLatency, Buckets: bounds})
	h := newLatencyHist(metrics.ValidatorLatency, "help", metrics.LabelTopic, bounds, []string{"a", "b"})
	var block []decoded
	firsts := 0
	flush := func() {
		h.observeBlock("a", block)
		block = block[:0]
	}
	for i, l := range lats {
		first := i%7 != 3 // every 7th is a duplicate: not observed
		if first {
			ref.Observe(l.Seconds())
			firsts++
		}
		block = append(block, decoded{lat: l, first: first})
		if len(block) == targetBlock {
			flush()
		}
	}
	flush()

	var want dto.Metric
	if err := ref.Write(&want); err != nil {
		t.Fatal(err)
	}
	got := collectOne(t, h, "a")
	wh, gh := want.GetHistogram(), got.GetHistogram()
	if gh.GetSampleCount() != uint64(firsts) || gh.GetSampleCount() != wh.GetSampleCount() {
		t.Errorf("count %d, prometheus %d, first arrivals %d", gh.GetSampleCount(), wh.GetSampleCount(), firsts)
	}
	if math.Float64bits(gh.GetSampleSum()) != math.Float64bits(wh.GetSampleSum()) {
		t.Errorf("sum %v (%x), prometheus %v (%x)", gh.GetSampleSum(), math.Float64bits(gh.GetSampleSum()), wh.GetSampleSum(), math.Float64bits(wh.GetSampleSum()))
	}
	if len(gh.GetBucket()) != len(bounds) || len(wh.GetBucket()) != len(bounds) {
		t.Fatalf("%d and %d buckets, want %d", len(gh.GetBucket()), len(wh.GetBucket()), len(bounds))
	}
	for i := range bounds {
		g, w := gh.GetBucket()[i], wh.GetBucket()[i]
		if g.GetUpperBound() != w.GetUpperBound() || g.GetCumulativeCount() != w.GetCumulativeCount() {
			t.Errorf("bucket %d: le %v count %d, prometheus le %v count %d", i, g.GetUpperBound(), g.GetCumulativeCount(), w.GetUpperBound(), w.GetCumulativeCount())
		}
	}
	if b := collectOne(t, h, "b").GetHistogram(); b.GetSampleCount() != 0 || b.GetSampleSum() != 0 {
		t.Errorf("topic b, never observed: count %d sum %v", b.GetSampleCount(), b.GetSampleSum())
	}
}

// collectOne returns h's metric for topic.
func collectOne(t *testing.T, h *latencyHist, topic string) *dto.Metric {
	t.Helper()
	ch := make(chan prometheus.Metric, 10)
	h.Collect(ch)
	close(ch)
	for m := range ch {
		var out dto.Metric
		if err := m.Write(&out); err != nil {
			t.Fatal(err)
		}
		for _, l := range out.GetLabel() {
			if l.GetName() == metrics.LabelTopic && l.GetValue() == topic {
				return &out
			}
		}
	}
	t.Fatalf("no metric for topic %q", topic)
	return nil
}

// TestLatencyOf: latencyOf is time.Time.Sub, for produce times without a
// monotonic reading (as decoded) and with one, near and far apart (Sub
// saturates beyond ~292 years).
func TestLatencyOf(t *testing.T) {
	now := time.Now() // with a monotonic reading
	rng := rand.New(rand.NewPCG(3, 4))
	var produced []time.Time
	for _, ns := range []int64{0, 1, -1, math.MaxInt64, math.MinInt64, now.UnixNano(), now.UnixNano() + 1, now.UnixNano() - 1} {
		produced = append(produced, time.Unix(0, ns))
	}
	produced = append(produced, time.Time{}, now, now.Add(time.Second), time.Unix(1<<40, 5), time.Unix(-1<<40, 999999999), time.Unix(9e9, 0))
	for range 10000 {
		produced = append(produced, time.Unix(0, now.UnixNano()+rng.Int64N(int64(time.Hour))-int64(30*time.Minute)), time.Unix(rng.Int64()>>rng.IntN(40), rng.Int64N(1e9)))
	}
	for _, at := range []time.Time{now, now.Round(0), now.Add(time.Hour).Round(0), time.Unix(0, 0), time.Time{}, time.Unix(1<<40, 0)} {
		for _, p := range produced {
			if got, want := latencyOf(at, p), at.Sub(p); got != want {
				t.Fatalf("latencyOf(%v, %v) = %v, Sub says %v", at, p, got, want)
			}
		}
	}
}
