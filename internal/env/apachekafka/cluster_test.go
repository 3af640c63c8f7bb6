package apachekafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/kafkadist"
)

// dist returns the distribution the tests run (assembled from Maven
// Central into the cache when missing, as CI does).
func dist(t *testing.T) *kafkadist.Dist {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	d, err := kafkadist.Find(ctx, "", nil)
	if err != nil {
		t.Fatalf("no Apache Kafka distribution: %v", err)
	}
	return d
}

func logger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// start starts a cluster and registers its Close plus the proof that no JVM
// and no listener is left.
func start(t *testing.T, o Options) *Cluster {
	t.Helper()
	o.Dist = dist(t)
	if o.DataDir == "" {
		o.DataDir = t.TempDir()
	}
	if o.Logger == nil {
		o.Logger = logger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	t0 := time.Now()
	c, err := Start(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d-node cluster %s ready in %v", o.Brokers, o.Name, time.Since(t0).Round(time.Millisecond))
	t.Cleanup(func() { closeAndCheck(t, c) })
	return c
}

// closeAndCheck closes c and fails if any of its JVMs or listeners survive.
func closeAndCheck(t *testing.T, c *Cluster) {
	t.Helper()
	pids := c.Pids()
	if err := c.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("JVM pid %d still exists after Close", pid)
		}
	}
	for _, a := range c.Listeners() {
		if conn, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			conn.Close()
			t.Errorf("%s still accepts connections after Close", a)
		}
	}
}

func client(t *testing.T, c *Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Brokers()...), kgo.Dialer(c.DirectDial)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(t *testing.T, c *Cluster, topic string, from, to int) {
	t.Helper()
	cl := client(t, c, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(20))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := from; i < to; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: topic, Value: []byte(strconv.Itoa(i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce %d: %v", i, err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// count reads the topic from the start until idle and returns the values.
func count(t *testing.T, c *Cluster, topic string, want int) map[string]int {
	t.Helper()
	cl := client(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := map[string]int{}
	n := 0
	deadline := time.Now().Add(90 * time.Second)
	for n < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)]++; n++ })
	}
	return got
}

