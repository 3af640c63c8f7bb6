package promtest

import (
	"context"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/assertions"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Timeline of the simulated run (wall clock, ~15 s): warmup [0,2s),
// steady [2s,6s), fault:stall [6s,9s), recovery [9s,13s), drain [13s,15s).
const diffScenario = `apiVersion: kmt.dev/v1
kind: Scenario
metadata: {name: differential}
spec:
  topology: {topics: [{name: orders}]}
  load: {duration: 13s}
  warmup: 2s
  recovery: 4s
  drain: 2s
  timeline:
    - {name: stall, kind: broker-pause, at: 6s, duration: 3s}
  assertions:
    noLoss: true
    maxDuplicates: 5
    ordered: true
    p99LatencyBelow: {phase: steady, value: 100ms}
    recoversWithin: {after: stall, value: 7s, lagBelow: 50}
    custom:
      - {name: acked-total, expr: 'sum(kmt_loadgen_acked_total)', op: '>', value: 1000}
      - {name: lag-low-in-steady, expr: 'max(kmt_validator_lag_records)', op: '<=', value: 10, mode: continuous, interval: 1s, window: steady}
      - name: fault-p50
        expr: |
          histogram_quantile(0.5,
            sum by (le) (rate(kmt_validator_latency_seconds_bucket[3s])))
        op: between
        range: [0.2, 2]
        window: fault:stall
      - {name: no-duplicates-at-all, expr: 'sum(kmt_validator_anomalies_total{category="duplicate"})', op: '==', value: 0}
      - {name: receive-rate-recovery, expr: 'sum(rate(kmt_validator_received_total[3s]))', op: between, range: [500, 1500], window: recovery}
      - {name: lag-during-stall, expr: 'max(kmt_validator_lag_records)', op: '<', value: 100, mode: continuous, interval: 1s, tolerate: 1, window: 'fault:stall'}
`

// sim is a fake-free stand-in for a run: real client_golang registries,
// updated by a goroutine on the wall clock, served over HTTP.
type sim struct {
	loadgen, validator, harness *prometheus.Registry
	acked, sent, received       prometheus.Counter
	anomalies                   *prometheus.CounterVec
	missing                     *prometheus.GaugeVec
	lag                         prometheus.Gauge
	latency                     prometheus.Histogram
	phase, fault                *prometheus.GaugeVec
}

func newSim() *sim {
	s := &sim{loadgen: prometheus.NewRegistry(), validator: prometheus.NewRegistry(), harness: prometheus.NewRegistry()}
	lg := metrics.Wrap(s.loadgen, "differential", "d1", "loadgen")
	s.sent = prometheus.NewCounter(prometheus.CounterOpts{Name: metrics.LoadgenSent, Help: "records handed to the producer"})
	s.acked = prometheus.NewCounter(prometheus.CounterOpts{Name: metrics.LoadgenAcked, Help: "records acknowledged"})
	lg.MustRegister(s.sent, s.acked)
	v := metrics.Wrap(s.validator, "differential", "d1", "validator")
	s.received = prometheus.NewCounter(prometheus.CounterOpts{Name: metrics.ValidatorReceived, Help: "received"})
	s.anomalies = prometheus.NewCounterVec(prometheus.CounterOpts{Name: metrics.ValidatorAnomaly, Help: "anomalies"}, []string{metrics.LabelTopic, metrics.LabelCategory})
	s.missing = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metrics.ValidatorMissing, Help: "missing"}, []string{metrics.LabelTopic, metrics.LabelCategory})
	s.lag = prometheus.NewGauge(prometheus.GaugeOpts{Name: metrics.ValidatorLag, Help: "lag"})
	s.latency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: metrics.ValidatorLatency, Help: "latency", Buckets: metrics.LatencyBuckets})
	v.MustRegister(s.received, s.anomalies, s.missing, s.lag, s.latency)
	h := metrics.Wrap(s.harness, "differential", "d1", "harness")
	s.phase = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metrics.Phase, Help: "phase"}, []string{metrics.LabelPhase})
	s.fault = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metrics.FaultActive, Help: "fault"}, []string{metrics.LabelFault, metrics.LabelKind})
	h.MustRegister(s.phase, s.fault)
	for _, c := range []string{"duplicate", "reordered", "corrupt"} {
		s.anomalies.WithLabelValues("orders", c)
	}
	for _, c := range []string{"lost", "unseen"} {
		s.missing.WithLabelValues("orders", c).Set(0)
	}
	return s
}

