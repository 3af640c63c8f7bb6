package validator_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/embedded"
	"github.com/kmt-dev/kafka-mirror-tester/internal/mirror"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/metrics"
	"github.com/kmt-dev/kafka-mirror-tester/internal/testkit"
	"github.com/kmt-dev/kafka-mirror-tester/loadgen"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
	"github.com/kmt-dev/kafka-mirror-tester/validator"
)

// shardRun is one run on embedded clusters with N loadgens, the reference
// mirror (with a defect) and, reading the same clusters at the same time,
// one validator and M shard validators.
type shardRun struct {
	loadgens, shards, partitions int
	rate                         float64
	load                         time.Duration
	defect                       *scenarios.Defect
	isolation                    string
}

type shardOutcome struct {
	single, merged *validator.Result
	states         []*validator.ShardState
	// the metrics of the single validator and of every shard
	singleReg     *prometheus.Registry
	shardRegs     []*prometheus.Registry
	defectRecords uint64
	acked         uint64
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

func startCluster(t testing.TB, ctx context.Context, name string, partitions int) *embedded.Cluster {
	t.Helper()
	c, err := embedded.Start(ctx, embedded.Options{Name: name, Brokers: 1, DataDir: t.TempDir(), Logger: quietLog()})
	if err != nil {
		t.Fatalf("%s cluster: %v", name, err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.CreateTopic(ctx, "orders", partitions); err != nil {
		t.Fatalf("topic on %s: %v", name, err)
	}
	return c
}

func (r shardRun) run(t *testing.T) shardOutcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src := startCluster(t, ctx, "source", r.partitions)
	dst := startCluster(t, ctx, "target", r.partitions)
	run := fmt.Sprintf("shard-e2e-%d", time.Now().UnixNano())
	led := ledger.New() // all loadgens' acks, done once every one finished
	cfg := func(shard, shards int) validator.Config {
		return validator.Config{TargetBootstrap: dst.Bootstrap(), SourceBootstrap: src.Bootstrap(), SourceDial: src.DirectDial,
			Topics: []validator.TopicPair{{Source: "orders", Target: "orders"}}, RunID: run, Ledger: led, Isolation: r.isolation,
			Shard: shard, Shards: shards, Logger: quietLog()}
	}
	var out shardOutcome
	out.singleReg = prometheus.NewRegistry()
	sc := cfg(0, 0)
	sc.Registerer = out.singleReg
	single, err := validator.New(sc)
	if err != nil {
		t.Fatal(err)
	}
	shards := make([]*validator.Validator, r.shards)
	for i := range shards {
		out.shardRegs = append(out.shardRegs, prometheus.NewRegistry())
		c := cfg(i, r.shards)
		c.Registerer = out.shardRegs[i]
		if shards[i], err = validator.New(c); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range append([]*validator.Validator{single}, shards...) {
		if err := v.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	mc := mirror.Config{SourceBootstrap: src.Bootstrap(), TargetBootstrap: dst.Bootstrap(), Topics: []mirror.TopicMap{{Source: "orders", Target: "orders"}},
		Registerer: reg, Logger: quietLog()}
	if r.defect != nil {
		mc.Defects = []scenarios.Defect{*r.defect}
	}
	m, err := mirror.NewReference(mc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var mu sync.Mutex
	for i := range r.loadgens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := ledger.New()
			st, err := loadgen.Run(ctx, loadgen.Config{Bootstrap: src.Bootstrap(), Dial: src.DirectDial, Topics: []string{"orders"}, RunID: run, Instance: i, Instances: r.loadgens,
				Rate: r.rate / float64(r.loadgens), MessageSize: 256, Streams: 8, Duration: r.load, Ledger: own, SkipRunIDCheck: true, Logger: quietLog()})
			if err != nil {
				t.Errorf("loadgen %d: %v", i, err)
			}
			mu.Lock()
			defer mu.Unlock()
			out.acked += st.Acked
			own.View(func(k ledger.StreamKey, s *ledger.Stream) { led.AddRanges(k, s.Acked.Ranges(), s.Failed.Ranges()) })
		}()
	}
	wg.Wait()
	led.MarkDone()

	const drain = 8 * time.Second
	var derr error
	wg.Add(1 + len(shards))
	go func() {
		defer wg.Done()
		out.single, derr = single.Drain(ctx, drain)
	}()
	out.states = make([]*validator.ShardState, len(shards))
	serr := make([]error, len(shards))
	for i, v := range shards {
		go func() {
			defer wg.Done()
			out.states[i], serr[i] = v.DrainShard(ctx, drain)
		}()
	}
	wg.Wait()
	if derr != nil {
		t.Fatalf("single drain: %v", derr)
	}
	for i, err := range serr {
		if err != nil {
			t.Fatalf("shard %d drain: %v", i, err)
		}
	}
	if out.merged, err = validator.Merge(out.states); err != nil {
		t.Fatalf("merge: %v", err)
	}
	if r.defect != nil {
		if out.defectRecords, err = mirror.DefectRecords(reg, r.defect.Name); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// N loadgens, one validator and M shard validators on the same runs: the
// merged verdict equals the single validator's, counts exactly, clean and
// with each reference-mirror defect (whose own count must show in both).
// Every shard reads only its share of the partitions.
func TestShardedValidatorsEqualOneOnDefects(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end runs; skipped with -short")
	}
	const every = 40
	cases := []struct {
		name      string
		defect    *scenarios.Defect
		isolation string
		want      func(d uint64) validator.Counts // anomalies only (lost = lost + unseen)
	}{
		{"clean", nil, "", func(uint64) validator.Counts { return validator.Counts{} }},
		{"drop", &scenarios.Defect{Name: scenarios.DefectDrop, Every: every}, "", func(d uint64) validator.Counts { return validator.Counts{Lost: d} }},
		{"duplicate", &scenarios.Defect{Name: scenarios.DefectDuplicate, Every: every}, "", func(d uint64) validator.Counts { return validator.Counts{Duplicate: d} }},
		{"reorder", &scenarios.Defect{Name: scenarios.DefectReorder, Every: every}, "", func(d uint64) validator.Counts { return validator.Counts{Reordered: d} }},
		{"corrupt", &scenarios.Defect{Name: scenarios.DefectCorrupt, Every: every}, "", func(d uint64) validator.Counts { return validator.Counts{Corrupt: d, Lost: d} }},
		{"key scatter (split over shards)", &scenarios.Defect{Name: scenarios.DefectKeyScatter, Every: every}, "", func(d uint64) validator.Counts { return validator.Counts{Split: d} }},
		{"aborted reads", &scenarios.Defect{Name: scenarios.DefectTxnAbortResend, Every: 5}, validator.ReadUncommitted, func(d uint64) validator.Counts { return validator.Counts{AbortedRead: d} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Each case has its own clusters, mirror and validators, and
			// its checks are counts: two at a time (go test's -parallel),
			// since the lossy cases spend their 8 s drain waiting.
			t.Parallel()
			o := shardRun{loadgens: 3, shards: 3, partitions: 6, rate: 1500, load: 3 * time.Second, defect: tc.defect, isolation: tc.isolation}.run(t)
			s, m := o.single, o.merged
			t.Logf("acked %d; single %+v truncated %d; mirror's defect count %d; shard drains %v/%v/%v",
				o.acked, s.Counts, s.Truncated, o.defectRecords, o.states[0].DrainComplete, o.states[1].DrainComplete, o.states[2].DrainComplete)
			if m.Counts != s.Counts || m.Truncated != s.Truncated || m.OtherRuns != s.OtherRuns || m.Streams != s.Streams {
				t.Errorf("merged verdict differs from the single validator's\nmerged %+v truncated %d other %d streams %d\nsingle %+v truncated %d other %d streams %d",
					m.Counts, m.Truncated, m.OtherRuns, m.Streams, s.Counts, s.Truncated, s.OtherRuns, s.Streams)
			}
			if m.Latency.Count != s.Latency.Count || m.NegativeLatency != s.NegativeLatency || m.SourceChecked != s.SourceChecked || m.TargetUnread != s.TargetUnread {
				t.Errorf("merged first arrivals %d (negative %d), source checked %v, unread %v; single %d (%d), %v, %v",
					m.Latency.Count, m.NegativeLatency, m.SourceChecked, m.TargetUnread, s.Latency.Count, s.NegativeLatency, s.SourceChecked, s.TargetUnread)
			}
			c := s.Counts
			got := validator.Counts{Lost: c.Lost + c.Unseen, Duplicate: c.Duplicate, Reordered: c.Reordered, Corrupt: c.Corrupt, SourceLost: c.SourceLost,
				Foreign: c.Foreign, Redelivery: c.Redelivery, AbortedRead: c.AbortedRead, IdentityMismatch: c.IdentityMismatch, Split: c.Split}
			if want := tc.want(o.defectRecords); got != want {
				t.Errorf("anomalies %+v, the mirror's own count says %+v", got, want)
			}
			if tc.defect != nil && o.defectRecords == 0 {
				t.Error("the defect touched no record: the run proves nothing")
			}
			if c.Acked != o.acked || c.Acked == 0 {
				t.Errorf("judged %d acked, the loadgens acked %d", c.Acked, o.acked)
			}
			// The shards' metrics add up to the run's: what arrived, and
			// what is missing as the live view counts it. Not when the
			// mirror moves records to another shard's partitions (key
			// scatter): until the merge, the shard that read them in the
			// source counts them missing (only the merged verdict knows).
			sum := func(name string, labels map[string]string) (shards float64) {
				for _, reg := range o.shardRegs {
					shards += testkit.MustMetricSum(t, reg, name, labels)
				}
				return shards
			}
			for _, m := range []struct {
				name   string
				labels map[string]string
				want   float64
			}{
				// (the received counter sums right in every case)
				{metrics.ValidatorReceived, nil, float64(s.Counts.Received)},
				{metrics.ValidatorMissing, map[string]string{metrics.LabelCategory: validator.CatLost}, float64(s.Counts.Lost)},
				{metrics.ValidatorMissing, map[string]string{metrics.LabelCategory: validator.CatUnseen}, float64(s.Counts.Unseen)},
			} {
				if m.labels != nil && tc.defect != nil && tc.defect.Name == scenarios.DefectKeyScatter {
					continue
				}
				if got := sum(m.name, m.labels); got != m.want {
					t.Errorf("%s%v summed over the shards: %v, want %v", m.name, m.labels, got, m.want)
				}
			}
			for i, st := range o.states {
				if len(st.Read) == 0 || len(st.Read) > 2 {
					t.Errorf("shard %d read %d target partitions, want its 2 of 6", i, len(st.Read))
				}
				for _, ps := range st.Read {
					if ps.Partition%3 != i {
						t.Errorf("shard %d read target partition %d, another shard's", i, ps.Partition)
					}
				}
			}
		})
	}
}
