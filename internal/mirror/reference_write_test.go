package mirror

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
)

// TestReferenceFailedWriteCommitsNothingPastIt: the target refuses a write
// (its topic's max.message.bytes is 64 KiB and partition 1's record 100 is
// 100 KiB), so the batch holding it fails, and kgo fails every later record
// of partition 1 with it. The mirror must not commit any offset of
// partition 1 past the refused record while it is refused, and once the
// target takes it (the test raises the limit, as MirrorMaker 2's config
// sync would), every record is on the target exactly once, in the source's
// order: 601 records, partition 1's 201 in order.
func TestReferenceFailedWriteCommitsNothingPastIt(t *testing.T) {
	const parts, per, bigAt = 3, 200, 100
	const n = parts*per + 1
	e := newEnv(t, parts)
	all := []int{0, 1, 2}
	produce(t, e.src, srcTopic, all, 0, bigAt)
	big := kafka.Message{Topic: srcTopic, Partition: 1, Key: []byte("big"), Value: []byte(strings.Repeat("b", 100<<10)), Time: baseTime}
	writeOne(t, e.src, big)
	produce(t, e.src, srcTopic, all, bigAt, per-bigAt)

	adm := admin(t, e.dst)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	limit := "65536"
	if _, err := adm.CreateTopic(ctx, parts, -1, map[string]*string{"max.message.bytes": &limit}, dstTopic); err != nil {
		t.Fatalf("creating target topic %s with max.message.bytes %s: %v", dstTopic, limit, err)
	}

	m := e.mirror(t)
	start(t, m)
	for counter(t, e.reg, metrics.MirrorErrors) < 1 {
		if ctx.Err() != nil {
			t.Fatal("the target never refused the 100 KiB record (no write error counted in 30 s)")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Partition 1's offset bigAt was refused: nothing at or after it may
	// be committed (a committed offset is the next one to read).
	if c, ok := committedOffsets(t, e.src, m.cfg.Group, parts)[1]; ok && c > bigAt {
		t.Errorf("partition 1 committed up to %d while its record %d was refused by the target", c, bigAt)
	}
	if err := kafkaclient.SetTopicConfigs(ctx, adm, dstTopic, map[string]string{"max.message.bytes": "1048576"}); err != nil {
		t.Fatalf("raising the target's max.message.bytes: %v", err)
	}
	waitTotal(t, e.dst, dstTopic, n, 30*time.Second)
	stop(t, m)

	src, dst := readAll(t, e.src, srcTopic), readAll(t, e.dst, dstTopic)
	if got := total(dst); got != n {
		t.Fatalf("target holds %d records, want exactly %d", got, n)
	}
	for p := range parts {
		if len(dst[p]) != len(src[p]) {
			t.Fatalf("target partition %d holds %d records, source %d", p, len(dst[p]), len(src[p]))
		}
		for i := range src[p] {
			if dst[p][i].Value != src[p][i].Value {
				t.Fatalf("target partition %d record %d is %.40q, want %.40q (order or loss)", p, i, dst[p][i].Value, src[p][i].Value)
			}
		}
	}
	for p, off := range committedOffsets(t, e.src, m.cfg.Group, parts) {
		if want := int64(len(src[p])); off != want {
			t.Errorf("partition %d committed %d, want %d", p, off, want)
		}
	}
}

// writeOne writes m to the cluster at bootstrap, in m's partition.
func writeOne(t *testing.T, bootstrap string, m kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(strings.Split(bootstrap, ",")...), Balancer: keepPartition{},
		RequiredAcks: kafka.RequireAll, BatchBytes: 8 << 20, Transport: &kafka.Transport{}}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, m); err != nil {
		t.Fatalf("writing a %d-byte record to %s[%d]: %v", len(m.Value), m.Topic, m.Partition, err)
	}
}

// admin is a kadm client of the cluster at bootstrap.
func admin(t *testing.T, bootstrap string) *kadm.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}
