package embedded

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func startCluster(t *testing.T, o Options) *Cluster {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.Name == "" {
		o.Name = "test"
	}
	c, err := Start(context.Background(), o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// writer is a kafka-go producer with acks=all dialling through DirectDial.
func writer(c *Cluster, topic string) (*kafka.Writer, func()) {
	tr := &kafka.Transport{Dial: c.DirectDial, MetadataTTL: 200 * time.Millisecond}
	w := &kafka.Writer{
		Addr:         kafka.TCP(c.Brokers()...),
		Topic:        topic,
		Transport:    tr,
		RequiredAcks: kafka.RequireAll,
		Balancer:     &kafka.RoundRobin{},
		BatchTimeout: 5 * time.Millisecond,
		MaxAttempts:  20,
		BatchSize:    10,
	}
	return w, func() { _ = w.Close(); tr.CloseIdleConnections() }
}

func produce(t *testing.T, c *Cluster, topic string, from, to int) {
	t.Helper()
	w, done := writer(c, topic)
	defer done()
	var msgs []kafka.Message
	for i := from; i < to; i++ {
		msgs = append(msgs, kafka.Message{Value: []byte(strconv.Itoa(i))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce %d..%d to %s: %v", from, to, topic, err)
	}
}

// consumeAll reads every partition of topic from its first offset until
// want values arrived, with one kafka-go Reader per partition.
func consumeAll(t *testing.T, c *Cluster, topic string, want int) []int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var (
		mu  sync.Mutex
		got []int
		wg  sync.WaitGroup
	)
	parts := c.Partitions(topic)
	for p := 0; p < parts; p++ {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:     c.Brokers(),
			Topic:       topic,
			Partition:   p,
			Dialer:      &kafka.Dialer{DialFunc: c.DirectDial, Timeout: 5 * time.Second},
			MinBytes:    1,
			MaxBytes:    1 << 20,
			MaxWait:     100 * time.Millisecond,
			StartOffset: kafka.FirstOffset,
		})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				mu.Lock()
				enough := len(got) >= want
				mu.Unlock()
				if enough {
					return
				}
				rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
				m, err := r.ReadMessage(rctx)
				rcancel()
				if ctx.Err() != nil {
					return
				}
				if err != nil {
					continue
				}
				v, _ := strconv.Atoi(string(m.Value))
				mu.Lock()
				got = append(got, v)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Ints(got)
	return got
}

func wantRange(t *testing.T, got []int, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("consumed %d values, want %d: %v", len(got), n, got)
	}
	for i, v := range got {
		if v != i {
			t.Fatalf("value %d is %d, want %d (lost or duplicated data)", i, v, i)
		}
	}
}

func refused(addr string) bool {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return true
	}
	_ = conn.Close()
	return false
}

func TestStartAndMetadata(t *testing.T) {
	for _, tc := range []struct{ brokers, want int }{{0, 3}, {1, 1}, {4, 4}} {
		t.Run(fmt.Sprint(tc.brokers), func(t *testing.T) {
			c := startCluster(t, Options{Brokers: tc.brokers})
			if got := len(c.Nodes()); got != tc.want {
				t.Fatalf("Nodes()=%v, want %d nodes", c.Nodes(), tc.want)
			}
			conn, err := (&kafka.Dialer{DialFunc: c.DirectDial}).DialContext(context.Background(), "tcp", c.Brokers()[0])
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			bs, err := conn.Brokers()
			if err != nil {
				t.Fatal(err)
			}
			if len(bs) != tc.want {
				t.Fatalf("metadata lists %d brokers, want %d", len(bs), tc.want)
			}
		})
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"no data dir", Options{Name: "x"}},
		{"negative brokers", Options{Name: "x", Brokers: -1, DataDir: t.TempDir()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if c, err := Start(context.Background(), tc.o); err == nil {
				_ = c.Close()
				t.Fatal("Start succeeded, want an error")
			}
		})
	}
}

func TestKillAndRestoreKeepsProducing(t *testing.T) {
	c := startCluster(t, Options{})
	ctx := context.Background()
	if err := c.CreateTopic(ctx, "t", 3); err != nil {
		t.Fatal(err)
	}
	produce(t, c, "t", 0, 30)

	victim := c.LeaderNodes("t", 1)
	if len(victim) != 1 {
		t.Fatalf("LeaderNodes(t,1)=%v, want one node", victim)
	}
	realAddr := c.realAddrs()[victim[0]]
	if err := c.KillBrokers(victim); err != nil {
		t.Fatal(err)
	}
	if !refused(realAddr) {
		t.Fatalf("killed broker %d still accepts connections on %s", victim[0], realAddr)
	}
	if slices.Contains(c.AliveNodes(), victim[0]) {
		t.Fatalf("AliveNodes()=%v still lists killed %d", c.AliveNodes(), victim[0])
	}
	if l := c.LeaderNodes("t", 3); slices.Contains(l, victim[0]) {
		t.Fatalf("leaders %v still include killed broker %d", l, victim[0])
	}
	produce(t, c, "t", 30, 60)

	if err := c.RestoreBrokers(victim); err != nil {
		t.Fatal(err)
	}
	if got := c.realAddrs()[victim[0]]; got != realAddr {
		t.Fatalf("restored broker on %s, want the same address %s", got, realAddr)
	}
	if refused(realAddr) {
		t.Fatalf("restored broker does not accept on %s", realAddr)
	}
	produce(t, c, "t", 60, 90)
	wantRange(t, consumeAll(t, c, "t", 90), 90)
}

