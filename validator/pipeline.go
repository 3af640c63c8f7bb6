package validator

import (
	"runtime"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"
)

// targetPipe verifies the target reader's polls beside its polling: the
// reader hands each partition of a poll to a verifier goroutine and polls
// again at once, so franz-go fetches the next data (and the broker builds
// it) while this poll is verified. Before, the reader verified a poll
// before polling again: franz-go keeps at most one fetch per broker
// buffered, so fetching stopped while verifying and the second core idled
// (BenchmarkValidator: 1.5 of 2 cores busy).
//
// A partition always goes to the same verifier, which takes its polls in
// order, so each partition's records reach the tracker in offset order as
// before; verifiers of different partitions run in parallel (decoding
// outside the tracker's lock, observeTarget). A partition's read position
// (reader.pos, what the drain's caughtUp checks) advances only once its
// records are verified. Each verifier queues at most pipeDepth partition
// polls; when it is full the reader waits, so memory stays a few polls.
type targetPipe struct {
	v      *Validator
	rd     *reader
	queues []chan pipeItem
	assign map[partKey]int // partition -> verifier, round robin on first sight
	next   int
	wg     sync.WaitGroup
}

type pipeItem struct {
	p   kgo.FetchTopicPartition
	now time.Time // the poll's read time
}

// pipeDepth is how many partition polls a verifier may have waiting.
const pipeDepth = 2

func newTargetPipe(v *Validator, rd *reader) *targetPipe {
	tp := &targetPipe{v: v, rd: rd, assign: map[partKey]int{}}
	for range max(1, runtime.GOMAXPROCS(0)) {
		q := make(chan pipeItem, pipeDepth)
		tp.queues = append(tp.queues, q)
		tp.wg.Add(1)
		go tp.verify(q)
	}
	return tp
}

// send queues the partitions of one poll read at now.
func (tp *targetPipe) send(parts []kgo.FetchTopicPartition, now time.Time) {
	for _, p := range parts {
		pk := partKey{p.Topic, int(p.Partition)}
		w, ok := tp.assign[pk]
		if !ok {
			w = tp.next % len(tp.queues)
			tp.next++
			tp.assign[pk] = w
		}
		tp.queues[w] <- pipeItem{p: p, now: now}
	}
}

// close lets the verifiers finish what is queued and waits for them.
func (tp *targetPipe) close() {
	for _, q := range tp.queues {
		close(q)
	}
	tp.wg.Wait()
}

func (tp *targetPipe) verify(q <-chan pipeItem) {
	defer tp.wg.Done()
	block := make([]decoded, 0, targetBlock)
	var dec wire.Decoder
	for it := range q {
		tp.v.observeTarget(it.p, block, &dec, it.now)
		tp.rd.advance(it.p)
	}
}

// advance moves rd's read position of p past its records.
func (rd *reader) advance(p kgo.FetchTopicPartition) {
	last := p.Records[len(p.Records)-1].Offset
	rd.mu.Lock()
	rd.pos[partKey{p.Topic, int(p.Partition)}] = last + 1
	rd.mu.Unlock()
}
