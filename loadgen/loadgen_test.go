package loadgen

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	bootlist "github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/intervals"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newCluster(t testing.TB, brokers int, topics ...string) (*kfake.Cluster, string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(brokers), kfake.SeedTopics(6, topics...))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c, strings.Join(c.ListenAddrs(), ",")
}

// logRecord is one record read back from the source log.
type logRecord struct {
	partition int32
	offset    int64
	key       string
	rec       wire.Record
	size      int
	header    []byte // the wire.HeaderKey header, nil if absent
}

// readAll consumes topic from the start until want records arrived.
func readAll(t *testing.T, bootstrap, topic string, want int) []logRecord {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []logRecord
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %s before timeout", len(out), want, topic)
		}
		fs.EachRecord(func(r *kgo.Record) {
			rec, err := wire.Decode(r.Value)
			if err != nil {
				t.Errorf("record at %s[%d]@%d does not decode: %v", topic, r.Partition, r.Offset, err)
				return
			}
			lr := logRecord{partition: r.Partition, offset: r.Offset, key: string(r.Key), rec: rec, size: len(r.Value)}
			for _, h := range r.Headers {
				if h.Key == wire.HeaderKey {
					lr.header = h.Value
				}
			}
			if !wire.HeaderMatches(lr.header, r.Value) {
				t.Errorf("record at %s[%d]@%d: header %q does not match its value", topic, r.Partition, r.Offset, lr.header)
			}
			out = append(out, lr)
		})
	}
	return out
}

func TestCountRunAcksExactlyCountWithContiguousStreams(t *testing.T) {
	cases := []struct {
		name    string
		topics  []string
		streams int
		count   int64
		rate    float64
		size    int
	}{
		{"one topic unlimited rate", []string{"orders"}, 4, 600, 0, 200},
		{"two topics paced", []string{"orders", "payments"}, 5, 1000, 4000, 100},
		{"header-only records", []string{"orders"}, 3, 90, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, bs := newCluster(t, 1, tc.topics...)
			led := ledger.New()
			reg := prometheus.NewRegistry()
			var dials atomic.Int64
			var progress atomic.Int64
			st, err := Run(context.Background(), Config{
				Bootstrap: bs, Topics: tc.topics, RunID: "run-1", Rate: tc.rate, MessageSize: tc.size,
				Streams: tc.streams, Count: tc.count, Ledger: led, Registerer: reg, Logger: quiet(),
				Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
					dials.Add(1)
					var d net.Dialer
					return d.DialContext(ctx, network, addr)
				},
				Progress: func(Stats) { progress.Add(1) },
			})
			if err != nil {
				t.Fatal(err)
			}
			if st.Sent != uint64(tc.count) || st.Acked != uint64(tc.count) || st.Failed != 0 {
				t.Fatalf("stats %+v, want sent=acked=%d failed=0", st, tc.count)
			}
			if !led.Done() {
				t.Error("ledger not marked done")
			}
			if dials.Load() == 0 {
				t.Error("Config.Dial was never used")
			}
			if progress.Load() == 0 {
				t.Error("Progress never called (it must be called at least at the end)")
			}
			perStream := uint64(tc.count) / uint64(len(tc.topics)*tc.streams)
			nstreams := 0
			led.View(func(k ledger.StreamKey, s *ledger.Stream) {
				nstreams++
				want := []intervals.Range{{Lo: 0, Hi: perStream - 1}}
				if got := s.Acked.Ranges(); len(got) != 1 || got[0] != want[0] {
					t.Errorf("%v acked %v, want %v", k, s.Acked.String(), want)
				}
				if !s.Failed.Empty() {
					t.Errorf("%v failed %v, want none", k, s.Failed.String())
				}
			})
			if nstreams != len(tc.topics)*tc.streams {
				t.Errorf("ledger has %d streams, want %d", nstreams, len(tc.topics)*tc.streams)
			}
			for _, topic := range tc.topics {
				if got := testutil.ToFloat64(mustVec(t, reg, metrics.LoadgenAcked, topic)); got != float64(tc.count)/float64(len(tc.topics)) {
					t.Errorf("%s{topic=%s} = %v", metrics.LoadgenAcked, topic, got)
				}
				checkLog(t, bs, topic, int(tc.count)/len(tc.topics), tc.size)
			}
		})
	}
}

// mustVec finds one counter series by name and topic in reg.
func mustVec(t *testing.T, reg *prometheus.Registry, name, topic string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == metrics.LabelTopic && l.GetValue() == topic {
					return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return m.GetCounter().GetValue() })
				}
			}
		}
	}
	t.Fatalf("no series %s{topic=%q}", name, topic)
	return nil
}

