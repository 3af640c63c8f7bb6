package validator_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/loadgen"
	"github.com/kmt-dev/kafka-mirror-tester/validator"
)

// BenchmarkShardedVsSingleValidator: the combined produce rate of 3 loadgen
// instances against one loadgen, and the combined read-and-judge rate of 3
// validator shards (+ the merge) against one validator, in the same run, on
// the same records: 3 loadgen instances fill one embedded cluster (source and
// target at once: an identity mirror) with records of 1 KB, then each side
// reads and judges all of them from the start. Reported: records per second
// of each and the ratio sharded/single. On a machine with few cores the
// shards share them, so the ratio says what sharding costs or gains here,
// not on separate pods.
func BenchmarkShardedVsSingleValidator(b *testing.B) {
	const records, shards, loadgens = 60000, 3, 3
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := startCluster(b, ctx, "both", 6)
	run := "bench-shard"
	// One loadgen produces the records, then three instances produce as
	// many together: the combined produce rate of N instances against one.
	if err := c.CreateTopic(ctx, "single", 6); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	if _, err := loadgen.Run(ctx, loadgen.Config{Bootstrap: c.Bootstrap(), Dial: c.DirectDial, Topics: []string{"single"}, RunID: "bench-single",
		MessageSize: 1024, Streams: 16, Count: records, SkipRunIDCheck: true, Logger: quietLog()}); err != nil {
		b.Fatal(err)
	}
	oneLoadgen := time.Since(start)
	led := ledger.New()
	var wg sync.WaitGroup
	var mu sync.Mutex
	start = time.Now()
	for i := range loadgens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			own := ledger.New()
			if _, err := loadgen.Run(ctx, loadgen.Config{Bootstrap: c.Bootstrap(), Dial: c.DirectDial, Topics: []string{"orders"}, RunID: run, Instance: i, Instances: loadgens,
				MessageSize: 1024, Streams: 16, Count: records / loadgens, Ledger: own, SkipRunIDCheck: true, Logger: quietLog()}); err != nil {
				b.Error(err)
			}
			mu.Lock()
			defer mu.Unlock()
			own.View(func(k ledger.StreamKey, s *ledger.Stream) { led.AddRanges(k, s.Acked.Ranges(), s.Failed.Ranges()) })
		}()
	}
	wg.Wait()
	led.MarkDone()
	nLoadgens := time.Since(start)
	cfg := func(shard, n int) validator.Config {
		return validator.Config{TargetBootstrap: c.Bootstrap(), SourceBootstrap: c.Bootstrap(), Topics: []validator.TopicPair{{Source: "orders", Target: "orders"}},
			RunID: run, Ledger: led, Shard: shard, Shards: n, Logger: quietLog()}
	}
	var single, sharded time.Duration
	b.ResetTimer()
	for range b.N {
		start = time.Now()
		v, err := validator.New(cfg(0, 0))
		if err != nil {
			b.Fatal(err)
		}
		if err := v.Start(ctx); err != nil {
			b.Fatal(err)
		}
		res, err := v.Drain(ctx, time.Minute)
		if err != nil || res.Counts.Received != records {
			b.Fatalf("single validator: received %d of %d, err %v", res.Counts.Received, records, err)
		}
		single += time.Since(start)

		start = time.Now()
		states := make([]*validator.ShardState, shards)
		errs := make([]error, shards)
		for i := range shards {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := validator.New(cfg(i, shards))
				if err == nil {
					err = v.Start(ctx)
				}
				if err == nil {
					states[i], err = v.DrainShard(ctx, time.Minute)
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
		merged, err := validator.Merge(states)
		if err != nil || merged.Counts != res.Counts {
			b.Fatalf("merged %+v, single %+v, err %v", merged.Counts, res.Counts, err)
		}
		sharded += time.Since(start)
		b.Logf("drain seconds: single %.2f, shards %.2f %.2f %.2f", res.DrainSeconds, states[0].DrainSeconds, states[1].DrainSeconds, states[2].DrainSeconds)
	}
	n := float64(b.N * records)
	b.ReportMetric(n/single.Seconds(), "single_rec/s")
	b.ReportMetric(n/sharded.Seconds(), "sharded3_rec/s")
	b.ReportMetric(single.Seconds()/sharded.Seconds(), "sharded/single")
	b.ReportMetric(records/oneLoadgen.Seconds(), "loadgen1_rec/s")
	b.ReportMetric(records/nLoadgens.Seconds(), "loadgen3_rec/s")
}
