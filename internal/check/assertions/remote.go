package assertions

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// RemoteOptions point at a Prometheus HTTP API: kube-prometheus-stack in a
// cluster run (usually http://prometheus-operated.monitoring:9090, or
// through a port-forward), or any plain Prometheus.
type RemoteOptions struct {
	URL string
	// BearerToken is sent as "Authorization: Bearer <token>".
	BearerToken string
	// BearerTokenFile is read on every request (Kubernetes rotates
	// service-account tokens), e.g.
	// /var/run/secrets/kubernetes.io/serviceaccount/token.
	BearerTokenFile string
	// CAFile: PEM bundle to verify the server with (default: system roots).
	CAFile string
	// InsecureSkipVerify disables server certificate checks (test clusters only).
	InsecureSkipVerify bool
	// Timeout of one query; default 30s.
	Timeout time.Duration
}

// Remote queries a Prometheus server over its HTTP API. It implements
// Querier.
type Remote struct {
	api     v1.API
	url     string
	timeout time.Duration
}

// NewRemote checks the options and builds the client; it does not contact
// the server.
func NewRemote(o RemoteOptions) (*Remote, error) {
	if o.URL == "" {
		return nil, fmt.Errorf("Prometheus URL is empty: pass the server's address, e.g. http://127.0.0.1:9090")
	}
	if !strings.HasPrefix(o.URL, "http://") && !strings.HasPrefix(o.URL, "https://") {
		return nil, fmt.Errorf("Prometheus URL %q needs a scheme: http:// or https://", o.URL)
	}
	if o.BearerToken != "" && o.BearerTokenFile != "" {
		return nil, fmt.Errorf("Prometheus: give a bearer token or a token file, not both")
	}
	if o.BearerTokenFile != "" {
		if _, err := os.ReadFile(o.BearerTokenFile); err != nil {
			return nil, fmt.Errorf("Prometheus bearer token file: %w", err)
		}
	}
	tlsCfg := &tls.Config{InsecureSkipVerify: o.InsecureSkipVerify} //nolint:gosec // opt-in, for test clusters
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("Prometheus CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("Prometheus CA file %s holds no PEM certificate", o.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.TLSClientConfig = tlsCfg
	var rt http.RoundTripper = base
	if o.BearerToken != "" || o.BearerTokenFile != "" {
		rt = &bearer{token: o.BearerToken, file: o.BearerTokenFile, next: base}
	}
	c, err := api.NewClient(api.Config{Address: o.URL, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("Prometheus client for %s: %w", o.URL, err)
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return &Remote{api: v1.NewAPI(c), url: o.URL, timeout: o.Timeout}, nil
}

// bearer adds the Authorization header, reading the token file each time.
type bearer struct {
	token, file string
	next        http.RoundTripper
}

func (b *bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	tok := b.token
	if b.file != "" {
		raw, err := os.ReadFile(b.file)
		if err != nil {
			return nil, fmt.Errorf("read bearer token file: %w", err)
		}
		tok = strings.TrimSpace(string(raw))
	}
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tok)
	return b.next.RoundTrip(r)
}

// Instant implements Querier.
func (r *Remote) Instant(ctx context.Context, expr string, t time.Time) ([]Series, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	v, _, _, err := r.api.Query(ctx, expr, t, v1.WithTimeout(r.timeout))
	if err != nil {
		return nil, fmt.Errorf("Prometheus at %s: %w", r.url, err)
	}
	switch v := v.(type) {
	case model.Vector:
		out := make([]Series, 0, len(v))
		for _, s := range v {
			if s.Histogram != nil {
				return nil, fmt.Errorf("Prometheus at %s: %q returned a native histogram; assertions compare numbers", r.url, expr)
			}
			out = append(out, Series{Labels: labelMap(s.Metric), Value: float64(s.Value)})
		}
		return out, nil
	case *model.Scalar:
		return []Series{{Labels: map[string]string{}, Value: float64(v.Value)}}, nil
	default:
		return nil, fmt.Errorf("Prometheus at %s: %q returned a %s; assertions need an instant vector or a scalar", r.url, expr, v.Type())
	}
}

// Range implements Querier.
func (r *Remote) Range(ctx context.Context, expr string, start, end time.Time, step time.Duration) ([]RangeSeries, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	v, _, _, err := r.api.QueryRange(ctx, expr, v1.Range{Start: start, End: end, Step: step}, v1.WithTimeout(r.timeout))
	if err != nil {
		return nil, fmt.Errorf("Prometheus at %s: %w", r.url, err)
	}
	m, ok := v.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("Prometheus at %s: range query %q returned a %s", r.url, expr, v.Type())
	}
	out := make([]RangeSeries, 0, len(m))
	for _, s := range m {
		rs := RangeSeries{Labels: labelMap(s.Metric)}
		for _, p := range s.Values {
			rs.Points = append(rs.Points, Point{T: p.Timestamp.Time(), V: float64(p.Value)})
		}
		out = append(out, rs)
	}
	return out, nil
}

func labelMap(m model.Metric) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[string(k)] = string(v)
	}
	return out
}

var _ Querier = (*Remote)(nil)
