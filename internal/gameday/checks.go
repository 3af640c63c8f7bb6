package gameday

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
)

// Observation is one evaluation of a check.
type Observation struct {
	Value  float64 // NaN: no data (e.g. no record arrived in the window)
	Held   bool
	Detail string
}

// live reads kmt's invariants from a running step's metrics.
type live struct {
	g prometheus.Gatherer
	// latency histogram snapshots, to take the p99 of recent arrivals.
	hist []histSnap
}

type histSnap struct {
	at      time.Time
	buckets []bucket // cumulative, by upper bound
}

type bucket struct {
	le float64
	n  float64
}

// recent is the window of the live p99.
const recent = 5 * time.Second

// snapshot reads the metrics once.
func (l *live) snapshot(now time.Time) (map[string]*dto.MetricFamily, error) {
	mfs, err := l.g.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	if h := out[metrics.ValidatorLatency]; h != nil {
		l.hist = append(l.hist, histSnap{at: now, buckets: sumBuckets(h)})
		for len(l.hist) > 2 && now.Sub(l.hist[1].at) >= recent {
			l.hist = l.hist[1:]
		}
	}
	return out, nil
}

func sumBuckets(mf *dto.MetricFamily) []bucket {
	by := map[float64]float64{}
	for _, m := range mf.GetMetric() {
		for _, b := range m.GetHistogram().GetBucket() {
			by[b.GetUpperBound()] += float64(b.GetCumulativeCount())
		}
		by[math.Inf(1)] += float64(m.GetHistogram().GetSampleCount())
	}
	out := make([]bucket, 0, len(by))
	for le, n := range by {
		out = append(out, bucket{le, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].le < out[j].le })
	return out
}

// sum adds every series of a gauge or counter, keeping those whose label
// name has value want (name "" keeps all).
func sum(mfs map[string]*dto.MetricFamily, metric, label, want string) float64 {
	var s float64
	mf := mfs[metric]
	if mf == nil {
		return 0
	}
	for _, m := range mf.GetMetric() {
		if label != "" && !hasLabel(m, label, want) {
			continue
		}
		if m.Gauge != nil {
			s += m.GetGauge().GetValue()
		} else {
			s += m.GetCounter().GetValue()
		}
	}
	return s
}

