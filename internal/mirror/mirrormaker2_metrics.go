package mirror

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// MirrorMaker 2's own metrics come from its JMX beans through the
// Prometheus JMX exporter, loaded as a java agent into the MirrorMaker 2
// JVM and serving on a loopback port. kmt scrapes that port every
// mm2ScrapeEvery in the background (a paused or killed JVM must not stall
// kmt's own /metrics) and re-exports the last scrape into its registry,
// under the exporter's names, beside kmt's series.
const (
	mm2ScrapeEvery = 2 * time.Second
	mm2ScrapeLimit = time.Second
	// mm2Stale: an older scrape (the JVM is down or frozen) is not
	// re-exported; a stale replication latency would read as a healthy one.
	mm2Stale = 3 * mm2ScrapeEvery
	// MM2MetricsFile is the last scrape, in the report folder.
	MM2MetricsFile  = "mirrormaker2-metrics.prom"
	mm2ExporterYAML = "jmx-exporter.yaml"
	// MM2MetricPrefix starts every MirrorMaker 2 and Kafka Connect series
	// kmt re-exports.
	MM2MetricPrefix = "kafka_connect_"
)

// jmxExporterConfig selects the MirrorMaker 2 beans (per-partition copy
// metrics, checkpoint metrics) and Kafka Connect's worker and task beans
// (running and failed task counts), named by the exporter's default rule.
const jmxExporterConfig = `# Written by kmt: MirrorMaker 2 and Kafka Connect beans only.
lowercaseOutputName: true
lowercaseOutputLabelNames: true
includeObjectNames:
  - "kafka.connect.mirror:*"
  - "kafka.connect:type=connect-worker-metrics,*"
  - "kafka.connect:type=connect-worker-metrics"
  - "kafka.connect:type=source-task-metrics,*"
  - "kafka.connect:type=connector-task-metrics,*"
`

type mm2Metrics struct {
	port  int
	agent string
	conf  string
	dir   string
	log   *slog.Logger

	mu     sync.Mutex
	last   map[string]*dto.MetricFamily
	lastAt time.Time
	errs   int

	runOnce  sync.Once
	stopOnce sync.Once
	cancel   context.CancelFunc
	done     chan struct{}
}

func newMM2Metrics(dir, agent string, reg prometheus.Registerer, log *slog.Logger) (*mm2Metrics, error) {
	if _, err := os.Stat(agent); err != nil {
		return nil, fmt.Errorf("mirrormaker2: JMX exporter agent %s: %w", agent, err)
	}
	port, err := freePort()
	if err != nil {
		return nil, fmt.Errorf("mirrormaker2: a port for the metrics agent: %w", err)
	}
	conf := filepath.Join(dir, mm2ExporterYAML)
	if err := os.WriteFile(conf, []byte(jmxExporterConfig), 0o644); err != nil {
		return nil, fmt.Errorf("mirrormaker2: writing %s: %w", conf, err)
	}
	m := &mm2Metrics{port: port, agent: agent, conf: conf, dir: dir, log: log, done: make(chan struct{})}
	if reg != nil {
		if err := reg.Register(m); err != nil {
			return nil, fmt.Errorf("mirrormaker2: registering its metrics: %w", err)
		}
	}
	return m, nil
}

// agentArg is the JVM option that loads the exporter on a loopback port.
func (m *mm2Metrics) agentArg() string {
	return fmt.Sprintf("-javaagent:%s=127.0.0.1:%d:%s", m.agent, m.port, m.conf)
}

// URL is where the exporter serves.
func (m *mm2Metrics) URL() string { return fmt.Sprintf("http://127.0.0.1:%d/metrics", m.port) }

// start begins the background scrape (once; restarts reuse the port).
func (m *mm2Metrics) start() {
	m.runOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		m.cancel = cancel
		go m.loop(ctx)
	})
}

func (m *mm2Metrics) loop(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(mm2ScrapeEvery)
	defer t.Stop()
	for {
		m.scrapeOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *mm2Metrics) scrapeOnce(ctx context.Context) {
	fams, err := scrapeText(ctx, m.URL())
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		// Expected while MirrorMaker 2 is killed, stopped or frozen.
		m.errs++
		return
	}
	m.last, m.lastAt = fams, time.Now()
}

// scrapeText reads one text-format exposition and keeps the MirrorMaker 2
// and Kafka Connect families.
func scrapeText(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	ctx, cancel := context.WithTimeout(ctx, mm2ScrapeLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	all, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	for name := range all {
		if !strings.HasPrefix(name, MM2MetricPrefix) {
			delete(all, name)
		}
	}
	return all, nil
}

// stop ends the scrape after one last read and writes it to the report
// folder.
func (m *mm2Metrics) stop() {
	m.stopOnce.Do(func() {
		if m.cancel == nil {
			return
		}
		m.scrapeOnce(context.Background())
		m.cancel()
		<-m.done
		if err := m.writeLast(); err != nil {
			m.log.Warn("could not keep MirrorMaker 2's last metrics", "err", err)
		}
	})
}

func (m *mm2Metrics) writeLast() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last == nil {
		return fmt.Errorf("no scrape of %s ever succeeded (%d attempts failed)", m.URL(), m.errs)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# MirrorMaker 2's metrics as last scraped from its JMX exporter at %s\n", m.lastAt.UTC().Format(time.RFC3339))
	for _, name := range slices.Sorted(maps.Keys(m.last)) {
		if _, err := expfmt.MetricFamilyToText(&b, m.last[name]); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(m.dir, MM2MetricsFile), []byte(b.String()), 0o644)
}

// Summary sums each family of the last scrape over its series (counts) or
// takes the maximum (latencies, ages, task counts are per series): a few
// numbers for the report beside kmt's own.
func (m *mm2Metrics) Summary() map[string]float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]float64{}
	for name, f := range m.last {
		sum := f.GetType() == dto.MetricType_COUNTER || strings.HasSuffix(name, "_count")
		first := true
		for _, x := range f.GetMetric() {
			v := sampleValue(x)
			switch {
			case first:
				out[name] = v
			case sum:
				out[name] += v
			default:
				out[name] = max(out[name], v)
			}
			first = false
		}
	}
	return out
}

// Describe sends nothing: the exporter's series are only known once
// scraped (an unchecked collector).
func (m *mm2Metrics) Describe(chan<- *prometheus.Desc) {}

// Collect re-exports the last fresh scrape.
func (m *mm2Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	fams, at := m.last, m.lastAt
	m.mu.Unlock()
	if fams == nil || time.Since(at) > mm2Stale {
		return
	}
	for _, name := range slices.Sorted(maps.Keys(fams)) {
		f := fams[name]
		vt := prometheus.UntypedValue
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			vt = prometheus.CounterValue
		case dto.MetricType_GAUGE:
			vt = prometheus.GaugeValue
		case dto.MetricType_UNTYPED:
		default:
			continue // summaries/histograms: the exporter emits none for these beans
		}
		for _, x := range f.GetMetric() {
			var names, values []string
			for _, l := range x.GetLabel() {
				names = append(names, l.GetName())
				values = append(values, l.GetValue())
			}
			desc := prometheus.NewDesc(name, f.GetHelp(), names, nil)
			if cm, err := prometheus.NewConstMetric(desc, vt, sampleValue(x), values...); err == nil {
				ch <- cm
			}
		}
	}
}

func sampleValue(x *dto.Metric) float64 {
	switch {
	case x.Gauge != nil:
		return x.Gauge.GetValue()
	case x.Counter != nil:
		return x.Counter.GetValue()
	case x.Untyped != nil:
		return x.Untyped.GetValue()
	}
	return 0
}
