package mirror

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
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

func newEnv(t testing.TB, partitions int32) env {
	_, src := newCluster(t, partitions, srcTopic)
	_, dst := newCluster(t, 0)
	return env{src: src, dst: dst, reg: prometheus.NewRegistry()}
}

func (e env) mirror(t testing.TB, d ...scenarios.Defect) *Reference {
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

func start(t testing.TB, m *Reference) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
}

func stop(t testing.TB, m *Reference) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
}

func counter(t testing.TB, reg *prometheus.Registry, name string) float64 {
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

// TestReferenceDefects: each defect has exactly the predicted effect on
// 1000 records (4 partitions x 250).
func TestReferenceDefects(t *testing.T) {
	const parts, per, n = 4, 250, 1000
	type check func(t *testing.T, src, dst map[int][]rec)
	cases := []struct {
		name      string
		defects   []scenarios.Defect
		wantTotal int
		check     check
	}{
		{"none", nil, n, func(t *testing.T, src, dst map[int][]rec) {
			for p := range parts {
				for i := range src[p] {
					if dst[p][i].Value != src[p][i].Value {
						t.Fatalf("p%d[%d] = %q, want %q", p, i, dst[p][i].Value, src[p][i].Value)
					}
				}
			}
		}},
		{"drop every 10", []scenarios.Defect{{Name: scenarios.DefectDrop, Every: 10}}, 900, func(t *testing.T, src, dst map[int][]rec) {
			v := values(dst)
			if len(v) != 900 {
				t.Errorf("%d distinct values on target, want 900", len(v))
			}
			for val, c := range v {
				if c != 1 {
					t.Errorf("value %q copied %d times, want once", val, c)
				}
			}
		}},
		{"duplicate every 10", []scenarios.Defect{{Name: scenarios.DefectDuplicate, Every: 10}}, 1100, func(t *testing.T, src, dst map[int][]rec) {
			twice := 0
			for val, c := range values(dst) {
				switch c {
				case 1:
				case 2:
					twice++
				default:
					t.Errorf("value %q copied %d times", val, c)
				}
			}
			if twice != 100 {
				t.Errorf("%d values written twice, want 100", twice)
			}
			if d := len(values(dst)); d != n {
				t.Errorf("%d distinct values, want %d", d, n)
			}
		}},
		{"corrupt every 10", []scenarios.Defect{{Name: scenarios.DefectCorrupt, Every: 10}}, n, func(t *testing.T, src, dst map[int][]rec) {
			corrupt := 0
			for p := range parts {
				for i := range src[p] {
					a, b := src[p][i].Value, dst[p][i].Value
					diff := 0
					for j := range a {
						if a[j] != b[j] {
							diff++
						}
					}
					if diff > 1 || len(a) != len(b) {
						t.Fatalf("p%d[%d]: %d bytes differ, want at most 1: %q vs %q", p, i, diff, a, b)
					}
					corrupt += diff
				}
			}
			if corrupt != 100 {
				t.Errorf("%d corrupted records, want 100", corrupt)
			}
		}},
		{"commit-before-produce without a kill loses nothing", []scenarios.Defect{{Name: scenarios.DefectCommitBeforeProduce}}, n, func(t *testing.T, src, dst map[int][]rec) {
			if d := len(values(dst)); d != n {
				t.Errorf("%d distinct values, want %d", d, n)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, parts)
			produce(t, e.src, srcTopic, []int{0, 1, 2, 3}, 0, per)
			m := e.mirror(t, c.defects...)
			start(t, m)
			waitTotal(t, e.dst, dstTopic, c.wantTotal, 30*time.Second)
			stop(t, m)
			dst := readAll(t, e.dst, dstTopic)
			if got := total(dst); got != c.wantTotal {
				t.Fatalf("target holds %d records, want exactly %d", got, c.wantTotal)
			}
			c.check(t, readAll(t, e.src, srcTopic), dst)
			// Dropped records are committed too: the group is at the end.
			for p, off := range committedOffsets(t, e.src, m.cfg.Group, parts) {
				if off != per {
					t.Errorf("partition %d committed offset %d, want %d", p, off, per)
				}
			}
			if v := counter(t, e.reg, metrics.MirrorConsumed); v != n {
				t.Errorf("consumed = %v, want %d", v, n)
			}
		})
	}
}

// hookOnce installs a test hook that, the first time stage is reached,
// reports the batch and blocks until the run is killed.
func hookOnce(m *Reference, stage hookStage) <-chan []kafka.Message {
	reached := make(chan []kafka.Message, 1)
	var fired atomic.Bool
	m.hook = func(ctx context.Context, s hookStage, batch []kafka.Message) {
		if s != stage || !fired.CompareAndSwap(false, true) {
			return
		}
		reached <- batch
		<-ctx.Done()
	}
	return reached
}

func waitBatch(t *testing.T, ch <-chan []kafka.Message) []kafka.Message {
	t.Helper()
	select {
	case b := <-ch:
		return b
	case <-time.After(30 * time.Second):
		t.Fatal("the mirror never reached the hooked step")
		return nil
	}
}

func TestReferenceKillRestart(t *testing.T) {
	// Twice maxBatch records, so the first batch (the one killed) cannot
	// hold them all.
	const parts, per = 4, maxBatch / 2
	const n = parts * per
	cases := []struct {
		name    string
		defects []scenarios.Defect
		stage   hookStage
		// lost/duplicated: how many of the killed batch's records end up
		// missing / written twice.
		lostBatch, dupBatch bool
	}{
		{"healthy: written, killed before commit -> the batch is duplicated, nothing lost", nil, stageWrittenBeforeCommit, false, true},
		{"commit-before-produce: committed, killed before write -> the batch is lost", []scenarios.Defect{{Name: scenarios.DefectCommitBeforeProduce}}, stageCommittedBeforeWrite, true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, parts)
			produce(t, e.src, srcTopic, []int{0, 1, 2, 3}, 0, per)
			m := e.mirror(t, c.defects...)
			reached := hookOnce(m, c.stage)
			start(t, m)
			batch := waitBatch(t, reached)
			if len(batch) == 0 || len(batch) >= n {
				t.Fatalf("killed batch has %d records; the test needs a batch mid-stream", len(batch))
			}
			if err := m.Kill(); err != nil {
				t.Fatalf("Kill: %v", err)
			}
			start(t, m)
			want := n
			if c.lostBatch {
				want -= len(batch)
			}
			if c.dupBatch {
				want += len(batch)
			}
			waitTotal(t, e.dst, dstTopic, want, 30*time.Second)
			stop(t, m)
			dst := readAll(t, e.dst, dstTopic)
			if got := total(dst); got != want {
				t.Fatalf("target holds %d records, want exactly %d (batch of %d)", got, want, len(batch))
			}
			v := values(dst)
			inBatch := map[string]bool{}
			for _, b := range batch {
				inBatch[string(b.Value)] = true
			}
			for p := range parts {
				for i := range per {
					val := srcValue(p, i)
					wantCount := 1
					switch {
					case inBatch[val] && c.lostBatch:
						wantCount = 0
					case inBatch[val] && c.dupBatch:
						wantCount = 2
					}
					if v[val] != wantCount {
						t.Fatalf("%q on target %d times, want %d (in killed batch: %v)", val, v[val], wantCount, inBatch[val])
					}
				}
			}
		})
	}
}

