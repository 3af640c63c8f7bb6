package apachekafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestClientsAgainstKafka4 proves that every Kafka client kmt uses speaks a
// protocol version Apache Kafka 4.x still serves (KIP-896 removed the old
// ones), with the very calls kmt makes: kafka-go (validator readers, the
// reference mirror's consumer group, its Conn metadata and admin requests,
// the ledger writer), franz-go (loadgen, admin, read_committed) and kcat
// (librdkafka; the independent counter and the pipe mirror).
func TestClientsAgainstKafka4(t *testing.T) {
	c, _ := SharedPair(t) // topics, groups and transactional ids of its own
	if !strings.HasPrefix(c.o.Dist.Version, "4.") {
		t.Fatalf("distribution is Kafka %q; this test is about 4.x", c.o.Dist.Version)
	}
	t.Run("kafka-go", func(t *testing.T) { kafkaGo(t, c) })
	t.Run("franz-go", func(t *testing.T) { franzGo(t, c) })
	t.Run("kcat", func(t *testing.T) { kcatClient(t, c) })
}

func kafkaGo(t *testing.T, c *Cluster) {
	topic, group := UniqueTopic(t, "kgo"), UniqueTopic(t, "kmt-compat")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tr := &kafka.Transport{Dial: c.DirectDial, ClientID: "kmt-compat"}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(c.Brokers()...), Transport: tr, Timeout: 30 * time.Second}
	// Admin requests kmt sends with kafka-go (loadgen EnsureTopics, the
	// reference mirror, the ledger topic).
	res, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: 2, ReplicationFactor: 1}}})
	if err != nil || res.Errors[topic] != nil {
		t.Fatalf("kafka-go CreateTopics: %v %v", err, res)
	}
	pres, err := cl.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 3}}})
	if err != nil || pres.Errors[topic] != nil {
		t.Fatalf("kafka-go CreatePartitions: %v %v", err, pres)
	}
	// Conn-level metadata (the reference mirror's partition discovery);
	// brokers learn the new partitions a moment after the controller.
	var parts []kafka.Partition
	for deadline := time.Now().Add(30 * time.Second); len(parts) != 3 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		conn, derr := (&kafka.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, "tcp", c.direct()[0])
		if derr != nil {
			t.Fatal(derr)
		}
		parts, err = conn.ReadPartitions(topic)
		conn.Close()
	}
	if err != nil || len(parts) != 3 {
		t.Fatalf("kafka-go Conn.ReadPartitions: %d partitions, err %v; want 3", len(parts), err)
	}
	// Writer, acks=all.
	w := &kafka.Writer{Addr: kafka.TCP(c.Brokers()...), Topic: topic, Transport: tr, RequiredAcks: kafka.RequireAll, Balancer: &kafka.RoundRobin{}, BatchTimeout: 10 * time.Millisecond}
	var msgs []kafka.Message
	for i := range 300 {
		msgs = append(msgs, kafka.Message{Value: []byte(strconv.Itoa(i))})
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("kafka-go Writer (acks=all): %v", err)
	}
	w.Close()
	dialer := &kafka.Dialer{Timeout: 10 * time.Second, DualStack: false}
	// Partition reader (the validator's way: no group), each partition
	// read to the end offset the broker reports.
	n := 0
	for p := range 3 {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.Brokers(), Topic: topic, Partition: p, Dialer: dialer, MaxWait: 200 * time.Millisecond})
		n += readToEnd(ctx, t, c, r, topic, p)
		r.Close()
	}
	if n != 300 {
		t.Fatalf("kafka-go partition readers read %d records, want 300", n)
	}
	// Consumer group (the reference mirror's way): read half, commit,
	// close; a second member resumes from the committed offsets.
	groupRead := func(limit int) int {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: c.Brokers(), Topic: topic, GroupID: group, Dialer: dialer, StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond, SessionTimeout: 10 * time.Second})
		defer r.Close()
		got := 0
		for got < limit {
			rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
			m, err := r.FetchMessage(rctx)
			rcancel()
			if err != nil {
				break
			}
			if err := r.CommitMessages(ctx, m); err != nil {
				t.Fatalf("kafka-go group commit: %v", err)
			}
			got++
		}
		return got
	}
	first := groupRead(150)
	second := groupRead(300 - first)
	if first != 150 || second != 150 {
		t.Fatalf("kafka-go consumer group read %d then %d after a restart from committed offsets, want 150 and 150", first, second)
	}
}

