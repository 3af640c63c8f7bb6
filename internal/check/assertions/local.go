package assertions

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// LocalOptions configure the embedded Prometheus. Zero values take the
// defaults of a Prometheus server.
type LocalOptions struct {
	// Dir holds the TSDB; "" makes a temporary directory that Close removes.
	Dir string
	// LookbackDelta: how far back an instant query looks for a sample;
	// default 5m, Prometheus' default, so staleness behaves the same.
	LookbackDelta time.Duration
	// MaxSamples a query may load at once; default 50,000,000 (Prometheus' default).
	MaxSamples int
	// Timeout of one query; default 2m (Prometheus' default).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Local is an embedded Prometheus: a real TSDB and the real PromQL engine.
// A Collector fills it; it implements Querier.
type Local struct {
	db      *tsdb.DB
	engine  *promql.Engine
	dir     string
	removal bool
	logger  *slog.Logger
	closed  sync.Once
}

// NewLocal opens a TSDB (without a write-ahead log: a run's metrics live
// as long as the run) and a PromQL engine over it.
func NewLocal(o LocalOptions) (*Local, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LookbackDelta <= 0 {
		o.LookbackDelta = 5 * time.Minute
	}
	if o.MaxSamples <= 0 {
		o.MaxSamples = 50_000_000
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	l := &Local{dir: o.Dir, logger: o.Logger}
	if l.dir == "" {
		d, err := os.MkdirTemp("", "kmt-tsdb-")
		if err != nil {
			return nil, fmt.Errorf("embedded Prometheus: make a temporary TSDB directory: %w (set TMPDIR to a writable directory)", err)
		}
		l.dir, l.removal = d, true
	}
	opts := tsdb.DefaultOptions()
	opts.WALSegmentSize = -1 // no WAL
	db, err := tsdb.Open(l.dir, o.Logger, nil, opts, nil)
	if err != nil {
		if l.removal {
			_ = os.RemoveAll(l.dir)
		}
		return nil, fmt.Errorf("embedded Prometheus: open TSDB in %s: %w", l.dir, err)
	}
	l.db = db
	l.engine = promql.NewEngine(promql.EngineOpts{
		Logger:               o.Logger,
		MaxSamples:           o.MaxSamples,
		Timeout:              o.Timeout,
		LookbackDelta:        o.LookbackDelta,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
		Parser:               promParser,
	})
	return l, nil
}

// Close closes the TSDB and removes its directory if NewLocal made it.
func (l *Local) Close() error {
	var err error
	l.closed.Do(func() {
		err = l.db.Close()
		if l.removal {
			if rerr := os.RemoveAll(l.dir); rerr != nil && err == nil {
				err = rerr
			}
		}
	})
	return err
}

// Appender returns a TSDB appender (for a Collector, or for callers that
// import samples from elsewhere).
func (l *Local) Appender(ctx context.Context) storage.Appender { return l.db.Appender(ctx) }

// Instant implements Querier.
func (l *Local) Instant(ctx context.Context, expr string, t time.Time) ([]Series, error) {
	q, err := l.engine.NewInstantQuery(ctx, l.db, nil, expr, t)
	if err != nil {
		return nil, fmt.Errorf("embedded PromQL: %w", err)
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, fmt.Errorf("embedded PromQL: %w", res.Err)
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		out := make([]Series, 0, len(v))
		for _, s := range v {
			if s.H != nil {
				return nil, fmt.Errorf("embedded PromQL: %q returned a native histogram; assertions compare numbers", expr)
			}
			out = append(out, Series{Labels: s.Metric.Map(), Value: s.F})
		}
		return out, nil
	case promql.Scalar:
		return []Series{{Labels: map[string]string{}, Value: v.V}}, nil
	default:
		return nil, fmt.Errorf("embedded PromQL: %q returned a %s; assertions need an instant vector or a scalar", expr, res.Value.Type())
	}
}

// Range implements Querier.
func (l *Local) Range(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]RangeSeries, error) {
	q, err := l.engine.NewRangeQuery(ctx, l.db, nil, expr, start, end, step)
	if err != nil {
		return nil, fmt.Errorf("embedded PromQL: %w", err)
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return nil, fmt.Errorf("embedded PromQL: %w", res.Err)
	}
	m, ok := res.Value.(promql.Matrix)
	if !ok {
		return nil, fmt.Errorf("embedded PromQL: range query %q returned a %s", expr, res.Value.Type())
	}
	out := make([]RangeSeries, 0, len(m))
	for _, s := range m {
		rs := RangeSeries{Labels: s.Metric.Map()}
		for _, p := range s.Floats {
			rs.Points = append(rs.Points, Point{T: time.UnixMilli(p.T), V: p.F})
		}
		out = append(out, rs)
	}
	return out, nil
}

// Target is one set of metrics to collect, as one scrape target: its
// samples get job="kmt-<Role>" and instance=Instance (default "local").
type Target struct {
	Role     string
	Gatherer prometheus.Gatherer
	Instance string
}

// CollectorOptions configure a Collector.
type CollectorOptions struct {
	// Interval between gathers; default 1s.
	Interval time.Duration
	// Now is the clock the timestamps come from; default time.Now. Tests
	// inject a simulated clock and call GatherAt instead of Start.
	Now    func() time.Time
	Logger *slog.Logger
}

// Collector scrapes in-process registries into a Local the way a
// Prometheus server scrapes /metrics: one timestamp per scrape for every
// sample, target labels job and instance added (a clashing exposed label
// becomes exported_<name>, as with honor_labels: false), histograms as
// classic _bucket{le}/_sum/_count series, summaries as {quantile}/_sum/
// _count, and a stale marker (StaleNaN) for every series that disappeared
// since the previous scrape of its target, or for all of a target's series
// when gathering it fails.
type Collector struct {
	local   *Local
	targets []Target
	opts    CollectorOptions

	mu   sync.Mutex
	last []map[string]labels.Labels // per target: series of the previous scrape
	// lastTS is the previous scrape's timestamp (ms). A scrape in the same
	// millisecond (Stop's final gather right after a tick) is stamped 1 ms
	// later: the TSDB refuses a second value at one timestamp, and the
	// final values of a run are the ones the verdict needs.
	lastTS int64

	startOnce, stopOnce sync.Once
	cancel              context.CancelFunc
	done                chan struct{}
	stopErr             error
}

// NewCollector prepares a Collector; call Start (wall clock) or GatherAt.
func NewCollector(l *Local, targets []Target, o CollectorOptions) *Collector {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Collector{local: l, targets: targets, opts: o, last: make([]map[string]labels.Labels, len(targets))}
}

// Start gathers now and then every Interval until Stop or ctx ends.
func (c *Collector) Start(ctx context.Context) {
	c.startOnce.Do(func() {
		ctx, c.cancel = context.WithCancel(ctx)
		c.done = make(chan struct{})
		go func() {
			defer close(c.done)
			tk := time.NewTicker(c.opts.Interval)
			defer tk.Stop()
			for {
				if err := c.GatherAt(c.opts.Now()); err != nil {
					c.opts.Logger.Warn("embedded Prometheus: gather failed", "err", err)
				}
				select {
				case <-ctx.Done():
					return
				case <-tk.C:
				}
			}
		}()
	})
}

// Stop ends the gathering loop and gathers once more, so values set at the
// very end of a run are in the TSDB before assertions are evaluated.
func (c *Collector) Stop() error {
	c.stopOnce.Do(func() {
		if c.cancel != nil {
			c.cancel()
			<-c.done
		}
		c.stopErr = c.GatherAt(c.opts.Now())
	})
	return c.stopErr
}

// GatherAt scrapes every target once, stamping the samples with t (or 1 ms
// after the previous scrape when t is not later). Times must not go
// backwards by more than that (the TSDB rejects out-of-order samples).
func (c *Collector) GatherAt(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ts := t.UnixMilli()
	if ts <= c.lastTS {
		ts = c.lastTS + 1
	}
	c.lastTS = ts
	app := c.local.Appender(context.Background())
	var errs []error
	for i, tg := range c.targets {
		job := "kmt-" + tg.Role
		inst := tg.Instance
		if inst == "" {
			inst = "local"
		}
		mfs, err := tg.Gatherer.Gather()
		if err != nil {
			// Like a failed scrape: every series of the target goes stale.
			errs = append(errs, fmt.Errorf("gather %s: %w", job, err))
			mfs = nil
		}
		seen := map[string]labels.Labels{}
		add := func(ls labels.Labels, mts int64, v float64) {
			at := ts
			if mts != 0 {
				at = mts // honor_timestamps, as Prometheus does by default
			}
			key := ls.String()
			if _, dup := seen[key]; dup {
				errs = append(errs, fmt.Errorf("gather %s: series %s exposed twice", job, key))
				return
			}
			seen[key] = ls
			if _, err := app.Append(0, ls, at, v); err != nil {
				errs = append(errs, fmt.Errorf("append %s at %s: %w", key, time.UnixMilli(at).UTC().Format(time.RFC3339Nano), err))
			}
		}
		for _, mf := range mfs {
			appendFamily(mf, job, inst, add)
		}
		for key, ls := range c.last[i] {
			if _, ok := seen[key]; ok {
				continue
			}
			if _, err := app.Append(0, ls, ts, math.Float64frombits(value.StaleNaN)); err != nil && !errors.Is(err, storage.ErrOutOfOrderSample) {
				errs = append(errs, fmt.Errorf("mark %s stale: %w", key, err))
			}
		}
		c.last[i] = seen
	}
	if err := app.Commit(); err != nil {
		errs = append(errs, fmt.Errorf("commit: %w", err))
	}
	if len(errs) > 0 {
		return fmt.Errorf("embedded Prometheus scrape at %s: %w", t.UTC().Format(time.RFC3339Nano), errors.Join(errs...))
	}
	return nil
}

// appendFamily turns one metric family into the series a text-format
// scrape would produce.
func appendFamily(mf *dto.MetricFamily, job, inst string, add func(labels.Labels, int64, float64)) {
	name := mf.GetName()
	for _, m := range mf.GetMetric() {
		base := map[string]string{}
		for _, lp := range m.GetLabel() {
			base[lp.GetName()] = lp.GetValue()
		}
		series := func(n string, extra ...string) labels.Labels {
			b := labels.NewBuilder(labels.EmptyLabels())
			for k, v := range base {
				switch k {
				case "job", "instance":
					b.Set("exported_"+k, v)
				default:
					b.Set(k, v)
				}
			}
			for i := 0; i+1 < len(extra); i += 2 {
				b.Set(extra[i], extra[i+1])
			}
			b.Set(labels.MetricName, n)
			b.Set("job", job)
			b.Set("instance", inst)
			return b.Labels()
		}
		mts := m.GetTimestampMs()
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			add(series(name), mts, m.GetCounter().GetValue())
		case dto.MetricType_GAUGE:
			add(series(name), mts, m.GetGauge().GetValue())
		case dto.MetricType_UNTYPED:
			add(series(name), mts, m.GetUntyped().GetValue())
		case dto.MetricType_SUMMARY:
			s := m.GetSummary()
			for _, q := range s.GetQuantile() {
				add(series(name, "quantile", formatFloat(q.GetQuantile())), mts, q.GetValue())
			}
			add(series(name+"_sum"), mts, s.GetSampleSum())
			add(series(name+"_count"), mts, float64(s.GetSampleCount()))
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			h := m.GetHistogram()
			bs := append([]*dto.Bucket(nil), h.GetBucket()...)
			sort.Slice(bs, func(i, j int) bool { return bs[i].GetUpperBound() < bs[j].GetUpperBound() })
			hasInf := false
			for _, b := range bs {
				if math.IsInf(b.GetUpperBound(), 1) {
					hasInf = true
				}
				add(series(name+"_bucket", "le", formatFloat(b.GetUpperBound())), mts, float64(b.GetCumulativeCount()))
			}
			if !hasInf {
				// The exposition format always has le="+Inf" = _count.
				add(series(name+"_bucket", "le", "+Inf"), mts, float64(h.GetSampleCount()))
			}
			add(series(name+"_sum"), mts, h.GetSampleSum())
			add(series(name+"_count"), mts, float64(h.GetSampleCount()))
		}
	}
}

// formatFloat writes le/quantile values as the text exposition format does.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

var _ Querier = (*Local)(nil)