func TestReferenceStopStartGraceful(t *testing.T) {
	e := newEnv(t, 3)
	all := []int{0, 1, 2}
	produce(t, e.src, srcTopic, all, 0, 100)
	m := e.mirror(t)
	start(t, m)
	waitTotal(t, e.dst, dstTopic, 300, 30*time.Second)
	stop(t, m)
	produce(t, e.src, srcTopic, all, 100, 100)
	start(t, m)
	waitTotal(t, e.dst, dstTopic, 600, 30*time.Second)
	stop(t, m)
	dst := readAll(t, e.dst, dstTopic)
	if got := total(dst); got != 600 {
		t.Fatalf("target holds %d records after graceful stop/start, want exactly 600 (no loss, no duplicates)", got)
	}
	if d := len(values(dst)); d != 600 {
		t.Fatalf("%d distinct values, want 600", d)
	}
}

func TestReferencePauseResume(t *testing.T) {
	e := newEnv(t, 3)
	all := []int{0, 1, 2}
	produce(t, e.src, srcTopic, all, 0, 100)
	m := e.mirror(t)
	start(t, m)
	waitTotal(t, e.dst, dstTopic, 300, 30*time.Second)
	if err := m.Pause(); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if v := counter(t, e.reg, metrics.MirrorRunning); v != 0 {
		t.Errorf("%s = %v while paused, want 0", metrics.MirrorRunning, v)
	}
	produce(t, e.src, srcTopic, all, 100, 100)
	time.Sleep(700 * time.Millisecond) // several fetch/write rounds, were it running
	if got := total(readAll(t, e.dst, dstTopic)); got != 300 {
		t.Fatalf("paused mirror progressed: target holds %d records, want 300", got)
	}
	if v := counter(t, e.reg, metrics.MirrorConsumed); v != 300 {
		t.Fatalf("paused mirror consumed: %s = %v, want 300", metrics.MirrorConsumed, v)
	}
	if err := m.Resume(); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if v := counter(t, e.reg, metrics.MirrorRunning); v != 1 {
		t.Errorf("%s = %v after Resume, want 1", metrics.MirrorRunning, v)
	}
	waitTotal(t, e.dst, dstTopic, 600, 30*time.Second)
	stop(t, m)
	if got := total(readAll(t, e.dst, dstTopic)); got != 600 {
		t.Fatalf("target holds %d records, want 600", got)
	}
}

