// Package promtest runs kmt's assertions on a real Prometheus server and on
// the embedded one side by side, and fails the test when they disagree. It
// is test support: it installs Debian's prometheus package when it is
// missing (as root; otherwise the test is skipped), and every process,
// listener and directory it starts is cleaned up with t.Cleanup.
//
// Use Differential for the whole thing, or Start and Harness.Compare when
// the workload is driven from elsewhere (an embedded scenario run).
package promtest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/assertions"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
)

// Endpoint is one scrape target. With a Gatherer and no URL, the harness
// serves it with promhttp on 127.0.0.1; with a URL (http://host:port/metrics)
// both sides scrape that URL (the embedded side through HTTPGatherer).
type Endpoint struct {
	Role     string // job is kmt-<Role>
	Gatherer prometheus.Gatherer
	URL      string
}

// Options of the harness.
type Options struct {
	// ScrapeInterval of both sides; default 1s.
	ScrapeInterval time.Duration
	// Tolerance of the comparison; zero value: DefaultTolerance.
	Tolerance Tolerance
}

// Tolerance bounds how far the two sides' observed values may differ.
// Pass/fail must always be the same.
//
// Why values differ at all: the two sides scrape at different moments
// (each within its own interval, not in step), so a gauge read at an
// evaluation time may be up to one interval older on one side, and
// increase()/rate() extrapolate from different first/last samples. End
// values of counters that stopped moving before the window's end agree
// exactly.
type Tolerance struct {
	// Rel: relative difference allowed for mode end and continuous values
	// (|a-b| <= Rel*max(|a|,|b|) or <= Abs).
	Rel float64
	Abs float64
	// Within: absolute difference of recovery times (mode within), in
	// seconds: each side may see the recovery up to one scrape interval
	// late, plus the 1s evaluation step.
	Within float64
	// Failures: how many more failed evaluations one side may count in
	// continuous mode (at the window's edges a sample can fall on either
	// side of a step).
	Failures int
}

// DefaultTolerance: 10% or 1e-6, 2 s for recovery times, 1 evaluation.
var DefaultTolerance = Tolerance{Rel: 0.10, Abs: 1e-6, Within: 2, Failures: 1}

// Comparison is one assertion evaluated on both sides.
type Comparison struct {
	Assertion assertions.Assertion
	Local     assertions.Result
	Remote    assertions.Result
	// Problem is "" when the two agree within the tolerance.
	Problem string
}

// Harness is a real Prometheus and an embedded one scraping the same
// endpoints.
type Harness struct {
	Local     *assertions.Local
	Collector *assertions.Collector
	Remote    *assertions.Remote
	// PromURL is the real server's base URL (http://127.0.0.1:port).
	PromURL  string
	interval time.Duration
	tol      Tolerance
	jobs     int
	stopped  bool
}

// EnsurePrometheus returns the path of a prometheus binary. When none is
// on PATH it installs Debian's package if running as root (CI does), and
// skips the test otherwise.
func EnsurePrometheus(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	if os.Geteuid() != 0 {
		t.Skip("prometheus is not on PATH and installing it needs root: run `apt-get install -y prometheus` (Debian) to enable the differential test")
	}
	t.Log("prometheus not on PATH: installing Debian's prometheus package")
	cmd := exec.Command("sh", "-c", "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("apt-get install prometheus failed: %v\n%s", err, tail(out, 4000))
	}
	p, err := exec.LookPath("prometheus")
	if err != nil {
		// Debian installs it to /usr/bin; PATH may lack it in odd environments.
		if _, serr := os.Stat("/usr/bin/prometheus"); serr == nil {
			return "/usr/bin/prometheus"
		}
		t.Fatalf("installed Debian's prometheus but found no prometheus binary: %v", err)
	}
	return p
}