// run drives the registries along the scenario's phases and returns the
// windows it went through.
func (s *sim) run(ctx context.Context, sc *scenarios.Scenario) assertions.Windows {
	t0 := time.Now()
	w := assertions.PlannedWindows(sc, t0)
	end := w["run"].End
	tk := time.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
	var lag float64
	s.anomalies.WithLabelValues("orders", "duplicate").Add(2)
	for now := range tk.C {
		if ctx.Err() != nil || now.After(end) {
			break
		}
		// Effects trail the phase boundaries by 150 ms: a scrape's
		// timestamp is taken before it reads the registry and truncated to
		// the millisecond, so a sample stamped exactly at a window's end can
		// already hold the next phase's values. A real run has that jitter
		// too; this test wants verdicts that are certain.
		at := now.Add(-150 * time.Millisecond)
		cur := ""
		for _, p := range []string{"warmup", "steady", "fault:stall", "recovery", "drain"} {
			if win := w[p]; !at.Before(win.Start) && at.Before(win.End) {
				cur = p
			}
		}
		for _, p := range []string{"warmup", "steady", "recovery", "drain"} {
			v := 0.0
			if p == cur {
				v = 1
			}
			s.phase.WithLabelValues(p).Set(v)
		}
		inFault := cur == "fault:stall"
		if inFault {
			s.fault.WithLabelValues("stall", "broker-pause").Set(1)
		} else {
			s.fault.WithLabelValues("stall", "broker-pause").Set(0)
		}
		if cur != "drain" {
			s.sent.Add(100)
			s.acked.Add(100)
		}
		switch {
		case inFault:
			lag += 40 // 400/s for 3 s
		case lag > 0:
			lag = max(0, lag-30) // back under 50 about 3.8 s after the fault
		}
		s.lag.Set(lag)
		if !inFault {
			s.received.Add(100)
		}
		for i := range 10 {
			if inFault {
				s.latency.Observe(0.5 + float64(i)*0.1)
			} else {
				s.latency.Observe(0.002 + float64(i)*0.001)
			}
		}
	}
	return w
}

func TestDifferentialAgainstRealPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real Prometheus for ~25 s")
	}
	sc, err := scenarios.Parse("differential.yaml", []byte(diffScenario))
	if err != nil {
		t.Fatal(err)
	}
	as, err := assertions.Compile(sc)
	if err != nil {
		t.Fatal(err)
	}
	if len(as) < 5+3 {
		t.Fatalf("want every built-in and at least 3 custom assertions, got %d", len(as))
	}
	s := newSim()
	cmp, h := Differential(t, []Endpoint{
		{Role: "loadgen", Gatherer: s.loadgen},
		{Role: "validator", Gatherer: s.validator},
		{Role: "harness", Gatherer: s.harness},
	}, Options{}, as, func(ctx context.Context) assertions.Windows { return s.run(ctx, sc) })

	// The workload is built so the verdicts are known: guard against both
	// sides agreeing on a wrong answer (e.g. both "no series").
	wantPass := map[string]bool{
		assertions.NameNoLoss: true, assertions.NameMaxDuplicates: true, assertions.NameOrdered: true,
		"p99-latency-steady": true, "recovers-within-stall": true,
		"acked-total": true, "lag-low-in-steady": true, "fault-p50": true,
		"no-duplicates-at-all": false, "receive-rate-recovery": true, "lag-during-stall": false,
	}
	for _, c := range cmp {
		want, ok := wantPass[c.Assertion.Name]
		if !ok {
			t.Errorf("unexpected assertion %s", c.Assertion.Name)
			continue
		}
		if c.Local.Pass != want {
			t.Errorf("%s: embedded pass=%v, want %v (%s)", c.Assertion.Name, c.Local.Pass, want, c.Local.Reason)
		}
		if c.Remote.Pass != want {
			t.Errorf("%s: real Prometheus pass=%v, want %v (%s)", c.Assertion.Name, c.Remote.Pass, want, c.Remote.Reason)
		}
		if strings.Contains(c.Local.Reason, "no series") || strings.Contains(c.Remote.Reason, "no series") {
			t.Errorf("%s: no series (embedded: %s; real: %s)", c.Assertion.Name, c.Local.Reason, c.Remote.Reason)
		}
	}
	if len(cmp) != len(wantPass) {
		t.Errorf("%d comparisons, want %d", len(cmp), len(wantPass))
	}

	t.Run("remote over TLS with a bearer token file", func(t *testing.T) { remoteTLS(t, h, as[0], cmp[0].Remote) })
}

