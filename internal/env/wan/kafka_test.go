package wan

import (
	"context"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/embedded"
)

// TestKafkaThroughWAN wires the real pieces the local backend uses: a source
// cluster whose brokers advertise the link's fronts. A client bootstrapping
// from Bootstrap() crosses the WAN; one dialling with DirectDial does not.
func TestKafkaThroughWAN(t *testing.T) {
	reg := prometheus.NewRegistry()
	l := newLink(t, reg)
	src, err := embedded.Start(context.Background(), embedded.Options{
		Name: "source", DataDir: t.TempDir(), Front: l.Front,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = src.Close() })
	if err := src.CreateTopic(context.Background(), "w", 3); err != nil {
		t.Fatal(err)
	}

	newWriter := func(dial func(context.Context, string, string) (net.Conn, error)) *kafka.Writer {
		tr := &kafka.Transport{Dial: dial, MetadataTTL: 200 * time.Millisecond}
		w := &kafka.Writer{
			Addr: kafka.TCP(src.Brokers()...), Topic: "w", Transport: tr,
			RequiredAcks: kafka.RequireAll, BatchTimeout: 5 * time.Millisecond,
			Balancer: &kafka.RoundRobin{}, MaxAttempts: 50,
		}
		t.Cleanup(func() { _ = w.Close(); tr.CloseIdleConnections() })
		return w
	}
	viaWAN := newWriter(nil) // default dialer: the advertised fronts
	direct := newWriter(src.DirectDial)
	write := func(w *kafka.Writer, timeout time.Duration, i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return w.WriteMessages(ctx, kafka.Message{Value: []byte(strconv.Itoa(i))})
	}
	toSource := func() float64 { return testutil.ToFloat64(l.bytes.WithLabelValues(DirToSource)) }

	if err := write(viaWAN, 10*time.Second, 0); err != nil {
		t.Fatalf("produce through the WAN: %v", err)
	}
	afterWAN := toSource()
	if afterWAN == 0 {
		t.Fatal("a client bootstrapping from Bootstrap() sent no bytes through the WAN")
	}
	if err := write(direct, 10*time.Second, 1); err != nil {
		t.Fatalf("direct produce: %v", err)
	}
	if got := toSource(); got != afterWAN {
		t.Fatalf("a DirectDial client moved the WAN counter from %v to %v", afterWAN, got)
	}

	l.SetPartition(true)
	blocked := make(chan error, 1)
	go func() { blocked <- write(viaWAN, 20*time.Second, 2) }()
	if err := write(direct, 10*time.Second, 3); err != nil {
		t.Fatalf("direct produce during a WAN partition: %v", err)
	}
	select {
	case err := <-blocked:
		t.Fatalf("produce through a partitioned WAN finished (err=%v)", err)
	case <-time.After(time.Second):
	}
	l.Heal()
	if err := <-blocked; err != nil {
		t.Fatalf("produce through the WAN after heal: %v", err)
	}

	// Everything acked is in the log.
	var total int64
	for p := 0; p < 3; p++ {
		conn, err := (&kafka.Dialer{DialFunc: src.DirectDial}).DialLeader(context.Background(), "tcp", src.Brokers()[0], "w", p)
		if err != nil {
			t.Fatal(err)
		}
		last, err := conn.ReadLastOffset()
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		total += last
	}
	if total != 4 {
		t.Fatalf("source holds %d records, want the 4 acknowledged", total)
	}
}

// BenchmarkThroughput moves 4 MiB per iteration to a sink directly and
// through an unshaped proxy; the proxy/direct ratio is reported as a metric.
func BenchmarkThroughput(b *testing.B) {
	const size = 4 << 20
	sink := newServer(b, false)
	l := newLink(b, nil)
	front, err := l.Front(sink.addr())
	if err != nil {
		b.Fatal(err)
	}
	send := func(addr string) time.Duration {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		sink.mu.Lock()
		want := sink.got + size
		sink.mu.Unlock()
		start := time.Now()
		if _, err := io.CopyN(c, zeros{}, size); err != nil {
			b.Fatal(err)
		}
		for {
			sink.mu.Lock()
			got := sink.got
			sink.mu.Unlock()
			if got >= want {
				return time.Since(start)
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	var direct, proxied time.Duration
	b.SetBytes(2 * size)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		direct += send(sink.addr())
		proxied += send(front)
	}
	b.ReportMetric(float64(size)*float64(b.N)/direct.Seconds()/1e6, "direct_MB/s")
	b.ReportMetric(float64(size)*float64(b.N)/proxied.Seconds()/1e6, "proxy_MB/s")
	b.ReportMetric(direct.Seconds()/proxied.Seconds(), "proxy/direct")
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }
