package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	bootlist "github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/intervals"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/logscan"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// ReadTopic reads every partition of the ledger topic from the start and
// merges the entries of runID into into. It returns once every loadgen
// instance (epoch) of the run that it saw has written its Done entry and the
// run's partition was read to its end; into is then MarkDone'd and, if the
// entries do not add up to what the Done entries say, carries the reasons in
// Problems. It does not stop at the first Done entry: a run id used twice
// would otherwise be judged on part of its ledger. Entries of other runs are
// ignored. It ends with an error when ctx ends first.
func ReadTopic(ctx context.Context, bootstrap string, dial DialFunc, topic, runID string, into *Ledger) error {
	return ReadTopicWith(ctx, kafkaclient.Config{Brokers: bootlist.Split(bootstrap), Dial: kafkaclient.DialFunc(dial)}, topic, runID, into)
}

// ReadTopicWith is ReadTopic on a cluster reached as client says (TLS,
// SASL: internal/kafkaclient).
func ReadTopicWith(ctx context.Context, client kafkaclient.Config, topic, runID string, into *Ledger) error {
	if topic == "" {
		topic = DefaultTopic
	}
	bootstrap := strings.Join(client.Brokers, ",")
	if len(client.Brokers) == 0 {
		return errors.New("ledger topic reader: no bootstrap address")
	}
	client.ClientID = "kmt-ledger-reader"
	cl, err := client.NewKgo(
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.MetadataMinAge(250*time.Millisecond), // notice a topic created after we started
	)
	if err != nil {
		return fmt.Errorf("ledger topic reader: client for %s: %w", bootstrap, err)
	}
	defer cl.Close()
	acc := newAccount(runID)
	var lastErr error
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return fmt.Errorf("ledger topic %q on %s: done entry of run %q not seen before %w (%s; last fetch error: %v); is the loadgen still running?",
				topic, bootstrap, runID, ctx.Err(), acc.progress(), lastErr)
		}
		fs.EachError(func(t string, p int32, err error) { lastErr = fmt.Errorf("%s[%d]: %w", t, p, err) })
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			for _, r := range p.Records {
				acc.add(r, into)
			}
			acc.noteEnd(p)
		})
		if acc.complete() {
			for _, why := range acc.check(into) {
				into.AddProblem(why)
			}
			into.MarkDone()
			return nil
		}
	}
}

// account follows one run's entries while the ledger topic is read.
type account struct {
	run       string
	partition int32 // where the run's entries are (-1: none seen yet)
	atEnd     bool  // that partition was read to its high watermark
	epochs    map[uint32]*epochAccount
	seen, bad int
	instances int // the most loadgen instances an entry announced
}

type epochAccount struct {
	entries intervals.Set // indices (N) of the data entries read
	done    *Entry
	legacy  bool // version 1 entries: nothing to add up
}

func newAccount(run string) *account {
	return &account{run: run, partition: -1, epochs: map[uint32]*epochAccount{}}
}

func (a *account) add(r *kgo.Record, into *Ledger) {
	if string(r.Key) != a.run {
		return
	}
	a.partition = r.Partition
	var e Entry
	if err := json.Unmarshal(r.Value, &e); err != nil || (e.V != EntryVersion && e.V != 1) || e.Run != a.run {
		a.bad++
		return
	}
	a.seen++
	a.instances = max(a.instances, e.Instances)
	if e.Claim {
		return // instance 0's claim: no data, no epoch of its own yet
	}
	ea := a.epochs[e.Epoch]
	if ea == nil {
		ea = &epochAccount{}
		a.epochs[e.Epoch] = ea
	}
	ea.legacy = ea.legacy || e.V == 1
	if e.Done {
		ea.done = &e
		return
	}
	ea.entries.Add(e.N)
	into.AddAllRanges(StreamKey{Topic: e.Topic, Stream: e.Stream, Epoch: e.Epoch}, e.Acked, e.Failed, e.Aborted)
}

// noteEnd records whether the run's partition has been read to its end.
func (a *account) noteEnd(p kgo.FetchTopicPartition) {
	if p.Partition != a.partition || len(p.Records) == 0 {
		return
	}
	a.atEnd = p.Records[len(p.Records)-1].Offset+1 >= p.HighWatermark
}

// complete: some epoch was seen, every epoch seen is done, as many as the
// instances announced, nothing is left.
func (a *account) complete() bool {
	if len(a.epochs) == 0 || len(a.epochs) < a.instances || !a.atEnd {
		return false
	}
	for _, ea := range a.epochs {
		if ea.done == nil {
			return false
		}
	}
	return true
}

