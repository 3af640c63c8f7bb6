package mirror

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/kmt-dev/kafka-mirror-tester/internal/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

const (
	srcTopic = "orders"
	dstTopic = "orders-mirrored"
)

type env struct {
	src, dst string
	reg      *prometheus.Registry
}

func newEnv(t *testing.T, partitions int32) env {
	_, src := newCluster(t, partitions, srcTopic)
	_, dst := newCluster(t, 0)
	return env{src: src, dst: dst, reg: prometheus.NewRegistry()}
}

func (e env) mirror(t *testing.T, d ...scenarios.Defect) *Reference {
	t.Helper()
	m, err := NewReference(Config{
		SourceBootstrap: e.src, TargetBootstrap: e.dst,
		Topics: []TopicMap{{Source: srcTopic, Target: dstTopic}},
		Group:  "g-" + strings.ReplaceAll(t.Name(), "/", "-"), Defects: d,
		Registerer: e.reg, Logger: testLogger(t),
	})
	if err != nil {
		t.Fatalf("NewReference: %v", err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func start(t *testing.T, m *Reference) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

func stop(t *testing.T, m *Reference) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.Counter != nil {
				sum += m.Counter.GetValue()
			}
			if m.Gauge != nil {
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// committedOffsets reads the group's committed offsets on the source.
func committedOffsets(t *testing.T, bootstrap, group string, partitions int) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ps []int
	for p := 0; p < partitions; p++ {
		ps = append(ps, p)
	}
	c := &kafka.Client{Addr: kafka.TCP(strings.Split(bootstrap, ",")...), Transport: &kafka.Transport{}}
	resp, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{srcTopic: ps}})
	if err != nil {
		t.Fatalf("offset fetch: %v", err)
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[srcTopic] {
		out[p.Partition] = p.CommittedOffset
	}
	return out
}

func TestReferenceHealthyCopiesEverything(t *testing.T) {
	e := newEnv(t, 3)
	produce(t, e.src, srcTopic, []int{0, 1, 2}, 0, 100)
	m := e.mirror(t)
	start(t, m)
	got := waitTotal(t, e.dst, dstTopic, 300, 30*time.Second)
	stop(t, m)

	want := readAll(t, e.src, srcTopic)
	if len(got) != 3 {
		t.Fatalf("target topic has %d partitions, want 3 (created with the source's count)", len(got))
	}
	for p := 0; p < 3; p++ {
		if len(got[p]) != len(want[p]) {
			t.Fatalf("partition %d: %d records on target, %d on source", p, len(got[p]), len(want[p]))
		}
		for i := range want[p] {
			w, g := want[p][i], got[p][i]
			if g.Key != w.Key || g.Value != w.Value || g.Headers != w.Headers || !g.Time.Equal(w.Time) {
				t.Fatalf("partition %d record %d differs:\n source %+v\n target %+v", p, i, w, g)
			}
		}
	}
	for _, c := range []struct {
		name string
		want float64
	}{{metrics.MirrorConsumed, 300}, {metrics.MirrorProduced, 300}, {metrics.MirrorRunning, 0}} {
		if v := counter(t, e.reg, c.name); v != c.want {
			t.Errorf("%s = %v, want %v", c.name, v, c.want)
		}
	}
	if v := counter(t, e.reg, metrics.MirrorCommits); v < 1 {
		t.Errorf("%s = %v, want >= 1", metrics.MirrorCommits, v)
	}
	// Everything copied was committed: the group sits at the end of each partition.
	for p, off := range committedOffsets(t, e.src, m.cfg.Group, 3) {
		if off != 100 {
			t.Errorf("partition %d committed offset %d, want 100", p, off)
		}
	}
	mfs, _ := e.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == metrics.MirrorConsumed {
			if len(mf.GetMetric()) != 1 || mf.GetMetric()[0].GetLabel()[0].GetValue() != srcTopic {
				t.Errorf("%s series: %v, want one with topic=%s", metrics.MirrorConsumed, mf.GetMetric(), srcTopic)
			}
		}
	}
}
