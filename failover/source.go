package failover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/kmt-dev/kafka-mirror-tester/internal/wait"
)

// sourceWaitDefault bounds how long the failover point keeps trying to read
// the source's partitions and the group's committed offsets while a source
// broker is down. Kafka fences a dead broker after broker.session.timeout.ms
// (9 s by default) and only then moves its partitions and the groups it
// coordinates to live replicas; 60 s is Kafka's default.api.timeout.ms, what
// its own admin clients (MirrorMaker 2's too) give one request. So the
// drill waits out a fencing several times over, and an outage longer than
// that makes it incomplete with the reason instead of stalling the run.
const sourceWaitDefault = 60 * time.Second

const (
	// sourceAttempt bounds one attempt, so a broker that hangs (paused, not
	// refusing) does not use up the whole wait in one request.
	sourceAttempt = 10 * time.Second
	// sourceRetry is the pause between attempts.
	sourceRetry = 500 * time.Millisecond
)

// readSourceCommitted records every partition of the source topics and the
// group's committed offset on each. Neither needs a partition's leader: the
// partitions come from metadata (any live broker answers) and the offsets
// from the group's coordinator. (It listed end offsets before, which it did
// not use and which need every leader: one killed broker not yet fenced
// made the drill incomplete with "connection refused".) A dead broker can
// still be the coordinator, or the seed the client asks: attempts are
// retried, each with a new client (fresh metadata and coordinator), until
// sourceWait; what was read is kept, only what failed is asked again. What
// is still missing then is the error: the topics that could not be listed,
// or the group's coordinator error, or the partitions whose committed
// offset could not be read and why.
func (d *Drill) readSourceCommitted(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(ctx, d.sourceWait)
	defer cancel()
	tgtOf := map[string]string{}
	for _, p := range d.cfg.Topics {
		tgtOf[p.Source] = p.Target
	}
	r := sourceRead{group: d.cfg.Spec.Group, topics: kadm.TopicDetails{}, committed: kadm.OffsetResponses{}}
	for attempt := 1; ; attempt++ {
		err := r.once(wctx, d, tgtOf)
		if err == nil {
			break
		}
		if !wait.Until(wctx, time.Now().Add(sourceRetry)) {
			if ctx.Err() != nil {
				return fmt.Errorf("interrupted while reading the source at the failover point: %w", err)
			}
			return fmt.Errorf("%w (tried %d times for %v: a source broker down longer than that? the drill needs every source partition and the group's committed offsets at the failover point)", err, attempt, d.sourceWait)
		}
		d.log.Warn("failover drill: reading the source at the failover point failed; retrying", "attempt", attempt, "err", err)
	}
	r.warnLeaderless(d)
	d.mu.Lock()
	defer d.mu.Unlock()
	r.topics.EachPartition(func(pd kadm.PartitionDetail) {
		p := d.partition(TP{pd.Topic, pd.Partition}, tgtOf[pd.Topic])
		if c, ok := r.committed.Lookup(pd.Topic, pd.Partition); ok && c.At >= 0 {
			p.SourceCommitted = c.At
		}
	})
	return nil
}

// sourceRead is what readSourceCommitted has read so far.
type sourceRead struct {
	group     string
	topics    kadm.TopicDetails    // the source topics listed without error
	committed kadm.OffsetResponses // the group's offsets read without error
	failed    map[TP]error         // partitions whose offset fetch errored last time
}

// once is one attempt: it lists the source topics not listed yet and reads
// the group's committed offsets if some are still unread.
func (r *sourceRead) once(ctx context.Context, d *Drill, tgtOf map[string]string) error {
	cl, err := d.cfg.Source.NewKgo()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	actx, cancel := context.WithTimeout(ctx, sourceAttempt)
	defer cancel()
	var missing []string
	for t := range tgtOf {
		if _, ok := r.topics[t]; !ok {
			missing = append(missing, t)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		tds, err := adm.ListTopics(actx, missing...)
		var bad []string
		for t, td := range tds {
			if td.Err != nil || len(td.Partitions) == 0 {
				bad = append(bad, fmt.Sprintf("%s: %v", t, td.Err))
				continue
			}
			r.topics[t] = td
		}
		if err != nil {
			return fmt.Errorf("listing the source topics %v: %w", missing, err)
		}
		if len(bad) > 0 {
			slices.Sort(bad)
			return fmt.Errorf("listing the source topics: %s", strings.Join(bad, "; "))
		}
	}
	if r.failed != nil && len(r.failed) == 0 {
		return nil // every offset read
	}
	offs, err := adm.FetchOffsets(actx, r.group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		offs, err = nil, nil // the group committed nothing: the judge says so
	}
	if err != nil {
		return fmt.Errorf("reading group %s's committed offsets on the source (from its coordinator): %w", r.group, err)
	}
	r.failed = map[TP]error{}
	r.topics.EachPartition(func(pd kadm.PartitionDetail) {
		tp := TP{pd.Topic, pd.Partition}
		if _, done := r.committed.Lookup(pd.Topic, pd.Partition); done {
			return
		}
		o, ok := offs.Lookup(pd.Topic, pd.Partition)
		switch {
		case !ok:
		case o.Err != nil:
			r.failed[tp] = o.Err
		default:
			r.committed.Add(o)
		}
	})
	if len(r.failed) > 0 {
		var parts []string
		for tp, e := range r.failed {
			parts = append(parts, fmt.Sprintf("%s[%d]: %v", tp.Topic, tp.Partition, e))
		}
		slices.Sort(parts)
		return fmt.Errorf("group %s's committed offsets on the source could not be read for %d partitions: %s", r.group, len(parts), strings.Join(parts, "; "))
	}
	return nil
}

// warnLeaderless names the source partitions that had no live leader at
// the failover point. The drill does not need them (the group's offsets are
// the coordinator's), so they do not make it incomplete; but the mirror
// cannot copy them then, which explains re-reads or losses the run reports.
func (r *sourceRead) warnLeaderless(d *Drill) {
	var none []string
	r.topics.EachPartition(func(pd kadm.PartitionDetail) {
		if pd.Leader < 0 || pd.Err != nil {
			none = append(none, fmt.Sprintf("%s[%d] (%v, offline replicas %v)", pd.Topic, pd.Partition, pd.Err, pd.OfflineReplicas))
		}
	})
	if len(none) > 0 {
		slices.Sort(none)
		d.log.Warn("failover drill: source partitions without a live leader at the failover point", "partitions", none)
	}
}