func (a *account) progress() string {
	done := 0
	for _, ea := range a.epochs {
		if ea.done != nil {
			done++
		}
	}
	return fmt.Sprintf("read %d entries of the run, %d undecodable, %d of %d loadgen instances done", a.seen, a.bad, done, max(len(a.epochs), a.instances))
}

// maxProblems bounds the reasons listed; the count of the rest is added.
const maxProblems = 5

// check compares what was read with each epoch's Done entry and returns why
// the ledger does not add up (nothing when it does).
func (a *account) check(into *Ledger) []string {
	var out []string
	for _, ep := range slices.Sorted(maps.Keys(a.epochs)) {
		ea := a.epochs[ep]
		if ea.legacy {
			continue
		}
		out = append(out, ea.check(a.run, ep, into)...)
	}
	if len(out) > maxProblems {
		out = append(out[:maxProblems], fmt.Sprintf("and %d more ledger problems", len(out)-maxProblems))
	}
	return out
}

func (ea *epochAccount) check(run string, ep uint32, into *Ledger) []string {
	var out []string
	d := ea.done
	// The data entries must be exactly 0..Entries-1: a count alone would
	// miss a lost entry whose place a stray higher index took.
	if n := ea.entries.Len(); n != d.Entries || (n > 0 && (ea.entries.NumRanges() != 1 || ea.entries.Ranges()[0].Lo != 0)) {
		out = append(out, fmt.Sprintf("ledger of run %s (loadgen epoch %d): its done entry counts %d data entries, the topic holds %d (indices %s): entries were lost or the topic was written by something else",
			run, ep, d.Entries, n, ea.entries.String()))
	}
	want := map[StreamKey]StreamTotal{}
	for _, t := range d.Totals {
		want[StreamKey{Topic: t.Topic, Stream: t.Stream, Epoch: ep}] = t
	}
	into.View(func(k StreamKey, s *Stream) {
		if k.Epoch != ep {
			return
		}
		t, ok := want[k]
		delete(want, k)
		if !ok || t.Acked != s.Acked.Len() || t.Failed != s.Failed.Len() || t.Aborted != s.Aborted.Len() {
			out = append(out, fmt.Sprintf("ledger of run %s, stream %s/%d (loadgen epoch %d): its done entry says %d acked, %d failed and %d aborted, the entries add up to %d acked, %d failed and %d aborted",
				run, k.Topic, k.Stream, ep, t.Acked, t.Failed, t.Aborted, s.Acked.Len(), s.Failed.Len(), s.Aborted.Len()))
		}
	})
	for k, t := range want {
		if t.Acked+t.Failed+t.Aborted > 0 {
			out = append(out, fmt.Sprintf("ledger of run %s, stream %s/%d (loadgen epoch %d): its done entry says %d acked and %d failed, no entry of the stream was read",
				run, k.Topic, k.Stream, ep, t.Acked, t.Failed))
		}
	}
	return out
}

// runExistsTail bounds the RunExists scan to the newest entries of each
// partition: a ledger topic shared by many long runs can hold millions of
// entries, and a reused run id is almost always a recent one (a run writes
// about one entry per stream per second, so this covers the last hours of a
// busy cluster).
const runExistsTail = 200000

// RunExists reports whether the newest runExistsTail entries of each
// partition of the ledger topic on the cluster at bootstrap hold an entry of
// runID (a missing topic holds none). kmt refuses to produce under a run id
// that already has a ledger.
func RunExists(ctx context.Context, bootstrap string, dial DialFunc, topic, runID string) (bool, error) {
	return RunExistsWith(ctx, kafkaclient.Config{Brokers: bootlist.Split(bootstrap), Dial: kafkaclient.DialFunc(dial)}, topic, runID)
}

// RunExistsWith is RunExists on a cluster reached as client says.
func RunExistsWith(ctx context.Context, client kafkaclient.Config, topic, runID string) (bool, error) {
	if topic == "" {
		topic = DefaultTopic
	}
	bootstrap := strings.Join(client.Brokers, ",")
	found := false
	_, err := logscan.Scan(ctx, logscan.Options{
		Brokers: client.Brokers, Dial: logscan.DialFunc(client.Dial), Security: client.Security, Topics: []string{topic}, Tail: runExistsTail, ClientID: "kmt-ledger-check",
	}, func(r *kgo.Record) bool {
		found = string(r.Key) == runID
		return !found
	})
	if err != nil {
		return false, fmt.Errorf("ledger topic %q on %s: looking for run %q: %w", topic, bootstrap, runID, err)
	}
	return found, nil
}