func TestKillErrors(t *testing.T) {
	c := startCluster(t, Options{Brokers: 2})
	for _, tc := range []struct {
		name string
		ids  []int32
	}{
		{"unknown node", []int32{7}},
		{"every node", []int32{0, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := c.KillBrokers(tc.ids); err == nil {
				t.Fatalf("KillBrokers(%v) succeeded, want an error", tc.ids)
			}
		})
	}
	if got := c.AliveNodes(); len(got) != 2 {
		t.Fatalf("a refused kill changed the cluster: alive %v", got)
	}
}

func TestPauseBlocksProduceUntilResume(t *testing.T) {
	c := startCluster(t, Options{})
	ctx := context.Background()
	if err := c.CreateTopic(ctx, "p", 1); err != nil {
		t.Fatal(err)
	}
	w, done := writer(c, "p")
	defer done()
	if err := w.WriteMessages(ctx, kafka.Message{Value: []byte("0")}); err != nil {
		t.Fatal(err)
	}
	if err := c.PauseBrokers(c.Nodes()); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- w.WriteMessages(ctx, kafka.Message{Value: []byte("1")}) }()
	select {
	case err := <-errc:
		t.Fatalf("produce finished while every broker was paused (err=%v)", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := c.ResumeBrokers(c.Nodes()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("produce after resume: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("produce still blocked 15s after resume")
	}
	wantRange(t, consumeAll(t, c, "p", 2), 2)
}

func TestRestartKeepsDataAndPorts(t *testing.T) {
	c := startCluster(t, Options{})
	ctx := context.Background()
	if err := c.CreateTopic(ctx, "r", 2); err != nil {
		t.Fatal(err)
	}
	produce(t, c, "r", 0, 50)
	before := c.Brokers()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, a := range before {
		if !refused(a) {
			t.Fatalf("stopped cluster still accepts on %s", a)
		}
	}
	if err := c.CreateTopic(ctx, "x", 1); err == nil {
		t.Fatal("CreateTopic on a stopped cluster succeeded")
	}
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if after := c.Brokers(); !slices.Equal(before, after) {
		t.Fatalf("brokers after restart %v, want the same %v", after, before)
	}
	produce(t, c, "r", 50, 60)
	wantRange(t, consumeAll(t, c, "r", 60), 60)
}

func TestAddPartitions(t *testing.T) {
	c := startCluster(t, Options{})
	ctx := context.Background()
	if err := c.CreateTopic(ctx, "a", 2); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		before  func() error
		total   int
		wantErr bool
		want    int
	}{
		{"grow", nil, 5, false, 5},
		{"shrink refused", nil, 3, true, 5},
		// kfake's controller is fixed: after it was killed, a clear error.
		{"controller killed", func() error {
			if err := c.KillBrokers([]int32{2}); err != nil {
				return err
			}
			return c.RestoreBrokers([]int32{2})
		}, 6, true, 5},
		{"after restart", func() error {
			if err := c.Stop(); err != nil {
				return err
			}
			return c.Restart(ctx)
		}, 6, false, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				if err := tc.before(); err != nil {
					t.Fatal(err)
				}
			}
			err := c.AddPartitions(ctx, "a", tc.total)
			if (err != nil) != tc.wantErr {
				t.Fatalf("AddPartitions(%d) err=%v, wantErr=%v", tc.total, err, tc.wantErr)
			}
			conn, err := (&kafka.Dialer{DialFunc: c.DirectDial}).DialContext(ctx, "tcp", c.Brokers()[0])
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ps, err := conn.ReadPartitions("a")
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != tc.want {
				t.Fatalf("metadata shows %d partitions, want %d", len(ps), tc.want)
			}
		})
	}
}

