package validator

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Bucket is the number of records that arrived in one 100 ms slot; Start is
// seconds since the tracker's start.
type Bucket struct {
	Start float64 `json:"start"`
	Count uint64  `json:"count"`
}

// LatencyPoint is the median latency of the records that arrived during one
// second (Second counts from the tracker's start).
type LatencyPoint struct {
	Second int64   `json:"second"`
	P50    float64 `json:"p50"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
	Count  uint64  `json:"count"`
}

// Latency histogram bounds: 1 µs resolution, up to one hour, 3 digits.
const (
	latLowest  = 1
	latHighest = int64(time.Hour / time.Microsecond)
	latDigits  = 3

	arrivalSlot     = 100 * time.Millisecond
	maxArrivalSlots = int(30 * time.Minute / arrivalSlot)
	maxLatencySecs  = 3600
)

// latencies: mirror latency is the FIRST arrival of each record only;
// re-deliveries (duplicates) have their own histogram so a restart's re-copy
// does not inflate p99; a negative apparent latency (the producer's clock
// ahead of the validator's) is counted and its most negative value kept,
// never clamped into the histogram.
type latencies struct {
	hist      *hdrhistogram.Histogram
	redeliv   *hdrhistogram.Histogram
	negative  uint64
	minNeg    time.Duration
	negRedeli uint64

	// Arrival timeline: slot i counts first arrivals during
	// [start+(arrBase+i)*100ms, +100ms).
	arrBase int64
	arr     []uint64
	// Per-second latency medians.
	secHist *hdrhistogram.Histogram
	secCur  int64
	secPts  []LatencyPoint

	// since caches at - start of the last record (clamped at 0): every
	// record of a poll has the same read time, so it is computed once a
	// poll, not twice a record.
	since struct {
		start, at time.Time
		d         time.Duration
		ok        bool
	}
}

func newLatencies() latencies {
	return latencies{
		hist:    hdrhistogram.New(latLowest, latHighest, latDigits),
		redeliv: hdrhistogram.New(latLowest, latHighest, latDigits),
		secHist: hdrhistogram.New(latLowest, latHighest, latDigits),
		secCur:  -1,
	}
}

// micros converts a non-negative latency to histogram units (sub-µs counts
// as the lowest value, beyond an hour as the highest).
func micros(lat time.Duration) int64 {
	return min(max(lat.Microseconds(), latLowest), latHighest)
}

// latencyOf is at.Sub(produced) without its cost on the common path (a
// record's produce time has no monotonic clock reading, so Sub takes the
// wall clock difference, then checks for overflow with an Add and an
// Equal): the same wall clock difference, computed directly when it
// cannot overflow (less than 9e9 s apart); Sub itself otherwise, and when
// both times carry monotonic readings (Sub then uses those).
func latencyOf(at, produced time.Time) time.Duration {
	if produced == produced.Round(0) { // no monotonic reading
		if s := at.Unix() - produced.Unix(); s > -9e9 && s < 9e9 {
			return time.Duration(s)*time.Second + time.Duration(at.Nanosecond()-produced.Nanosecond())
		}
	}
	return at.Sub(produced)
}

func (l *latencies) redelivered(lat time.Duration) {
	if lat < 0 {
		l.negRedeli++
		return
	}
	_ = l.redeliv.RecordValue(micros(lat))
}

func (l *latencies) record(start, at time.Time, lat time.Duration) {
	since := l.sinceStart(start, at)
	l.arrive(since)
	if lat < 0 {
		l.negative++
		l.minNeg = min(l.minNeg, lat)
		return
	}
	us := micros(lat)
	_ = l.hist.RecordValue(us)
	sec := int64(since / time.Second)
	if sec != l.secCur {
		l.flushSecond()
		l.secCur = sec
	}
	_ = l.secHist.RecordValue(us)
}

// sinceStart is max(at - start, 0), from the cache when at and start are
// the very values of the last call (== on time.Time: the same wall clock,
// monotonic reading and location, so the same difference).
func (l *latencies) sinceStart(start, at time.Time) time.Duration {
	c := &l.since
	if !c.ok || at != c.at || start != c.start {
		c.start, c.at, c.d, c.ok = start, at, max(at.Sub(start), 0), true
	}
	return c.d
}

// arrive counts a first arrival since (>= 0) after the tracker's start.
func (l *latencies) arrive(since time.Duration) {
	slot := max(int64(since/arrivalSlot), l.arrBase)
	for slot-l.arrBase >= int64(len(l.arr)) {
		if len(l.arr) >= maxArrivalSlots {
			// Keep the newest 30 minutes: drop the oldest half at once
			// so this stays amortised O(1).
			drop := len(l.arr) / 2
			l.arr = append(l.arr[:0], l.arr[drop:]...)
			l.arrBase += int64(drop)
			continue
		}
		l.arr = append(l.arr, 0)
	}
	l.arr[slot-l.arrBase]++
}

func (l *latencies) flushSecond() {
	if l.secCur < 0 || l.secHist.TotalCount() == 0 {
		return
	}
	l.secPts = append(l.secPts, l.secPoint())
	if len(l.secPts) > maxLatencySecs {
		l.secPts = append(l.secPts[:0], l.secPts[len(l.secPts)-maxLatencySecs:]...)
	}
	l.secHist.Reset()
}

// secPoint summarises the current second's latencies.
func (l *latencies) secPoint() LatencyPoint {
	h := l.secHist
	return LatencyPoint{Second: l.secCur, P50: usToSec(h.ValueAtQuantile(50)), P99: usToSec(h.ValueAtQuantile(99)),
		Max: usToSec(h.Max()), Count: uint64(h.TotalCount())}
}

func usToSec(us int64) float64 { return float64(us) / 1e6 }

func summary(h *hdrhistogram.Histogram) Latency {
	if h.TotalCount() == 0 {
		return Latency{}
	}
	return Latency{
		P50:   usToSec(h.ValueAtQuantile(50)),
		P95:   usToSec(h.ValueAtQuantile(95)),
		P99:   usToSec(h.ValueAtQuantile(99)),
		Max:   usToSec(h.Max()),
		Count: uint64(h.TotalCount()),
	}
}

// Arrivals returns first arrivals per 100 ms slot (the newest 30 minutes).
func (t *Tracker) Arrivals() []Bucket {
	out := make([]Bucket, len(t.lat.arr))
	for i, n := range t.lat.arr {
		out[i] = Bucket{Start: float64(t.lat.arrBase+int64(i)) * arrivalSlot.Seconds(), Count: n}
	}
	return out
}

// LatencyTimeline returns the per-second latency medians, the current
// (partial) second included.
func (t *Tracker) LatencyTimeline() []LatencyPoint {
	l := &t.lat
	out := append([]LatencyPoint(nil), l.secPts...)
	if l.secCur >= 0 && l.secHist.TotalCount() > 0 {
		out = append(out, l.secPoint())
	}
	return out
}

// Latency returns the mirror latency summary so far: first arrivals with a
// non-negative latency (see NegativeLatency for the others).
func (t *Tracker) Latency() Latency { return summary(t.lat.hist) }

// RedeliveryLatency summarises the latency of duplicates (re-copies), apart
// from the mirror latency.
func (t *Tracker) RedeliveryLatency() Latency { return summary(t.lat.redeliv) }

// NegativeLatency returns how many first arrivals were read before their
// produce time (clock skew between the producer's host and the
// validator's) and the most negative apparent latency.
func (t *Tracker) NegativeLatency() (n uint64, most time.Duration) {
	return t.lat.negative, t.lat.minNeg
}
