package mirror

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// newCluster starts a 3-broker kfake cluster with topics seeded at the given
// partition count and returns its bootstrap string.
func newCluster(t testing.TB, partitions int32, topics ...string) (*kfake.Cluster, string) {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(3)}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(partitions, topics...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c, strings.Join(c.ListenAddrs(), ",")
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// rec is one record as read back from a cluster.
type rec struct {
	Partition int
	Offset    int64
	Key       string
	Value     string
	Headers   string
	Time      time.Time
}

// srcValue is the value of the i-th test record: printable ASCII with
// spaces and '|', like kmt's wire format.
func srcValue(partition, i int) string {
	return fmt.Sprintf("kmt|p=%d|seq=%06d|payload abc xyz", partition, i)
}

// baseTime is the CreateTime of the test records: an hour ago, in whole
// milliseconds. It was a fixed day in 2023, which a broker applying
// retention (7 days by default) deletes on its first pass: since the
// embedded clusters run kfake's cleaner every 2 s (for compacted topics),
// every record produced here was gone before MirrorMaker 2 could copy it
// (TestMirrorMaker2CopiesBetweenEmbeddedClusters: 0 of 150 at the target).
var baseTime = time.UnixMilli(time.Now().Add(-time.Hour).UnixMilli())

// produce writes count records per listed partition with explicit
// partitions, keys "k<p>-<i%3>", a header and a distinct timestamp.
// from numbers the records (so a second call continues the sequence).
func produce(t testing.TB, bootstrap, topic string, partitions []int, from, count int) {
	t.Helper()
	w := &kafka.Writer{
		Addr: kafka.TCP(strings.Split(bootstrap, ",")...), Balancer: keepPartition{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond, BatchSize: 1000,
		Transport: &kafka.Transport{},
	}
	defer w.Close()
	var msgs []kafka.Message
	for i := from; i < from+count; i++ {
		for _, p := range partitions {
			msgs = append(msgs, kafka.Message{
				Topic: topic, Partition: p,
				Key:     []byte(fmt.Sprintf("k%d-%d", p, i%3)),
				Value:   []byte(srcValue(p, i)),
				Headers: []kafka.Header{{Key: "kmt-seq", Value: []byte(fmt.Sprint(i))}},
				Time:    baseTime.Add(time.Duration(i) * time.Millisecond),
			})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce %d records to %s: %v", len(msgs), topic, err)
	}
}

// readAll reads every record of topic (all partitions up to the high
// watermark) without a consumer group. A missing topic reads as empty.
func readAll(t *testing.T, bootstrap, topic string) map[int][]rec {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	addrs := strings.Split(bootstrap, ",")
	n, err := partitionCount(ctx, kafkaclient.Config{Brokers: addrs}, topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	out := map[int][]rec{}
	for p := 0; p < n; p++ {
		out[p] = readPartition(t, ctx, addrs[0], topic, p)
	}
	return out
}

func readPartition(t *testing.T, ctx context.Context, addr, topic string, p int) []rec {
	t.Helper()
	conn, err := kafka.DialLeader(ctx, "tcp", addr, topic, p)
	if err != nil {
		t.Fatalf("dial leader %s/%d: %v", topic, p, err)
	}
	defer conn.Close()
	hwm, err := conn.ReadLastOffset()
	if err != nil {
		t.Fatalf("hwm %s/%d: %v", topic, p, err)
	}
	var out []rec
	if hwm == 0 {
		return out
	}
	if _, err := conn.Seek(0, kafka.SeekAbsolute); err != nil {
		t.Fatalf("seek %s/%d: %v", topic, p, err)
	}
	for int64(len(out)) < hwm {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := conn.ReadBatch(1, 16<<20)
		for {
			m, err := b.ReadMessage()
			if err != nil {
				break
			}
			var hs []string
			for _, h := range m.Headers {
				hs = append(hs, h.Key+"="+string(h.Value))
			}
			out = append(out, rec{p, m.Offset, string(m.Key), string(m.Value), strings.Join(hs, ","), m.Time})
		}
		if err := b.Close(); err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("read %s/%d at %d of %d: %v", topic, p, len(out), hwm, err)
		}
	}
	return out
}

func total(m map[int][]rec) int {
	n := 0
	for _, rs := range m {
		n += len(rs)
	}
	return n
}

// waitTotal polls the target until topic holds want records; it fails the
// test after timeout, printing what it saw.
func waitTotal(t *testing.T, bootstrap, topic string, want int, timeout time.Duration) map[int][]rec {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got map[int][]rec
	for {
		got = readAll(t, bootstrap, topic)
		if total(got) >= want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("target %s has %d records after %v, want %d", topic, total(got), timeout, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitDistinct is waitTotal counting distinct values (duplicates do not
// count); at the deadline it returns what is there, for the caller to say
// which records are missing.
func waitDistinct(t *testing.T, bootstrap, topic string, want int, timeout time.Duration) map[int][]rec {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := readAll(t, bootstrap, topic)
		if len(values(got)) >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// values counts occurrences of each value on the target.
func values(m map[int][]rec) map[string]int {
	out := map[string]int{}
	for _, rs := range m {
		for _, r := range rs {
			out[r.Value]++
		}
	}
	return out
}

// keepPartition routes each record to the partition number it names
// (Message.Partition), which kafka-go's Writer otherwise ignores.
type keepPartition struct{}

func (keepPartition) Balance(msg kafka.Message, _ ...int) int { return msg.Partition }