// readToEnd reads partition p up to the end offset the leader reports
// (kafka-go's Conn.ReadLastOffset) and returns how many records it read;
// a partition that stops short of it fails after 20 s without a record.
func readToEnd(ctx context.Context, t *testing.T, c *Cluster, r *kafka.Reader, topic string, p int) int {
	t.Helper()
	conn, err := (&kafka.Dialer{Timeout: 10 * time.Second}).DialLeader(ctx, "tcp", c.direct()[0], topic, p)
	if err != nil {
		t.Fatalf("kafka-go DialLeader %s[%d]: %v", topic, p, err)
	}
	end, err := conn.ReadLastOffset()
	conn.Close()
	if err != nil {
		t.Fatalf("kafka-go ReadLastOffset %s[%d]: %v", topic, p, err)
	}
	n := 0
	for next := int64(0); next < end; n++ {
		rctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		m, err := r.ReadMessage(rctx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("kafka-go Reader: %s[%d] stopped at offset %d of %d", topic, p, next, end)
		}
		if err != nil {
			t.Fatalf("kafka-go Reader: %v", err)
		}
		next = m.Offset + 1
	}
	return n
}

func franzGo(t *testing.T, c *Cluster) {
	topic := UniqueTopic(t, "fgo")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.CreateTopic(ctx, topic, 2); err != nil {
		t.Fatal(err)
	}
	produce(t, c, topic, 0, 100)
	// A transaction that aborts: read_committed must skip it.
	tx := client(t, c, kgo.TransactionalID(UniqueTopic(t, "kmt-compat-tx")), kgo.DefaultProduceTopic(topic))
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := tx.ProduceSync(ctx, &kgo.Record{Value: []byte("aborted-" + strconv.Itoa(i))}).FirstErr(); err != nil {
			t.Fatalf("franz-go transactional produce: %v", err)
		}
	}
	if err := tx.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatalf("franz-go abort: %v", err)
	}
	produce(t, c, topic, 100, 110)
	cl := client(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	got := 0
	deadline := time.Now().Add(60 * time.Second)
	for got < 110 && time.Now().Before(deadline) {
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		fs.EachRecord(func(r *kgo.Record) {
			if strings.HasPrefix(string(r.Value), "aborted-") {
				t.Errorf("read_committed returned aborted record %q", r.Value)
			}
			got++
		})
	}
	if got != 110 {
		t.Fatalf("franz-go read_committed read %d records, want 110 committed", got)
	}
}

func kcatClient(t *testing.T, c *Cluster) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat not on PATH (make deps installs it): %v", err)
	}
	topic, group := UniqueTopic(t, "kcat"), UniqueTopic(t, "kmt-kcat")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := c.CreateTopic(ctx, topic, 2); err != nil {
		t.Fatal(err)
	}
	boot := strings.Join(c.direct(), ",")
	var in bytes.Buffer
	for i := range 200 {
		fmt.Fprintf(&in, "%d\n", i)
	}
	p := exec.CommandContext(ctx, kcat, "-P", "-q", "-b", boot, "-t", topic, "-X", "acks=all")
	p.Stdin = &in
	if out, err := p.CombinedOutput(); err != nil {
		t.Fatalf("kcat -P: %v: %s", err, out)
	}
	out, err := exec.CommandContext(ctx, kcat, "-C", "-q", "-e", "-b", boot, "-t", topic, "-o", "beginning", "-f", "%s\n").Output()
	if err != nil {
		t.Fatalf("kcat -C: %v", err)
	}
	if n := strings.Count(string(out), "\n"); n != 200 {
		t.Fatalf("kcat read %d records back, want 200", n)
	}
	// Consumer group (the pipe mirror): commit on exit, resume from there.
	g := exec.CommandContext(ctx, kcat, "-C", "-q", "-e", "-b", boot, "-G", group, "-X", "auto.offset.reset=earliest", "-f", "%s\n", topic)
	out, err = g.Output()
	if err != nil || strings.Count(string(out), "\n") != 200 {
		t.Fatalf("kcat -G read %d records (err %v), want 200", strings.Count(string(out), "\n"), err)
	}
}
