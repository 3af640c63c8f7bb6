package loadgen

import (
	"context"
	"strings"
	"sync"
	"testing"

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