// TestSingleNode starts one node behind a front (an address nobody
// listens on, so only DirectDial reaches the broker), checks the front is
// what metadata advertises on the client listener, that records go through,
// that the broker logs through log4j2, and that errors name the problem.
func TestSingleNode(t *testing.T) {
	fronts := map[string]string{}
	front := func(real string) (string, error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		ln.Close()
		fronts[real] = ln.Addr().String()
		return fronts[real], nil
	}
	c := start(t, Options{Name: "solo", Brokers: 1, Front: front})
	if got, want := c.Bootstrap(), fronts[c.nodes[0].client]; got != want {
		t.Fatalf("Bootstrap() = %q, want the front %q", got, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	md, err := kadmClient(client(t, c)).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if addr := fmt.Sprintf("%s:%d", md.Brokers[0].Host, md.Brokers[0].Port); addr != fronts[c.nodes[0].client] {
		t.Fatalf("metadata advertises %s, want the front %s", addr, fronts[c.nodes[0].client])
	}
	if err := c.CreateTopic(ctx, "t", 2); err != nil {
		t.Fatal(err)
	}
	// A retried CreateTopics finds the topic its first try made: the same
	// partitions are that topic, other ones are someone else's.
	if err := c.CreateTopic(ctx, "t", 2); err != nil {
		t.Fatalf("CreateTopic of the existing t with its 2 partitions: %v, want nil", err)
	}
	if err := c.CreateTopic(ctx, "t", 3); !errors.Is(err, kerr.TopicAlreadyExists) || !strings.Contains(err.Error(), "2 partitions, not 3") {
		t.Fatalf("CreateTopic of the existing 2-partition t with 3: %v, want TOPIC_ALREADY_EXISTS naming both counts", err)
	}
	produce(t, c, "t", 0, 100)
	if got := count(t, c, "t", 100); len(got) != 100 {
		t.Fatalf("read %d distinct records, want 100", len(got))
	}
	b, err := os.ReadFile(c.logFile(c.nodes[0]))
	if err != nil || !strings.Contains(string(b), "Kafka Server started") {
		t.Fatalf("broker log lacks 'Kafka Server started' (log4j2 binding missing?): %v\n%s", err, tail(b, 2000))
	}
	if err := c.KillBrokers([]int32{7}); err == nil || !strings.Contains(err.Error(), "no broker with node id 7") {
		t.Fatalf("kill unknown node: err = %v", err)
	}
	if _, err := Start(ctx, Options{Name: "x", Brokers: 1, Dist: c.o.Dist}); err == nil || !strings.Contains(err.Error(), "DataDir") {
		t.Fatalf("no DataDir: err = %v", err)
	}
}

// TestThreeNodeFaults performs every broker fault for real on one 3-node
// cluster: nothing acknowledged with acks=all is lost across a SIGKILL and
// restart of a leader, a SIGSTOP/SIGCONT, and a whole-cluster restart.
func TestThreeNodeFaults(t *testing.T) {
	t.Parallel() // two at a time with the other count-checked real-Kafka tests (suite_test.go, above ciSubset)
	c := start(t, Options{Name: "trio", Brokers: 3, LogDir: os.Getenv("KMT_TEST_LOGDIR"), ReadyTimeout: 90 * time.Second})
	ctx := context.Background()
	if err := c.CreateTopic(ctx, "t", 3); err != nil {
		t.Fatal(err)
	}
	produce(t, c, "t", 0, 100)

	leaders := c.LeaderNodes("t", 3)
	if len(leaders) == 0 {
		t.Fatal("no leaders for t")
	}
	victim := leaders[0]
	if err := c.KillBrokers([]int32{victim}); err != nil {
		t.Fatal(err)
	}
	if alive := c.AliveNodes(); len(alive) != 2 {
		t.Fatalf("after kill: alive %v, want 2 nodes", alive)
	}
	if conn, err := net.DialTimeout("tcp", c.nodes[victim].client, time.Second); err == nil {
		conn.Close()
		t.Fatalf("killed broker %d still accepts on %s", victim, c.nodes[victim].client)
	}
	produce(t, c, "t", 100, 200) // the survivors take over
	t0 := time.Now()
	if err := c.RestoreBrokers([]int32{victim}); err != nil {
		t.Fatal(err)
	}
	t.Logf("restore after SIGKILL took %v", time.Since(t0).Round(time.Millisecond))

	if err := c.PauseBrokers([]int32{victim}); err != nil {
		t.Fatal(err)
	}
	produce(t, c, "t", 200, 300)
	if err := c.ResumeBrokers([]int32{victim}); err != nil {
		t.Fatal(err)
	}

	t0 = time.Now()
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	t.Logf("stop took %v", time.Since(t0).Round(time.Millisecond))
	if alive := c.AliveNodes(); len(alive) != 0 {
		t.Fatalf("after Stop: alive %v", alive)
	}
	t0 = time.Now()
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("cluster restart took %v", time.Since(t0).Round(time.Millisecond))
	got := count(t, c, "t", 300)
	for i := range 300 {
		if got[strconv.Itoa(i)] == 0 {
			t.Errorf("record %d acknowledged but not read back", i)
		}
	}

	if err := c.AddPartitions(ctx, "t", 5); err != nil {
		t.Fatal(err)
	}
	starts, err := c.Purge(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, s := range starts {
		sum += s
	}
	if len(starts) != 5 || sum != 300 {
		t.Fatalf("purge: log starts %v (sum %d), want 5 partitions summing to 300", starts, sum)
	}
}

func kadmClient(cl *kgo.Client) *kadm.Client { return kadm.NewClient(cl) }
