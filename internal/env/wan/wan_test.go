package wan

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// server is an upstream on loopback: echo (write back what it reads) or sink
// (count what it reads).
type server struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	got  int64
	errs []error
	cs   []net.Conn
}

func newServer(t testing.TB, echo bool) *server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{ln: ln}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.cs = append(s.cs, c)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				var err error
				if echo {
					_, err = io.Copy(c, c)
				} else {
					_, err = io.Copy(counter{s}, c)
				}
				if err != nil {
					s.mu.Lock()
					s.errs = append(s.errs, err)
					s.mu.Unlock()
				}
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

// counter adds what the sink reads to got as it arrives.
type counter struct{ s *server }

func (w counter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	w.s.got += int64(len(p))
	w.s.mu.Unlock()
	return len(p), nil
}

func (s *server) close() {
	s.ln.Close()
	s.mu.Lock()
	for _, c := range s.cs {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *server) addr() string { return s.ln.Addr().String() }

func newLink(t testing.TB, reg prometheus.Registerer) *Link {
	t.Helper()
	l := NewLink(nil, reg)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func dialFront(t testing.TB, l *Link, upstream string) net.Conn {
	t.Helper()
	front, err := l.Front(upstream)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", front)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends msg and waits for its echo; it returns the elapsed time.
func roundTrip(t testing.TB, c net.Conn, msg []byte) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("echo read: %v", err)
	}
	_ = c.SetReadDeadline(time.Time{})
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo returned %q, want %q", got, msg)
	}
	return time.Since(start)
}

func median(ds []time.Duration) time.Duration {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[len(ds)/2]
}

func TestFront(t *testing.T) {
	up1, up2 := newServer(t, true), newServer(t, true)
	l := newLink(t, nil)
	f1, err := l.Front(up1.addr())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		real     string
		wantErr  bool
		wantSame bool
	}{
		{"same upstream, same front", up1.addr(), false, true},
		{"other upstream, other front", up2.addr(), false, false},
		{"non-loopback refused", "10.0.0.1:9092", true, false},
		{"garbage refused", "nonsense", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := l.Front(tc.real)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Front(%s) err=%v, wantErr=%v", tc.real, err, tc.wantErr)
			}
			if err == nil && (f == f1) != tc.wantSame {
				t.Fatalf("Front(%s)=%s, first front %s, wantSame=%v", tc.real, f, f1, tc.wantSame)
			}
		})
	}
	_ = l.Close()
	if _, err := l.Front(up1.addr()); err == nil {
		t.Fatal("Front on a closed link succeeded")
	}
}

func TestLatency(t *testing.T) {
	up := newServer(t, true)
	for _, tc := range []struct {
		name           string
		oneWay, jitter time.Duration
		// minRTT is a floor the shaping guarantees (a busy machine only
		// adds time, never removes it); there is no ceiling here: how
		// close to D the link stays is measured in the e2e tests and
		// benchmarks, not asserted on a shared machine.
		minRTT time.Duration
	}{
		{"none", 0, 0, 0},
		{"60ms", 60 * time.Millisecond, 0, 120 * time.Millisecond},
		{"60ms jitter 20ms", 60 * time.Millisecond, 20 * time.Millisecond, 80 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLink(t, nil)
			l.SetLatency(tc.oneWay, tc.jitter)
			c := dialFront(t, l, up.addr())
			var rtts []time.Duration
			for i := 0; i < 5; i++ {
				rtts = append(rtts, roundTrip(t, c, []byte("ping")))
			}
			m := median(rtts)
			t.Logf("one-way %v jitter %v: median echo RTT %v (%v)", tc.oneWay, tc.jitter, m, rtts)
			if m < tc.minRTT {
				t.Fatalf("median RTT %v below the %v the shaping must add", m, tc.minRTT)
			}
		})
	}
}

func TestBandwidthCap(t *testing.T) {
	sink := newServer(t, false)
	l := newLink(t, nil)
	const capBps = 512 << 10
	l.SetBandwidth(capBps)
	c := dialFront(t, l, sink.addr())
	const total = 384 << 10
	start := time.Now()
	if _, err := c.Write(make([]byte, total)); err != nil {
		t.Fatal(err)
	}
	for {
		sink.mu.Lock()
		got := sink.got
		sink.mu.Unlock()
		if got >= total {
			break
		}
		if time.Since(start) > 20*time.Second {
			t.Fatalf("only %d of %d bytes arrived in 20s", got, total)
		}
		time.Sleep(5 * time.Millisecond)
	}
	bps := float64(total) / time.Since(start).Seconds()
	t.Logf("cap %d B/s: measured %.0f B/s", capBps, bps)
	// A ceiling only (a busy machine can be slower than the cap, never
	// faster): 1.3x leaves room for the token bucket's burst.
	if bps > capBps*1.3 {
		t.Fatalf("throughput %.0f B/s above the %d B/s cap", bps, capBps)
	}
	// Lifting the cap: the same transfer still arrives (its speed is a
	// benchmark's business).
	l.SetBandwidth(0)
	start = time.Now()
	sendToSink(t, c, sink, total)
	t.Logf("uncapped: %d bytes in %v", total, time.Since(start))
}

