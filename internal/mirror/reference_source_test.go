package mirror

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// TestReferenceKeepsEmptyAndNullHeaderValues: a header value that is empty
// on the source arrives empty, and a null one arrives null, with no
// configuration (kafka-go's reader, the mirror's source reader before
// franz-go, read both as null: every empty value arrived null).
func TestReferenceKeepsEmptyAndNullHeaderValues(t *testing.T) {
	const n = 60 // 20 per partition
	e := newEnv(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pcl, err := kafkaclient.Config{Brokers: bootstrap.Split(e.src)}.NewKgo(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: srcTopic, Partition: int32(i % 3), Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v"),
			Headers: []kgo.RecordHeader{{Key: "empty", Value: []byte{}}, {Key: "null"}, {Key: "seq", Value: fmt.Appendf(nil, "%d", i)}}}
	}
	if err := pcl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce %d records with empty and null header values: %v", n, err)
	}

	m := e.mirror(t)
	start(t, m)
	waitTotal(t, e.dst, dstTopic, n, 30*time.Second)
	stop(t, m)

	ccl, err := kafkaclient.Config{Brokers: bootstrap.Split(e.dst)}.NewKgo(kgo.ConsumeTopics(dstTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer ccl.Close()
	var got, empty, null, wrong int
	for got < n && ctx.Err() == nil {
		ccl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			got++
			vals := map[string][]byte{}
			for _, h := range r.Headers {
				vals[h.Key] = h.Value
			}
			if v, ok := vals["empty"]; ok && v != nil && len(v) == 0 {
				empty++
			} else {
				wrong++
			}
			if v, ok := vals["null"]; ok && v == nil {
				null++
			}
		})
	}
	if got != n || empty != n || null != n || wrong != 0 {
		t.Fatalf("target: %d records, %d with the empty header value empty (want %d), %d with the null one null (want %d), %d with the empty one null or missing (want 0)",
			got, empty, n, null, n, wrong)
	}
}