// Start serves the endpoints that have only a Gatherer, starts a real
// Prometheus scraping all of them and an embedded Collector gathering the
// same, and returns once Prometheus reports every target up.
func Start(t testing.TB, eps []Endpoint, o Options) *Harness {
	t.Helper()
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = time.Second
	}
	if o.Tolerance == (Tolerance{}) {
		o.Tolerance = DefaultTolerance
	}
	bin := EnsurePrometheus(t)
	jobs, targets := scrapeTargets(t, eps)
	dir := t.TempDir()
	cfgPath := writeConfig(t, dir, o.ScrapeInterval, jobs)
	p := startPrometheus(t, bin, cfgPath, dir)
	h := &Harness{PromURL: p.url, interval: o.ScrapeInterval, tol: o.Tolerance, jobs: len(targets)}
	var err error
	h.Remote, err = assertions.NewRemote(assertions.RemoteOptions{URL: h.PromURL})
	if err != nil {
		t.Fatal(err)
	}
	waitTargetsUp(t, h.Remote, p, len(targets))
	h.startCollector(t, filepath.Join(dir, "local"), targets, o.ScrapeInterval)
	return h
}

// scrapeTargets serves the endpoints that have only a Gatherer and returns
// the scrape jobs (job -> host:port targets) and the Collector's targets.
func scrapeTargets(t testing.TB, eps []Endpoint) (map[string][]string, []assertions.Target) {
	t.Helper()
	jobs := map[string][]string{}
	var targets []assertions.Target
	for i, ep := range eps {
		if ep.Role == "" {
			t.Fatalf("endpoint %d has no role", i)
		}
		u := ep.URL
		g := ep.Gatherer
		if u == "" {
			if g == nil {
				t.Fatalf("endpoint %d (%s) has neither a gatherer nor a URL", i, ep.Role)
			}
			u = serve(t, g)
		} else if g == nil {
			g = HTTPGatherer{URL: u}
		}
		hostPort, path := splitURL(t, u)
		if path != "/metrics" {
			t.Fatalf("endpoint %s: metrics path %q; the harness scrapes /metrics", u, path)
		}
		jobs["kmt-"+ep.Role] = append(jobs["kmt-"+ep.Role], hostPort)
		targets = append(targets, assertions.Target{Role: ep.Role, Gatherer: g, Instance: hostPort})
	}
	return jobs, targets
}

// writeConfig writes prometheus.yml (one static job per role) into dir and
// returns its path.
func writeConfig(t testing.TB, dir string, interval time.Duration, jobs map[string][]string) string {
	t.Helper()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: %s\n  scrape_timeout: %s\n  evaluation_interval: %s\nscrape_configs:\n",
		promDur(interval), promDur(interval), promDur(interval))
	for _, j := range slices.Sorted(maps.Keys(jobs)) {
		fmt.Fprintf(&cfg, "  - job_name: %q\n    static_configs:\n      - targets: [%s]\n", j, quoteAll(jobs[j]))
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath
}

// prometheusProcess is a started Prometheus server.
type prometheusProcess struct {
	url     string
	logPath string
	exited  chan struct{} // closed when the process has exited
}

func (p prometheusProcess) log() string { b, _ := os.ReadFile(p.logPath); return tail(b, 4000) }

// startPrometheus starts Prometheus on a free loopback port, in its own
// process group, and stops it (SIGTERM, SIGKILL after 10 s) when the test
// ends.
func startPrometheus(t testing.TB, bin, cfgPath, dir string) prometheusProcess {
	t.Helper()
	port := freePort(t)
	p := prometheusProcess{url: fmt.Sprintf("http://127.0.0.1:%d", port), logPath: filepath.Join(dir, "prometheus.log"), exited: make(chan struct{})}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-p.exited
		}
		_ = logf.Close()
	})
	return p
}