func TestReferencePartitionGrowth(t *testing.T) {
	e := newEnv(t, 2)
	produce(t, e.src, srcTopic, []int{0, 1}, 0, 50)
	m := e.mirror(t)
	start(t, m)
	waitTotal(t, e.dst, dstTopic, 100, 30*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := &kafka.Client{Addr: kafka.TCP(strings.Split(e.src, ",")...), Transport: &kafka.Transport{}}
	resp, err := c.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: srcTopic, Count: 4}}})
	if err == nil {
		err = resp.Errors[srcTopic]
	}
	if err != nil {
		t.Fatalf("grow source: %v", err)
	}
	// The poller grows the target before any record of the new partitions.
	deadline := time.Now().Add(15 * time.Second)
	for {
		n, err := partitionCount(ctx, kafkaclient.Config{Brokers: strings.Split(e.dst, ",")}, dstTopic)
		if err == nil && n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("target has %d partitions (err %v) 15s after the source grew to 4", n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	produce(t, e.src, srcTopic, []int{0, 1, 2, 3}, 50, 50)
	dst := waitTotal(t, e.dst, dstTopic, 300, 30*time.Second)
	stop(t, m)
	for p, wantN := range map[int]int{0: 100, 1: 100, 2: 50, 3: 50} {
		if len(dst[p]) != wantN {
			t.Errorf("target partition %d holds %d records, want %d", p, len(dst[p]), wantN)
			continue
		}
		for i, r := range dst[p] {
			if want := srcValue(p, i+100-wantN); r.Value != want || !strings.HasPrefix(r.Key, fmt.Sprintf("k%d-", p)) {
				t.Fatalf("target p%d[%d] = %q key %q, want %q", p, i, r.Value, r.Key, want)
			}
		}
	}
}

func TestNewReferenceValidates(t *testing.T) {
	ok := Config{SourceBootstrap: "127.0.0.1:1", TargetBootstrap: "127.0.0.1:2", Topics: []TopicMap{{Source: "a", Target: "b"}}}
	cases := []struct {
		name   string
		mutate func(*Config)
		errHas string // "" = valid
	}{
		{"valid", func(*Config) {}, ""},
		{"target defaults to source name", func(c *Config) { c.Topics = []TopicMap{{Source: "a"}} }, ""},
		{"all defects", func(c *Config) {
			c.Defects = []scenarios.Defect{{Name: "drop", Every: 2}, {Name: "duplicate", Every: 3}, {Name: "reorder", Every: 4},
				{Name: "corrupt", Every: 5}, {Name: "commit-before-produce"}}
		}, ""},
		{"no source", func(c *Config) { c.SourceBootstrap = " , " }, "SourceBootstrap"},
		{"no target", func(c *Config) { c.TargetBootstrap = "" }, "TargetBootstrap"},
		{"no topics", func(c *Config) { c.Topics = nil }, "no topics"},
		{"empty source topic", func(c *Config) { c.Topics = []TopicMap{{Target: "x"}} }, "empty source"},
		{"source twice", func(c *Config) { c.Topics = []TopicMap{{Source: "a", Target: "x"}, {Source: "a", Target: "y"}} }, "listed twice"},
		{"two sources one target", func(c *Config) { c.Topics = []TopicMap{{Source: "a", Target: "x"}, {Source: "b", Target: "x"}} }, "both map"},
		{"unknown defect", func(c *Config) { c.Defects = []scenarios.Defect{{Name: "explode", Every: 2}} }, `unknown name "explode"`},
		{"every too small", func(c *Config) { c.Defects = []scenarios.Defect{{Name: "drop", Every: 1}} }, "every must be >= 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := ok
			c.mutate(&cfg)
			m, err := NewReference(cfg)
			if c.errHas == "" {
				if err != nil {
					t.Fatalf("NewReference: %v", err)
				}
				if m.cfg.Group != DefaultGroup {
					t.Errorf("group = %q, want default %q", m.cfg.Group, DefaultGroup)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.errHas) {
				t.Fatalf("NewReference error = %v, want one containing %q", err, c.errHas)
			}
		})
	}
}

// TestReferenceReorderFlushesIncompleteGroups: a held record whose key has
// no later record (the source went quiet) is written, in order, after a
// short idle time instead of being held back forever, and is not counted.
func TestReferenceReorderFlushesIncompleteGroups(t *testing.T) {
	e := newEnv(t, 2)
	produce(t, e.src, srcTopic, []int{0}, 0, 10)
	m := e.mirror(t, scenarios.Defect{Name: scenarios.DefectReorder, Every: 10})
	start(t, m)
	dst := waitTotal(t, e.dst, dstTopic, 10, 30*time.Second)
	stop(t, m)
	for i, r := range dst[0] {
		if r.Value != srcValue(0, i) {
			t.Fatalf("p0[%d] = %q, want %q", i, r.Value, srcValue(0, i))
		}
	}
	if v := defectCount(t, e.reg, scenarios.DefectReorder); v != 0 {
		t.Errorf("reorder counted %v records, want 0 (the held one was written in order)", v)
	}
	for p, off := range committedOffsets(t, e.src, m.cfg.Group, 1) {
		if off != 10 {
			t.Errorf("partition %d committed %d, want 10", p, off)
		}
	}
}

// defectCount is kmt_mirror_defect_records_total{defect=name}.
func defectCount(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	n, err := DefectRecords(reg, name)
	if err != nil {
		t.Fatal(err)
	}
	return float64(n)
}

// TestReferenceRecordDefects: each per-record defect does exactly what it
// says to the records it counts, and nothing to the others (1000 records,
// 4 partitions).
func TestReferenceRecordDefects(t *testing.T) {
	const parts, per, n = 4, 250, 1000
	// inversions counts, per partition and key, records written after a
	// record of their key that the source had after them.
	inversions := func(src, dst map[int][]rec) int {
		pos := map[string]int{}
		for p := range parts {
			for i, r := range src[p] {
				pos[r.Value] = i
			}
		}
		count := 0
		for p := range parts {
			top := map[string]int{}
			for _, r := range dst[p] {
				if m, ok := top[r.Key]; ok && pos[r.Value] < m {
					count++
				} else {
					top[r.Key] = pos[r.Value]
				}
			}
		}
		return count
	}
	cases := []struct {
		defect string
		every  int
		check  func(t *testing.T, src, dst map[int][]rec) int // returns the records it sees affected
	}{
		{scenarios.DefectReorder, 10, func(_ *testing.T, src, dst map[int][]rec) int { return inversions(src, dst) }},
		{scenarios.DefectKeyDamage, 10, func(t *testing.T, src, dst map[int][]rec) int {
			c := 0
			for p := range parts {
				for _, r := range dst[p] {
					if strings.HasPrefix(r.Key, "x") {
						c++
					}
				}
			}
			return c
		}},
		{scenarios.DefectKeyScatter, 10, func(t *testing.T, src, dst map[int][]rec) int {
			c := 0
			for p := range parts {
				for _, r := range dst[p] {
					if !strings.HasPrefix(r.Key, fmt.Sprintf("k%d-", p)) {
						c++
					}
				}
			}
			return c
		}},
		{scenarios.DefectHeaderDamage, 10, func(t *testing.T, src, dst map[int][]rec) int {
			c := 0
			for p := range parts {
				for _, r := range dst[p] {
					if strings.Contains(r.Headers, "damaged!") {
						c++
					}
				}
			}
			return c
		}},
		{scenarios.DefectRehash, 3, func(t *testing.T, src, dst map[int][]rec) int {
			// every record lands in fnv(key) % 3, in its key's order
			for p := range parts {
				for _, r := range dst[p] {
					h := fnv.New32a()
					h.Write([]byte(r.Key))
					if want := int(h.Sum32() % 3); want != p {
						t.Errorf("key %q in partition %d, want %d", r.Key, p, want)
					}
				}
			}
			if inv := inversions(src, dst); inv != 0 {
				t.Errorf("rehash broke the order of %d records of their key", inv)
			}
			return 0
		}},
	}
	for _, c := range cases {
		t.Run(c.defect, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, parts)
			produce(t, e.src, srcTopic, []int{0, 1, 2, 3}, 0, per)
			m := e.mirror(t, scenarios.Defect{Name: c.defect, Every: c.every})
			start(t, m)
			waitTotal(t, e.dst, dstTopic, n, 30*time.Second)
			stop(t, m)
			dst := readAll(t, e.dst, dstTopic)
			if got := total(dst); got != n {
				t.Fatalf("target holds %d records, want exactly %d", got, n)
			}
			seen := c.check(t, readAll(t, e.src, srcTopic), dst)
			counted := int(defectCount(t, e.reg, c.defect))
			if seen != counted {
				t.Errorf("%s: %d records affected on the target, the mirror counted %d", c.defect, seen, counted)
			}
			if c.defect != scenarios.DefectRehash && (counted < n/c.every-parts*3 || counted > n/c.every) {
				t.Errorf("%s every %d counted %d of %d records", c.defect, c.every, counted, n)
			}
		})
	}
}