func TestPurgeMovesLogStart(t *testing.T) {
	c := startCluster(t, Options{})
	ctx := context.Background()
	if err := c.CreateTopic(ctx, "g", 2); err != nil {
		t.Fatal(err)
	}
	produce(t, c, "g", 0, 20)
	got, err := c.Purge(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for p := 0; p < 2; p++ {
		info := c.kc.PartitionInfo("g", int32(p))
		if got[p] != info.HighWatermark {
			t.Fatalf("partition %d log start %d, want the high watermark %d", p, got[p], info.HighWatermark)
		}
		sum += got[p]
	}
	if sum != 20 {
		t.Fatalf("log starts %v sum to %d, want the 20 produced records", got, sum)
	}
	if _, err := c.Purge(ctx, "missing"); err == nil {
		t.Fatal("Purge of a missing topic succeeded")
	}
}

// forwarder is a plain TCP relay standing in for the WAN in this package's
// tests (the wan package tests the real one against this cluster).
type forwarder struct {
	mu  sync.Mutex
	lns map[string]net.Listener
	wg  sync.WaitGroup
}

func (f *forwarder) front(realAddr string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ln, ok := f.lns[realAddr]; ok {
		return ln.Addr().String(), nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	f.lns[realAddr] = ln
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			a, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", realAddr)
			if err != nil {
				a.Close()
				continue
			}
			f.wg.Add(2)
			go func() { defer f.wg.Done(); io.Copy(a, b); a.Close(); b.Close() }()
			go func() { defer f.wg.Done(); io.Copy(b, a); a.Close(); b.Close() }()
		}
	}()
	return ln.Addr().String(), nil
}

func TestFrontIsAdvertised(t *testing.T) {
	f := &forwarder{lns: map[string]net.Listener{}}
	c := startCluster(t, Options{Front: f.front})
	t.Cleanup(func() {
		_ = c.Close()
		f.mu.Lock()
		for _, ln := range f.lns {
			ln.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	fronts := map[string]bool{}
	for real, ln := range f.lns {
		fronts[ln.Addr().String()] = true
		if slices.Contains(c.Brokers(), real) {
			t.Fatalf("Brokers() %v lists the real address %s, want fronts only", c.Brokers(), real)
		}
	}
	for _, b := range c.Brokers() {
		if !fronts[b] {
			t.Fatalf("Brokers() %v: %s is not a front address", c.Brokers(), b)
		}
	}
	// A plain client bootstrapping from the front sees fronts in metadata.
	conn, err := kafka.DialContext(context.Background(), "tcp", c.Brokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	bs, err := conn.Brokers()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		addr := net.JoinHostPort(b.Host, strconv.Itoa(b.Port))
		if !fronts[addr] {
			t.Fatalf("metadata advertises %s, want one of the fronts %v", addr, c.Brokers())
		}
	}
	// Restart asks Front again with the same real address; the forwarder
	// returns the same front, so the advertised addresses do not change.
	before := c.Brokers()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := c.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(before, c.Brokers()) {
		t.Fatalf("advertised after restart %v, want %v", c.Brokers(), before)
	}
	if err := c.CreateTopic(context.Background(), "f", 1); err != nil {
		t.Fatal(err)
	}
	produce(t, c, "f", 0, 5)
	wantRange(t, consumeAll(t, c, "f", 5), 5)
}

func TestDirectDial(t *testing.T) {
	c2 := startCluster(t, Options{Brokers: 1, Front: func(real string) (string, error) { return "127.0.0.2:9", nil }})
	for _, tc := range []struct {
		name    string
		addr    string
		wantErr bool
	}{
		{"front maps to real", "127.0.0.2:9", false},
		{"real address dialled as is", c2.realAddrs()[0], false},
		{"non-loopback refused", "10.1.2.3:9092", true},
		{"garbage refused", "nonsense", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			conn, err := c2.DirectDial(ctx, "tcp", tc.addr)
			if (err != nil) != tc.wantErr {
				t.Fatalf("DirectDial(%s) err=%v, wantErr=%v", tc.addr, err, tc.wantErr)
			}
			if conn != nil {
				if got := conn.RemoteAddr().String(); got != c2.realAddrs()[0] {
					t.Fatalf("dialled %s, want the real listener %s", got, c2.realAddrs()[0])
				}
				conn.Close()
			}
		})
	}
}

func TestCloseLeavesNothing(t *testing.T) {
	baseline := runtime.NumGoroutine()
	c, err := Start(context.Background(), Options{Name: "close", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTopic(context.Background(), "c", 3); err != nil {
		t.Fatal(err)
	}
	produce(t, c, "c", 0, 10)
	if err := c.PauseBrokers([]int32{0}); err != nil {
		t.Fatal(err)
	}
	held, err := c.DirectDial(context.Background(), "tcp", c.Brokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addrs := c.realAddrs()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if !refused(a) {
			t.Fatalf("%s still accepts after Close", a)
		}
	}
	// The connection a paused broker held must be closed, not left hanging.
	_ = held.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := held.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("connection to a closed cluster: read err=%v, want EOF/reset", err)
	}
	held.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseline+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after Close, baseline %d:\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
	}
	if err := c.Restart(context.Background()); err == nil {
		t.Fatal("Restart after Close succeeded")
	}
}