// waitTargetsUp waits until Prometheus is ready and reports all n targets
// up (the scrape manager picks targets up within a few seconds of start).
func waitTargetsUp(t testing.TB, remote *assertions.Remote, p prometheusProcess, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-p.exited:
			t.Fatalf("prometheus exited during start-up; its log:\n%s", p.log())
		default:
		}
		ss, err := remote.Instant(context.Background(), `count(up == 1)`, time.Now())
		if err == nil && len(ss) == 1 && int(ss[0].Value) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus at %s did not report %d targets up within 30s (last: %v %v); its log:\n%s", p.url, n, ss, err, p.log())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startCollector starts the embedded TSDB in dir and the Collector feeding
// it from the same targets, both stopped when the test ends.
func (h *Harness) startCollector(t testing.TB, dir string, targets []assertions.Target, interval time.Duration) {
	t.Helper()
	var err error
	h.Local, err = assertions.NewLocal(assertions.LocalOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Local.Close() })
	h.Collector = assertions.NewCollector(h.Local, targets, assertions.CollectorOptions{Interval: interval})
	ctx, cancel := context.WithCancel(context.Background())
	h.Collector.Start(ctx)
	t.Cleanup(func() { cancel(); _ = h.Collector.Stop() })
}

// Compare stops the embedded collector (final gather), waits until the
// real Prometheus has scraped every target after the end of every window,
// evaluates each assertion on both sides and reports disagreements with
// t.Errorf. It returns every comparison.
func (h *Harness) Compare(t testing.TB, as []assertions.Assertion, w assertions.Windows) []Comparison {
	t.Helper()
	if !h.stopped {
		if err := h.Collector.Stop(); err != nil {
			t.Logf("embedded collector's final gather: %v", err)
		}
		h.stopped = true
	}
	var last time.Time
	for _, win := range w {
		if win.End.After(last) {
			last = win.End
		}
	}
	for _, a := range as {
		if a.Mode == assertions.ModeWithin {
			if win, ok := w[a.Window]; ok && win.End.Add(a.Within).After(last) {
				last = win.End.Add(a.Within)
			}
		}
	}
	deadline := time.Now().Add(last.Sub(time.Now()) + 15*h.interval + 10*time.Second)
	for {
		ss, err := h.Remote.Instant(context.Background(), `min(timestamp(up))`, time.Now())
		if err == nil && len(ss) == 1 && ss[0].Value > float64(last.UnixMilli())/1000+0.001 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus has not scraped past %s (last: %v %v)", last, ss, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	ctx := context.Background()
	var out []Comparison
	for _, a := range as {
		c := Comparison{Assertion: a, Local: assertions.Evaluate(ctx, h.Local, a, w), Remote: assertions.Evaluate(ctx, h.Remote, a, w)}
		c.Problem = h.tol.compare(a, c.Local, c.Remote)
		if c.Problem != "" {
			t.Errorf("assertion %s (%s %s, %s over %s): embedded and real Prometheus disagree: %s\n  embedded: pass=%v observed=%v %s\n  real:     pass=%v observed=%v %s",
				a.Name, a.Expr, a.Threshold(), a.Mode, a.Window, c.Problem,
				c.Local.Pass, c.Local.Observed, c.Local.Reason, c.Remote.Pass, c.Remote.Observed, c.Remote.Reason)
		} else {
			t.Logf("assertion %s: both pass=%v; embedded %v, real %v", a.Name, c.Local.Pass, c.Local.Observed, c.Remote.Observed)
		}
		out = append(out, c)
	}
	return out
}

// Differential starts the harness, runs drive (the workload, which returns
// the windows it recorded), and compares the assertions on both sides.
func Differential(t testing.TB, eps []Endpoint, o Options, as []assertions.Assertion, drive func(ctx context.Context) assertions.Windows) ([]Comparison, *Harness) {
	t.Helper()
	h := Start(t, eps, o)
	w := drive(context.Background())
	return h.Compare(t, as, w), h
}

func (tol Tolerance) compare(a assertions.Assertion, l, r assertions.Result) string {
	// A continuous assertion sitting on its own failure budget can pass on
	// one side and fail on the other when the two scrapers sample one
	// second apart: that is scrape alignment, not the engines disagreeing,
	// as long as the failure counts are within the tolerance. Every other
	// pass/fail difference is a disagreement.
	boundary := a.Mode == assertions.ModeContinuous && abs(l.Failures-r.Failures) <= tol.Failures
	if l.Pass != r.Pass && !boundary {
		return fmt.Sprintf("pass %v (embedded) vs %v (real)", l.Pass, r.Pass)
	}
	switch a.Mode {
	case assertions.ModeEnd:
		if len(l.Observed) != len(r.Observed) {
			return fmt.Sprintf("observed %v vs %v", l.Observed, r.Observed)
		}
		if len(l.Observed) == 1 && !tol.close(l.Observed[0], r.Observed[0]) &&
			!(isQuantile(a.Expr) && adjacentBuckets(l.Observed[0], r.Observed[0])) {
			return fmt.Sprintf("value %g vs %g differ by more than %g%% (or %g)", l.Observed[0], r.Observed[0], tol.Rel*100, tol.Abs)
		}
	case assertions.ModeContinuous:
		if d := l.Failures - r.Failures; d > tol.Failures || -d > tol.Failures {
			return fmt.Sprintf("%d vs %d failed evaluations", l.Failures, r.Failures)
		}
	case assertions.ModeWithin:
		if len(l.Observed) != len(r.Observed) {
			return fmt.Sprintf("recovery %v vs %v", l.Observed, r.Observed)
		}
		if len(l.Observed) == 1 && math.Abs(l.Observed[0]-r.Observed[0]) > tol.Within {
			return fmt.Sprintf("recovery after %gs vs %gs differ by more than %gs", l.Observed[0], r.Observed[0], tol.Within)
		}
	}
	return ""
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// isQuantile says the expression estimates a quantile from kmt's latency
// histogram.
func isQuantile(expr string) bool { return strings.Contains(expr, "histogram_quantile") }

// adjacentBuckets says two quantile estimates lie in the same or
// neighbouring latency buckets: histogram_quantile interpolates inside a
// bucket, so two scrapers whose windows start a scrape apart can land one
// bucket apart (about 25% at kmt's bucket widths) on the same data.
func adjacentBuckets(a, b float64) bool {
	idx := func(v float64) int { return sort.SearchFloat64s(metrics.LatencyBuckets, v) }
	return abs(idx(a)-idx(b)) <= 1
}

func (tol Tolerance) close(a, b float64) bool {
	d := math.Abs(a - b)
	return d <= tol.Abs || d <= tol.Rel*math.Max(math.Abs(a), math.Abs(b))
}

// HTTPGatherer scrapes a /metrics URL (text format), so the embedded
// Collector can gather endpoints served by another process.
type HTTPGatherer struct {
	URL    string
	Client *http.Client
}

// Gather implements prometheus.Gatherer.
func (g HTTPGatherer) Gather() ([]*dto.MetricFamily, error) {
	c := g.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	req, err := http.NewRequest(http.MethodGet, g.URL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", g.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", g.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: HTTP %s: %s", g.URL, resp.Status, tail(body, 300))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("scrape %s: parse: %w", g.URL, err)
	}
	out := make([]*dto.MetricFamily, 0, len(mfs))
	for _, mf := range mfs {
		out = append(out, mf)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, nil
}

// serve exposes g on a loopback listener; returns its /metrics URL.
func serve(t testing.TB, g prometheus.Gatherer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return "http://" + ln.Addr().String() + "/metrics"
}

func splitURL(t testing.TB, u string) (string, string) {
	rest, ok := strings.CutPrefix(u, "http://")
	if !ok {
		t.Fatalf("endpoint URL %q: the harness scrapes plain http:// loopback endpoints", u)
	}
	hostPort, path, _ := strings.Cut(rest, "/")
	return hostPort, "/" + path
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func promDur(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", int64(d/time.Second))
	}
	return fmt.Sprintf("%dms", d.Milliseconds())
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