func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// activeFaults lists the faults whose window is open now.
func activeFaults(mfs map[string]*dto.MetricFamily) []string {
	var out []string
	if mf := mfs[metrics.FaultActive]; mf != nil {
		for _, m := range mf.GetMetric() {
			if m.GetGauge().GetValue() == 1 {
				for _, l := range m.GetLabel() {
					if l.GetName() == metrics.LabelFault {
						out = append(out, l.GetValue())
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// recentP99 is the p99 of the arrivals of the last few seconds, from the
// histogram's bucket increases (linear inside a bucket, as PromQL's
// histogram_quantile); NaN when nothing arrived.
func (l *live) recentP99() float64 {
	if len(l.hist) < 2 {
		return math.NaN()
	}
	a, b := l.hist[0].buckets, l.hist[len(l.hist)-1].buckets
	old := map[float64]float64{}
	for _, x := range a {
		old[x.le] = x.n
	}
	d := make([]bucket, len(b))
	for i, x := range b {
		d[i] = bucket{x.le, x.n - old[x.le]}
	}
	return quantile(0.99, d)
}

func quantile(q float64, bs []bucket) float64 {
	if len(bs) == 0 || bs[len(bs)-1].n <= 0 {
		return math.NaN()
	}
	rank := q * bs[len(bs)-1].n
	prevLe, prevN := 0.0, 0.0
	for _, b := range bs {
		if b.n >= rank {
			if math.IsInf(b.le, 1) {
				return prevLe
			}
			if b.n == prevN {
				return b.le
			}
			return prevLe + (b.le-prevLe)*(rank-prevN)/(b.n-prevN)
		}
		prevLe, prevN = b.le, b.n
	}
	return prevLe
}

// evalLive evaluates c on the current metrics (and Prometheus for PromQL).
func (l *live) evalLive(ctx context.Context, c Check, mfs map[string]*dto.MetricFamily, prom *Endpoint) Observation {
	switch c.Invariant {
	case NothingLost:
		v := sum(mfs, metrics.ValidatorMissing, metrics.LabelCategory, "lost")
		return Observation{Value: v, Held: v == 0, Detail: fmt.Sprintf("%g lost so far", v)}
	case LagBelow:
		v := sum(mfs, metrics.ValidatorLag, "", "")
		return Observation{Value: v, Held: v < c.Value, Detail: fmt.Sprintf("lag %g records", v)}
	case P99Below:
		v := l.recentP99()
		if math.IsNaN(v) {
			return Observation{Value: v, Held: true, Detail: "no arrivals in the last " + recent.String()}
		}
		return Observation{Value: v, Held: v < c.Value, Detail: fmt.Sprintf("p99 of the last %s %s", recent, seconds(v))}
	case DuplicatesBelow:
		v := sum(mfs, metrics.ValidatorAnomaly, metrics.LabelCategory, "duplicate")
		return Observation{Value: v, Held: v < c.Value, Detail: fmt.Sprintf("%g duplicates so far", v)}
	}
	return evalPromQL(ctx, prom, c)
}

// evalAfter evaluates c on a step's final report (exact counts after the
// drain); PromQL checks are asked once more.
func evalAfter(ctx context.Context, c Check, r *report.Report, prom *Endpoint) Observation {
	switch c.Invariant {
	case NothingLost:
		v := float64(r.Counts.Lost + r.Counts.Unseen)
		return Observation{Value: v, Held: v == 0, Detail: fmt.Sprintf("%d lost, %d unseen after the drain", r.Counts.Lost, r.Counts.Unseen)}
	case LagBelow:
		v := 0.0
		if n := len(r.Timeline); n > 0 {
			v = float64(r.Timeline[n-1].Lag)
		}
		return Observation{Value: v, Held: v < c.Value, Detail: fmt.Sprintf("lag %g records at the end", v)}
	case P99Below:
		v := r.LatencySeconds.P99
		return Observation{Value: v, Held: v < c.Value, Detail: fmt.Sprintf("p99 of the whole step %s", seconds(v))}
	case DuplicatesBelow:
		v := float64(r.Counts.Duplicate)
		return Observation{Value: v, Held: v < c.Value, Detail: fmt.Sprintf("%d duplicates", r.Counts.Duplicate)}
	}
	return evalPromQL(ctx, prom, c)
}

func seconds(v float64) string {
	return time.Duration(v * float64(time.Second)).Round(time.Millisecond).String()
}

// evalPromQL runs an instant query and compares its single value.
func evalPromQL(ctx context.Context, prom *Endpoint, c Check) Observation {
	if prom == nil {
		return Observation{Value: math.NaN(), Detail: "no prometheus.url"}
	}
	v, err := instantQuery(ctx, prom.URL, c.PromQL)
	if err != nil {
		return Observation{Value: math.NaN(), Detail: err.Error()}
	}
	return Observation{Value: v, Held: compare(v, c.Op, c.Value), Detail: fmt.Sprintf("%s = %g", c.PromQL, v)}
}

func compare(v float64, op string, x float64) bool {
	switch op {
	case "<":
		return v < x
	case "<=":
		return v <= x
	case "==":
		return v == x
	case "!=":
		return v != x
	case ">=":
		return v >= x
	case ">":
		return v > x
	}
	return false
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func getJSON(ctx context.Context, u string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

// errNoSeries: an instant query returned an empty vector (no data).
var errNoSeries = errors.New("returned no series (no data yet, or a label that matches nothing; `or vector(0)` makes no data a zero)")

// labelValues runs an instant query and returns the values of label in
// the series it returned.
func labelValues(ctx context.Context, base, q, label string) ([]string, error) {
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(ctx, strings.TrimRight(base, "/")+"/api/v1/query?query="+url.QueryEscape(q), &r); err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	var out []string
	for _, s := range r.Data.Result {
		if v := s.Metric[label]; v != "" {
			out = append(out, v)
		}
	}
	return out, nil
}

// instantQuery asks Prometheus's HTTP API for one value (a scalar, or a
// vector of exactly one sample).
func instantQuery(ctx context.Context, base, q string) (float64, error) {
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := getJSON(ctx, base+"/api/v1/query?query="+url.QueryEscape(q), &r); err != nil {
		return 0, fmt.Errorf("query %q: %w", q, err)
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("query %q: %s", q, r.Error)
	}
	var pair []any
	switch r.Data.ResultType {
	case "scalar":
		json.Unmarshal(r.Data.Result, &pair)
	case "vector":
		var vec []struct {
			Value []any `json:"value"`
		}
		json.Unmarshal(r.Data.Result, &vec)
		if len(vec) == 0 {
			return 0, fmt.Errorf("query %q: %w", q, errNoSeries)
		}
		if len(vec) != 1 {
			return 0, fmt.Errorf("query %q returned %d series; a check needs exactly one (wrap it in sum())", q, len(vec))
		}
		pair = vec[0].Value
	default:
		return 0, fmt.Errorf("query %q returned a %s; a check needs a scalar or one sample", q, r.Data.ResultType)
	}
	if len(pair) != 2 {
		return 0, fmt.Errorf("query %q: malformed sample", q)
	}
	s, _ := pair[1].(string)
	return strconv.ParseFloat(s, 64)
}