// checkLog reads the source log back: every record decodes, has its
// stream's key, the configured size, one partition per key and increasing
// sequences per key.
func checkLog(t *testing.T, bs, topic string, want, size int) {
	t.Helper()
	recs := readAll(t, bs, topic, want)
	if len(recs) != want {
		t.Errorf("%s has %d records, want %d", topic, len(recs), want)
	}
	part := map[string]int32{}
	last := map[string]int64{}
	for _, r := range recs {
		if r.key != string(wire.Key(r.rec.Stream)) {
			t.Errorf("record s=%d has key %q", r.rec.Stream, r.key)
		}
		if p, ok := part[r.key]; ok && p != r.partition {
			t.Errorf("key %s on partitions %d and %d", r.key, p, r.partition)
		}
		part[r.key] = r.partition
		if l, ok := last[r.key]; ok && int64(r.rec.Seq) != l+1 {
			t.Errorf("key %s: seq %d after %d at offset %d", r.key, r.rec.Seq, l, r.offset)
		}
		last[r.key] = int64(r.rec.Seq)
		if hs := wire.HeaderSize(r.rec); r.size != max(size, hs) && r.size != size-1 {
			t.Errorf("record size %d, want %d (header %d)", r.size, size, hs)
		}
	}
}

// TestProduceFaultsExactOutcomes: the broker answers some produce requests
// with an error. Retriable errors are retried idempotently: every record
// ends acked and the source log holds each sequence exactly once, even when
// the broker had appended the batch before answering with the error (a
// non-idempotent retry would write it twice: the duplicate the validator
// would blame on the mirror). A non-retriable error fails records: they are
// recorded failed, never acked, and (rejected before append) not in the log.
func TestProduceFaultsExactOutcomes(t *testing.T) {
	cases := []struct {
		name       string
		err        *kerr.Error
		wantFailed bool
	}{
		{"retriable, rejected before append", kerr.NotLeaderForPartition, false},
		{"retriable, answered after append", kerr.NotEnoughReplicasAfterAppend, false},
		{"retriable timeout after append", kerr.RequestTimedOut, false},
		{"not retriable", kerr.InvalidRecord, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, bs := newCluster(t, 1, "orders")
			const faults = 8
			h := c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Topic: "orders", Err: tc.err, Count: faults})
			led := ledger.New()
			const count = 400
			st, err := Run(context.Background(), Config{
				Bootstrap: bs, Topics: []string{"orders"}, RunID: "r", Rate: 2000, MessageSize: 64,
				Streams: 4, Count: count, Ledger: led, Logger: quiet(),
			})
			if err != nil {
				t.Fatal(err)
			}
			if h.Hits() != faults {
				t.Fatalf("fault answered %d produce requests, want %d", h.Hits(), faults)
			}
			acked, failed := led.Totals()
			if failed != st.Failed || acked != st.Acked || acked+failed != count || (failed > 0) != tc.wantFailed {
				t.Fatalf("stats %+v, ledger acked=%d failed=%d; want acked+failed=%d and failures=%v", st, acked, failed, count, tc.wantFailed)
			}
			recs := readAll(t, bs, "orders", int(acked))
			inLog := map[ledger.StreamKey]*intervals.Set{}
			for _, r := range recs {
				k := ledger.StreamKey{Topic: "orders", Stream: r.rec.Stream, Epoch: r.rec.Epoch}
				if inLog[k] == nil {
					inLog[k] = &intervals.Set{}
				}
				if inLog[k].Contains(r.rec.Seq) {
					t.Errorf("%v seq %d is twice in the source log", k, r.rec.Seq)
				}
				inLog[k].Add(r.rec.Seq)
			}
			if len(recs) != int(acked) {
				t.Errorf("the source log holds %d records, %d were acked", len(recs), acked)
			}
			led.View(func(k ledger.StreamKey, s *ledger.Stream) {
				log := inLog[k]
				if log == nil {
					log = &intervals.Set{}
				}
				s.Acked.Minus(log, func(r intervals.Range) bool {
					t.Errorf("%v: acked %d-%d missing from the source log", k, r.Lo, r.Hi)
					return true
				})
				if n := s.Acked.Len() + s.Failed.Len(); n != uint64(st.Sent/4) {
					t.Errorf("%v: %d sequences acked or failed, want %d (each exactly one outcome)", k, n, st.Sent/4)
				}
				both := s.Failed.Len()
				s.Failed.Minus(&s.Acked, func(r intervals.Range) bool { both -= r.Len(); return true })
				if both != 0 {
					t.Errorf("%v: %d sequences both acked and failed", k, both)
				}
				for _, r := range s.Failed.Ranges() {
					for q := r.Lo; q <= r.Hi; q++ {
						if log.Contains(q) {
							t.Errorf("%v: failed seq %d is in the log although the broker rejected it", k, q)
						}
					}
				}
			})
		})
	}
}

