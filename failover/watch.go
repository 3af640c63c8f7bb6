package failover

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/mirror/checkpoint"
)

// watchEvery is how often the watcher reads the group's synced offsets.
const watchEvery = time.Second

// watcher follows, until the group resumes on the target, every offset the
// mirror gives the group there: each checkpoint record and the group's
// committed (synced) offsets. A translated offset lower than one the
// mirror gave before for the same partition is counted as backwards (the
// group's own committed offsets on the source never go back, so a drop is
// the mirror's: a restart that lost its state, say).
type watcher struct {
	d      *Drill
	cps    *kgo.Client
	adm    *kadm.Client
	admCl  *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	lastCP     map[TP]int64
	lastSynced map[TP]int64
}

func startWatcher(d *Drill) (*watcher, error) {
	w := &watcher{d: d, lastCP: map[TP]int64{}, lastSynced: map[TP]int64{}, done: make(chan struct{})}
	var err error
	w.cps, err = d.cfg.Target.NewKgo(kgo.ConsumeTopics(d.cfg.CheckpointsTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMaxAge(2*time.Second), kgo.MetadataMinAge(250*time.Millisecond), kgo.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return nil, fmt.Errorf("failover drill: reader of %s on the target: %w", d.cfg.CheckpointsTopic, err)
	}
	w.admCl, err = d.cfg.Target.NewKgo()
	if err != nil {
		w.cps.Close()
		return nil, fmt.Errorf("failover drill: admin client of the target: %w", err)
	}
	w.adm = kadm.NewClient(w.admCl)
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go func() { defer close(w.done); w.run(ctx) }()
	return w, nil
}

func (w *watcher) run(ctx context.Context) {
	last := time.Time{}
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fs := w.cps.PollFetches(pctx)
		cancel()
		fs.EachRecord(w.checkpointRecord)
		if time.Since(last) >= watchEvery {
			last = time.Now()
			w.synced(ctx)
		}
	}
}

// checkpointRecord notes one record of the checkpoints topic.
func (w *watcher) checkpointRecord(r *kgo.Record) {
	c, err := checkpoint.Decode(r.Key, r.Value)
	d := w.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.out.BadCheckpoints++
		return
	}
	if c.Group != d.cfg.Spec.Group {
		return
	}
	src, ok := d.srcTopic[c.Topic]
	if !ok {
		return
	}
	tp := TP{src, c.Partition}
	w.note(tp, c.Topic, w.lastCP, c.Downstream, "checkpoint")
}

// synced reads the group's committed offsets on the target (while the
// group is not there, only the mirror writes them).
func (w *watcher) synced(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	offs, err := w.adm.FetchOffsets(cctx, w.d.cfg.Spec.Group)
	if err != nil {
		return // the next round tries again
	}
	d := w.d
	d.mu.Lock()
	defer d.mu.Unlock()
	offs.Each(func(o kadm.OffsetResponse) {
		src, ok := d.srcTopic[o.Topic]
		if !ok || o.Err != nil || o.At < 0 {
			return
		}
		w.note(TP{src, o.Partition}, o.Topic, w.lastSynced, o.At, "synced")
	})
}

// note records a translated offset and counts a drop (callers hold d.mu).
func (w *watcher) note(tp TP, target string, last map[TP]int64, off int64, from string) {
	p := w.d.partition(tp, target)
	if prev, ok := last[tp]; ok && off < prev {
		p.Backwards++
		p.BackwardsBy = max(p.BackwardsBy, prev-off)
		w.d.log.Warn("failover drill: the mirror's translated offset went backwards", "from", from, "topic", tp.Topic, "partition", tp.Partition, "was", prev, "now", off)
	}
	last[tp] = off
}

// stop ends the watcher (idempotent).
func (w *watcher) stop() {
	if w.cancel == nil {
		return
	}
	w.cancel()
	<-w.done
	w.cancel = nil
	w.cps.Close()
	w.admCl.Close()
}