// remoteTLS puts an HTTPS proxy that demands a bearer token in front of the
// real Prometheus and queries it with Remote's CA file and token file.
func remoteTLS(t *testing.T, h *Harness, a assertions.Assertion, direct assertions.Result) {
	backend, err := url.Parse(h.PromURL)
	if err != nil {
		t.Fatal(err)
	}
	const token = "s3cret-token"
	proxy := httputil.NewSingleHostReverseProxy(backend)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	// The unknown-CA case aborts a handshake on purpose; keep its log quiet.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	tokFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := assertions.Windows{a.Window: {Start: direct.Start, End: direct.End}}
	for _, c := range []struct {
		name string
		o    assertions.RemoteOptions
		ok   bool
		want string
	}{
		{"CA file and token file", assertions.RemoteOptions{URL: srv.URL, CAFile: ca, BearerTokenFile: tokFile}, true, ""},
		{"inline token, insecure", assertions.RemoteOptions{URL: srv.URL, BearerToken: token, InsecureSkipVerify: true}, true, ""},
		{"wrong token", assertions.RemoteOptions{URL: srv.URL, CAFile: ca, BearerToken: "nope"}, false, "query failed"},
		{"unknown CA", assertions.RemoteOptions{URL: srv.URL, BearerToken: token}, false, "certificate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, err := assertions.NewRemote(c.o)
			if err != nil {
				t.Fatal(err)
			}
			r := assertions.Evaluate(context.Background(), q, a, w)
			if c.ok {
				if r.Pass != direct.Pass || len(r.Observed) != 1 || r.Observed[0] != direct.Observed[0] {
					t.Fatalf("through the proxy: %+v, direct: %+v", r, direct)
				}
				return
			}
			if r.Pass || !strings.Contains(r.Reason, c.want) {
				t.Fatalf("pass %v reason %q, want a failure with %q", r.Pass, r.Reason, c.want)
			}
		})
	}
}

func TestHTTPGatherer(t *testing.T) {
	s := newSim()
	s.lag.Set(7)
	s.latency.Observe(0.004)
	u := serve(t, s.validator)
	mfs, err := HTTPGatherer{URL: u}.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, mf := range mfs {
		got[mf.GetName()] = true
		if mf.GetName() == metrics.ValidatorLag && mf.GetMetric()[0].GetGauge().GetValue() != 7 {
			t.Errorf("lag = %v, want 7", mf.GetMetric()[0])
		}
	}
	for _, n := range []string{metrics.ValidatorLag, metrics.ValidatorLatency, metrics.ValidatorAnomaly} {
		if !got[n] {
			t.Errorf("family %s missing from %v", n, got)
		}
	}
	if _, err := (HTTPGatherer{URL: u + "/nope"}).Gather(); err == nil {
		t.Error("a 404 endpoint gathered without error")
	}
}

func TestToleranceCompare(t *testing.T) {
	tol := DefaultTolerance
	end := assertions.Assertion{Mode: assertions.ModeEnd}
	quantile := assertions.Assertion{Mode: assertions.ModeEnd, Expr: "histogram_quantile(0.5, sum by (le) (increase(kmt_validator_latency_seconds_bucket[3s])))"}
	res := func(pass bool, obs ...float64) assertions.Result { return assertions.Result{Pass: pass, Observed: obs} }
	for _, c := range []struct {
		name string
		a    assertions.Assertion
		l, r assertions.Result
		ok   bool
	}{
		{"same", end, res(true, 10), res(true, 10), true},
		{"within 10%", end, res(true, 100), res(true, 109), true},
		{"beyond 10%", end, res(true, 100), res(true, 120), false},
		{"pass differs", end, res(true, 1), res(false, 1), false},
		{"one empty", end, res(false), res(false, 3), false},
		{"within 2s", assertions.Assertion{Mode: assertions.ModeWithin}, res(true, 3), res(true, 4.5), true},
		{"within 3s apart", assertions.Assertion{Mode: assertions.ModeWithin}, res(true, 1), res(true, 4), false},
		{"failures 1 apart", assertions.Assertion{Mode: assertions.ModeContinuous}, assertions.Result{Failures: 3}, assertions.Result{Failures: 2}, true},
		{"failures 2 apart", assertions.Assertion{Mode: assertions.ModeContinuous}, assertions.Result{Failures: 3}, assertions.Result{Failures: 1}, false},
		// seen in CI-like runs: 1 failure tolerated by the assertion on one
		// side, 2 on the other (the scrapers sampled a second apart)
		{"continuous on its own budget, 1 apart", assertions.Assertion{Mode: assertions.ModeContinuous},
			assertions.Result{Pass: true, Failures: 1}, assertions.Result{Pass: false, Failures: 2}, true},
		{"continuous pass differs, 2 apart", assertions.Assertion{Mode: assertions.ModeContinuous},
			assertions.Result{Pass: true, Failures: 0}, assertions.Result{Pass: false, Failures: 2}, false},
		// 0.2215 and 0.2493 sit in neighbouring latency buckets (0.182-0.227, 0.227-0.284)
		{"quantile one bucket apart", quantile, res(true, 0.2215), res(true, 0.2493), true},
		// 0.0189 (0.0156-0.0195) and 0.0275 (0.0244-0.0305) are two buckets apart
		{"quantile two buckets apart", quantile, res(true, 0.0189), res(true, 0.0275), false},
		{"not a quantile, 12.5% apart", end, res(true, 0.2215), res(true, 0.2493), false},
	} {
		if got := tol.compare(c.a, c.l, c.r) == ""; got != c.ok {
			t.Errorf("%s: agree=%v, want %v", c.name, got, c.ok)
		}
	}
}
