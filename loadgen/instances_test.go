package loadgen

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
)

// Three instances of one run (an Indexed Job's pods) write disjoint streams
// under their own epochs: instance i has streams 4i..4i+3, every record's
// key is its stream's, and no key is shared between instances.
func TestInstancesWriteTheirOwnStreams(t *testing.T) {
	_, bs := newCluster(t, 1, "orders")
	const instances, streams, count = 3, 4, 120
	leds := make([]*ledger.Ledger, instances)
	epochs := make([]uint32, instances)
	var wg sync.WaitGroup
	for i := range instances {
		leds[i] = ledger.New()
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := Run(context.Background(), Config{Bootstrap: bs, Topics: []string{"orders"}, RunID: "run-1", Instance: i, Instances: instances,
				Streams: streams, Count: count, Ledger: leds[i], SkipRunIDCheck: true, Logger: quiet()})
			if err != nil || st.Acked != count {
				t.Errorf("instance %d: acked %d of %d, err %v", i, st.Acked, count, err)
			}
			epochs[i] = st.Epoch
		}()
	}
	wg.Wait()
	instanceOf := map[uint32]int{}
	for i, e := range epochs {
		instanceOf[e] = i
	}
	if len(instanceOf) != instances {
		t.Fatalf("epochs %v are not distinct", epochs)
	}
	for i, l := range leds {
		n := 0
		l.View(func(k ledger.StreamKey, s *ledger.Stream) {
			n++
			if int(k.Stream)/streams != i || k.Epoch != epochs[i] || s.Acked.Len() != count/streams {
				t.Errorf("instance %d's ledger has %+v with %d acked, want streams %d..%d of epoch %d, %d each", i, k, s.Acked.Len(), i*streams, i*streams+streams-1, epochs[i], count/streams)
			}
		})
		if n != streams {
			t.Errorf("instance %d's ledger has %d streams, want %d", i, n, streams)
		}
	}
	keyOwner := map[string]int{}
	for _, r := range readAll(t, bs, "orders", instances*count) {
		i := instanceOf[r.rec.Epoch]
		if int(r.rec.Stream)/streams != i || r.key != string(wire.Key(r.rec.Stream)) {
			t.Errorf("record of instance %d: stream %d under key %q", i, r.rec.Stream, r.key)
		}
		if o, ok := keyOwner[r.key]; ok && o != i {
			t.Errorf("key %q written by instances %d and %d", r.key, o, i)
		}
		keyOwner[r.key] = i
	}
	if len(keyOwner) != instances*streams {
		t.Errorf("%d distinct keys, want %d", len(keyOwner), instances*streams)
	}
}

func TestInstanceOutOfRangeIsRefused(t *testing.T) {
	for _, c := range []struct{ instance, instances int }{{1, 1}, {3, 3}, {-1, 2}, {0, -1}} {
		cfg := Config{Bootstrap: "127.0.0.1:1", Topics: []string{"a"}, RunID: "r", Instance: c.instance, Instances: c.instances}
		if err := cfg.check(); err == nil || !strings.Contains(err.Error(), "instance") {
			t.Errorf("instance %d of %d: err %v, want a refusal naming the instance", c.instance, c.instances, err)
		}
	}
}

// Three instances of one launch share a run id (instances 1 and 2 wait for
// instance 0's claim); the ledger they publish reads back complete only
// with all three; a later launch reusing the run id is refused by its
// instance 0 and by its other instances alike.
func TestInstancesOfOneLaunchShareTheRunIDAnotherLaunchIsRefused(t *testing.T) {
	_, bs := newCluster(t, 1, "orders")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := func(run, launch string, i, n int) Config {
		return Config{Bootstrap: bs, Topics: []string{"orders"}, RunID: run, Instance: i, Instances: n, Launch: launch, LedgerTopic: ledger.DefaultTopic,
			Streams: 2, Count: 60, Logger: quiet()}
	}
	runAll := func(run, launch string, n int, which ...int) []error {
		errs := make([]error, len(which))
		var wg sync.WaitGroup
		for k, i := range which {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i > 0 {
					time.Sleep(time.Duration(100*(3-i)) * time.Millisecond) // the others start before instance 0, too
				}
				_, errs[k] = Run(ctx, cfg(run, launch, i, n))
			}()
		}
		wg.Wait()
		return errs
	}
	for i, err := range runAll("run-1", "launch-a", 3, 2, 1, 0) {
		if err != nil {
			t.Fatalf("instance %d of launch-a: %v", 2-i, err)
		}
	}
	led := ledger.New()
	if err := ledger.ReadTopic(ctx, bs, nil, ledger.DefaultTopic, "run-1", led); err != nil {
		t.Fatal(err)
	}
	epochs := map[uint32]bool{}
	led.View(func(k ledger.StreamKey, _ *ledger.Stream) { epochs[k.Epoch] = true })
	if acked, _ := led.Totals(); acked != 180 || len(epochs) != 3 || len(led.Problems()) > 0 {
		t.Errorf("ledger of 3 instances: %d acked over %d epochs, problems %v; want 180 over 3", acked, len(epochs), led.Problems())
	}
	for i, err := range runAll("run-1", "launch-b", 2, 0, 1) {
		if !errors.Is(err, ErrRunIDInUse) {
			t.Errorf("instance %d of launch-b reusing run-1: err %v, want ErrRunIDInUse", i, err)
		}
	}

	// Two of three instances done: the ledger is not complete.
	for _, err := range runAll("run-2", "launch-c", 3, 0, 1) {
		if err != nil {
			t.Fatal(err)
		}
	}
	rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
	defer rcancel()
	err := ledger.ReadTopic(rctx, bs, nil, ledger.DefaultTopic, "run-2", ledger.New())
	if err == nil || !strings.Contains(err.Error(), "2 of 3 loadgen instances done") {
		t.Errorf("reading a ledger with 2 of 3 instances done: err %v, want one saying 2 of 3 are done", err)
	}
}

// A run's total rate and count are shared out: 100 records over 3
// instances are 34, 33 and 33 (sum 100), the rate a third each.
func TestInstancesShareTheTotals(t *testing.T) {
	var sum int64
	for i := range 3 {
		rate, count := Config{Rate: 300, Count: 100, Instance: i, Instances: 3}.share()
		if rate != 100 || count != []int64{34, 33, 33}[i] {
			t.Errorf("instance %d: rate %v count %d", i, rate, count)
		}
		sum += count
	}
	if sum != 100 {
		t.Errorf("shares add up to %d, want 100", sum)
	}
	if rate, count := (Config{Rate: 300, Count: 100}).share(); rate != 300 || count != 100 {
		t.Errorf("one loadgen: rate %v count %d, want all of it", rate, count)
	}
}