func TestPreflightErrors(t *testing.T) {
	_, bs := newCluster(t, 1, "orders")
	// A port nothing listens on: bind, note, close.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	// A listener that accepts and never answers (a hung broker).
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hung.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	old := preflightTimeout
	preflightTimeout = time.Second // the mechanism, not the production value, is under test
	t.Cleanup(func() { preflightTimeout = old })
	cases := []struct {
		name, bootstrap string
		topics          []string
		want            string
	}{
		{"unreachable bootstrap", dead, []string{"orders"}, dead},
		{"hung bootstrap", hung.Addr().String(), []string{"orders"}, hung.Addr().String()},
		{"missing topic", bs, []string{"orders", "nope"}, `topic "nope" does not exist`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			led := ledger.New()
			_, err := Run(context.Background(), Config{Bootstrap: tc.bootstrap, Topics: tc.topics, RunID: "r", Count: 1, Ledger: led, Logger: quiet()})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	ok := Config{Bootstrap: "127.0.0.1:1", Topics: []string{"a"}, RunID: "r"}
	cases := []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"no bootstrap", func(c *Config) { c.Bootstrap = " , " }, "bootstrap"},
		{"no topics", func(c *Config) { c.Topics = nil }, "no topics"},
		{"repeated topic", func(c *Config) { c.Topics = []string{"a", "a"} }, "repeated"},
		{"bad run id", func(c *Config) { c.RunID = "a b" }, "run id"},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "rate"},
		{"NaN rate", func(c *Config) { c.Rate = nan() }, "rate"},
		{"negative size", func(c *Config) { c.MessageSize = -1 }, "message size"},
		{"negative streams", func(c *Config) { c.Streams = -2 }, "streams"},
		{"negative count", func(c *Config) { c.Count = -1 }, "count"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mod(&c)
			if err := c.check(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if err := ok.check(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
}

func nan() float64 { var z float64; return z / z }

func TestCancelStopsCleanlyAndDurationNeverOvershoots(t *testing.T) {
	_, bs := newCluster(t, 1, "orders")
	t.Run("cancel", func(t *testing.T) {
		led := ledger.New()
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(300*time.Millisecond, cancel)
		st, err := Run(ctx, Config{Bootstrap: bs, Topics: []string{"orders"}, RunID: "c", Rate: 500, Streams: 2, Ledger: led, Logger: quiet()})
		if err != nil {
			t.Fatalf("cancel is a normal stop, got %v", err)
		}
		acked, failed := led.Totals()
		if st.Sent == 0 || st.Acked+st.Failed != st.Sent || acked != st.Acked || failed != st.Failed || !led.Done() {
			t.Fatalf("stats %+v, ledger %d/%d done=%v: every sent message must complete before Run returns", st, acked, failed, led.Done())
		}
	})
	t.Run("duration", func(t *testing.T) {
		// The schedule allows floor(rate*elapsed) messages and elapsed is
		// below Duration while sending, so Sent can never exceed rate*Duration.
		led := ledger.New()
		st, err := Run(context.Background(), Config{Bootstrap: bs, Topics: []string{"orders"}, RunID: "d", Rate: 1000, Duration: 300 * time.Millisecond, Ledger: led, Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		if st.Sent == 0 || st.Sent > 300 || st.Acked != st.Sent {
			t.Fatalf("stats %+v: want 0 < sent <= 300, all acked", st)
		}
	})
}

func TestLedgerTopicMatchesInMemoryLedger(t *testing.T) {
	_, bs := newCluster(t, 1, "orders")
	led := ledger.New()
	st, err := Run(context.Background(), Config{Bootstrap: bs, Topics: []string{"orders"}, RunID: "lt", Rate: 0, Streams: 3, Count: 300,
		Ledger: led, LedgerTopic: ledger.DefaultTopic, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	got := ledger.New()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var dials atomic.Int64
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	if err := ledger.ReadTopicWith(ctx, kafkaclient.Config{Brokers: bootlist.Split(bs), Dial: dial}, ledger.DefaultTopic, "lt", got); err != nil {
		t.Fatal(err)
	}
	if dials.Load() == 0 {
		t.Error("ReadTopic did not use its dial function")
	}
	if a, _ := got.Totals(); a != st.Acked || !got.Done() {
		t.Fatalf("ledger read back has %d acked (done=%v), loadgen acked %d", a, got.Done(), st.Acked)
	}
	if ps := got.Problems(); len(ps) != 0 {
		t.Fatalf("the ledger topic does not add up: %q", ps)
	}
	// The whole ledger, not just its ends: every acked and failed range.
	led.View(func(k ledger.StreamKey, s *ledger.Stream) {
		var back *ledger.Stream
		got.View(func(gk ledger.StreamKey, gs *ledger.Stream) {
			if gk == k {
				back = gs
			}
		})
		if back == nil || back.Acked.String() != s.Acked.String() || back.Failed.String() != s.Failed.String() {
			t.Errorf("%v: read back %v, want acked %s failed %s", k, back, s.Acked.String(), s.Failed.String())
		}
	})
}

func TestCancelledBeforeStart(t *testing.T) {
	// A cancelled context before start stops the preflight promptly and
	// names the cluster.
	_, bs := newCluster(t, 1, "orders")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, Config{Bootstrap: bs, Topics: []string{"orders"}, RunID: "r", Count: 1, Logger: quiet()})
	if err == nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), bs) {
		t.Fatalf("err %v, want context.Canceled naming %s", err, bs)
	}
}