// sendToSink writes n bytes and waits until the sink has them all.
func sendToSink(t *testing.T, c net.Conn, sink *server, n int64) {
	t.Helper()
	sink.mu.Lock()
	want := sink.got + n
	sink.mu.Unlock()
	if _, err := c.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		sink.mu.Lock()
		got := sink.got
		sink.mu.Unlock()
		if got >= want {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("sink did not receive the bytes")
}

func TestPartitionHoldsThenDelivers(t *testing.T) {
	up := newServer(t, true)
	l := newLink(t, nil)
	old := dialFront(t, l, up.addr())
	roundTrip(t, old, []byte("before"))

	l.SetPartition(true)
	// A connection opened during the partition is accepted...
	fresh := dialFront(t, l, up.addr())
	for _, c := range []net.Conn{old, fresh} {
		if _, err := c.Write([]byte("held")); err != nil {
			t.Fatal(err)
		}
		// ...but nothing flows on it or the old one.
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, err := c.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read during partition: n=%d err=%v, want a timeout", n, err)
		}
	}
	// Backpressure: the proxy stops reading, so a large write cannot
	// complete (it would if the proxy buffered without limit).
	_ = old.SetWriteDeadline(time.Now().Add(time.Second))
	n, err := old.Write(make([]byte, 64<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("64 MiB write during partition: n=%d err=%v, want it to block", n, err)
	}
	t.Logf("bytes accepted during partition before backpressure: %d", n)
	_ = old.SetWriteDeadline(time.Time{})

	l.Heal()
	_ = fresh.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, 4)
	if _, err := io.ReadFull(fresh, got); err != nil || string(got) != "held" {
		t.Fatalf("after heal: got %q err=%v, want the held bytes", got, err)
	}
	_ = old.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(old, got); err != nil || string(got) != "held" {
		t.Fatalf("after heal on the old connection: got %q err=%v", got, err)
	}
	// The partially written big block comes back too (echo), in order.
	if _, err := io.CopyN(io.Discard, old, int64(n)); err != nil {
		t.Fatalf("reading back the %d bytes written during the partition: %v", n, err)
	}
}

func TestResetConnections(t *testing.T) {
	up := newServer(t, true)
	l := newLink(t, nil)
	c1, c2 := dialFront(t, l, up.addr()), dialFront(t, l, up.addr())
	roundTrip(t, c1, []byte("a"))
	roundTrip(t, c2, []byte("b"))
	if n := l.ResetConnections(); n != 2 {
		t.Fatalf("ResetConnections()=%d, want 2", n)
	}
	for _, c := range []net.Conn{c1, c2} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.Read(make([]byte, 1))
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read after reset: %v, want ECONNRESET", err)
		}
	}
	if n := l.ResetConnections(); n != 0 {
		t.Fatalf("second ResetConnections()=%d, want 0", n)
	}
	// New connections work after a reset.
	roundTrip(t, dialFront(t, l, up.addr()), []byte("c"))
}

func TestStall(t *testing.T) {
	up := newServer(t, true)
	const stall, trips = 50 * time.Millisecond, 20
	for _, tc := range []struct {
		name             string
		pct              float64
		minSlow, maxSlow int
	}{
		{"never", 0, 0, 0},
		{"always", 100, trips, trips},
		// A round trip stalls when either direction does: p = 1-0.7^2 = 0.51,
		// so all or none of 20 stalling has a probability near 1e-6.
		{"some", 30, 1, trips - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLink(t, nil)
			l.SetStall(tc.pct, stall)
			c := dialFront(t, l, up.addr())
			slow := 0
			for i := 0; i < trips; i++ {
				if roundTrip(t, c, []byte("x")) >= stall {
					slow++
				}
			}
			t.Logf("stall %v%%: %d of %d round trips stalled", tc.pct, slow, trips)
			if slow < tc.minSlow || slow > tc.maxSlow {
				t.Fatalf("%d slow round trips, want %d..%d", slow, tc.minSlow, tc.maxSlow)
			}
		})
	}
}

func TestBytesMetric(t *testing.T) {
	reg := prometheus.NewRegistry()
	up := newServer(t, true)
	l := newLink(t, reg)
	// A second link on the same registry shares the counter instead of
	// failing to register.
	l2 := newLink(t, reg)
	roundTrip(t, dialFront(t, l, up.addr()), make([]byte, 1000))
	roundTrip(t, dialFront(t, l2, up.addr()), make([]byte, 500))
	// The proxy counts a chunk after its write returns, which can be just
	// after the client already read the echo: wait briefly for the count.
	for _, dir := range []string{DirToSource, DirFromSource} {
		deadline := time.Now().Add(2 * time.Second)
		for {
			got := testutil.ToFloat64(l.bytes.WithLabelValues(dir))
			if got == 1500 {
				break
			}
			if got > 1500 || time.Now().After(deadline) {
				t.Fatalf("%s bytes = %v, want 1500", dir, got)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "kmt_wan_bytes_total"); err != nil || n != 2 {
		t.Fatalf("registry has %d kmt_wan_bytes_total series (err %v), want 2", n, err)
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	up := newServer(t, true)
	baseline := runtime.NumGoroutine()
	l := NewLink(nil, nil)
	l.SetLatency(10*time.Millisecond, 0)
	l.SetBandwidth(1 << 20)
	var fronts []string
	var conns []net.Conn
	for i := 0; i < 3; i++ {
		f, err := l.Front(up.addr())
		if err != nil {
			t.Fatal(err)
		}
		fronts = append(fronts, f)
		c, err := net.Dial("tcp", f)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
		roundTrip(t, c, []byte("x"))
	}
	l.SetPartition(true) // a connection waiting for heal must not block Close
	held, err := net.Dial("tcp", fronts[0])
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	conns = append(conns, held)

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range fronts {
		if c, err := net.DialTimeout("tcp", f, time.Second); err == nil {
			c.Close()
			t.Fatalf("front %s still accepts after Close", f)
		}
	}
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("proxied connection after Close: err=%v, want closed", err)
		}
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after Close, baseline %d:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
	}
}
