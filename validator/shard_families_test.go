package validator_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/mirror"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/loadgen"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
	"github.com/kmt-dev/kafka-mirror-tester/validator"
)

// familyRun is one run on embedded clusters with a load mode, the reference
// mirror (with defects), a topic config set on the source while the load
// runs, and, reading the same clusters at once, one validator and the
// shards of a 2-shard and a 3-shard validator, every one with the stall
// watchdog on.
type familyRun struct {
	txn     *scenarios.Transactions
	fid     *scenarios.Fidelity
	defects []scenarios.Defect
}

type familyOutcome struct {
	single *validator.Result
	merged map[int]*validator.Result // by shard count
	led    *ledger.Ledger
	defect map[string]uint64 // the mirror's own count per defect
}

const (
	familyParts      = 6
	familyStallAfter = 2 * time.Second
	familySyncWithin = 5 * time.Second
)

func (r familyRun) run(t *testing.T) familyOutcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	src := startCluster(t, ctx, "source", familyParts)
	dst := startCluster(t, ctx, "target", familyParts)
	run := fmt.Sprintf("families-%d", time.Now().UnixNano())
	led := ledger.New()
	cfg := func(shard, shards int) validator.Config {
		return validator.Config{TargetBootstrap: dst.Bootstrap(), SourceBootstrap: src.Bootstrap(), SourceDial: src.DirectDial,
			Topics: []validator.TopicPair{{Source: "orders", Target: "orders"}}, RunID: run, Ledger: led,
			Transactions: r.txn, Fidelity: r.fid, StallAfter: familyStallAfter, SyncWithin: familySyncWithin,
			NeverCopied: mirror.MM2NeverCopiedConfigs, Shard: shard, Shards: shards, Logger: quietLog()}
	}
	single, err := validator.New(cfg(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	all := []*validator.Validator{single}
	shardsOf := map[int][]*validator.Validator{}
	for _, m := range []int{2, 3} {
		for i := range m {
			v, err := validator.New(cfg(i, m))
			if err != nil {
				t.Fatal(err)
			}
			shardsOf[m] = append(shardsOf[m], v)
			all = append(all, v)
		}
	}
	for _, v := range all {
		if err := v.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	m, err := mirror.NewReference(mirror.Config{SourceBootstrap: src.Bootstrap(), TargetBootstrap: dst.Bootstrap(),
		Topics: []mirror.TopicMap{{Source: "orders", Target: "orders"}}, Defects: r.defects, Registerer: reg, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// A topic config changed on the source while the load runs; every
	// validator is told (shards other than 0 ignore it).
	go func() {
		time.Sleep(500 * time.Millisecond)
		cl, err := kgo.NewClient(kgo.SeedBrokers(src.Bootstrap()), kgo.Dialer(src.DirectDial))
		if err != nil {
			t.Errorf("admin client: %v", err)
			return
		}
		defer cl.Close()
		at := time.Now()
		v := "3600000"
		if _, err := kadm.NewClient(cl).AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: &v}}, "orders"); err != nil {
			t.Errorf("setting retention.ms on the source: %v", err)
			return
		}
		for _, val := range all {
			val.NoteConfigChange("set-retention", "orders", map[string]string{"retention.ms": v}, at)
		}
	}()
	st, err := loadgen.Run(ctx, loadgen.Config{Bootstrap: src.Bootstrap(), Dial: src.DirectDial, Topics: []string{"orders"}, RunID: run,
		Rate: 1500, MessageSize: 256, Streams: 12, Duration: 3 * time.Second, Ledger: led, SkipRunIDCheck: true,
		Transactions: r.txn, Fidelity: r.fid, Logger: quietLog()})
	if err != nil {
		t.Fatalf("loadgen: %v", err)
	}
	if st.Acked == 0 {
		t.Fatal("the loadgen acked nothing")
	}
	led.MarkDone()

	const drain = 10 * time.Second
	out := familyOutcome{merged: map[int]*validator.Result{}, led: led, defect: map[string]uint64{}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := map[string]error{}
	wg.Go(func() {
		res, err := single.Drain(ctx, drain)
		mu.Lock()
		defer mu.Unlock()
		out.single, errs["single"] = res, err
	})
	states := map[int][]*validator.ShardState{}
	for n, vs := range shardsOf {
		states[n] = make([]*validator.ShardState, n)
		for i, v := range vs {
			wg.Go(func() {
				s, err := v.DrainShard(ctx, drain)
				mu.Lock()
				defer mu.Unlock()
				states[n][i], errs[fmt.Sprintf("shard %d of %d", i, n)] = s, err
			})
		}
	}
	wg.Wait()
	for who, err := range errs {
		if err != nil {
			t.Fatalf("%s drain: %v", who, err)
		}
	}
	for n, ss := range states {
		if out.merged[n], err = validator.Merge(ss); err != nil {
			t.Fatalf("merging %d shards: %v", n, err)
		}
	}
	for _, d := range r.defects {
		if out.defect[d.Name], err = mirror.DefectRecords(reg, d.Name); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// openStall is the part of a stall event that does not depend on when a
// validator polled: which partition, where it stopped, whether it ended.
type openStall struct {
	kind, topic string
	partition   int32
	offset      int64
}

// openStalls lists the open stalls that explain missing records. A stall
// whose source partition misses nothing (MissingHere 0) is left out: its
// source gained only what a correct mirror never copies, such as the
// commit marker after a partition's last transaction, and whether the
// watchdog opened it depends on how long a validator kept watching after
// that marker (longer than the 2 s threshold or not), not on the run. It
// blames nobody (report.syncReasons), so the verdict comparison still
// covers it. Seen in make test: a 3-shard merge with an extra open stall
// on partition 3 at its last transaction's marker, the single validator
// without it.
func openStalls(s *report.Stalls) []openStall {
	var out []openStall
	if s == nil {
		return out
	}
	for _, e := range s.Events {
		if e.MissingHere != nil && *e.MissingHere == 0 {
			continue
		}
		if e.Kind == report.StallKind && !e.Recovered {
			out = append(out, openStall{e.Kind, e.Topic, e.Partition, e.TargetOffset})
		}
	}
	return out
}

// syncRow is a metadata change without its timing.
type syncRow struct {
	kind, what, observed      string
	synced, late, neverCopied bool
}

func syncRows(ms *report.MetadataSync) []syncRow {
	var out []syncRow
	if ms == nil {
		return out
	}
	for _, c := range ms.Changes {
		out = append(out, syncRow{c.Kind, c.What, c.Observed, c.Synced, c.Late, c.NeverCopied})
	}
	return out
}

// healthyWatch: the config change synced, no stall open.
func healthyWatch(t *testing.T, s *validator.Result) {
	t.Helper()
	if rows := syncRows(s.MetadataSync); len(rows) != 1 || !rows[0].synced {
		t.Errorf("metadata sync %+v: want the one change synced", rows)
	}
	if st := openStalls(s.Stalls); len(st) != 0 {
		t.Errorf("open stalls %+v: want none", st)
	}
}

// sameSections compares a merged result with the single validator's, field
// by field: counts, transactions, fidelity exactly; stalls and metadata
// sync without their timing (each validator polls on its own clock).
func sameSections(t *testing.T, shards int, single, merged *validator.Result) {
	t.Helper()
	if merged.Counts != single.Counts {
		t.Errorf("%d shards: counts %+v, single %+v", shards, merged.Counts, single.Counts)
	}
	if !reflect.DeepEqual(merged.Transactions, single.Transactions) {
		t.Errorf("%d shards: transactions %+v, single %+v", shards, merged.Transactions, single.Transactions)
	}
	if !reflect.DeepEqual(merged.Fidelity, single.Fidelity) {
		t.Errorf("%d shards: fidelity %s, single %s", shards, fidelityString(merged.Fidelity), fidelityString(single.Fidelity))
	}
	if (merged.Stalls == nil) != (single.Stalls == nil) || single.Stalls != nil && merged.Stalls.Partitions != single.Stalls.Partitions {
		t.Errorf("%d shards: stalls section %+v, single %+v", shards, merged.Stalls, single.Stalls)
	}
	if m, s := openStalls(merged.Stalls), openStalls(single.Stalls); !reflect.DeepEqual(m, s) {
		t.Errorf("%d shards: open stalls %+v, single %+v", shards, m, s)
	}
	if m, s := syncRows(merged.MetadataSync), syncRows(single.MetadataSync); !reflect.DeepEqual(m, s) {
		t.Errorf("%d shards: metadata sync %+v, single %+v", shards, m, s)
	}
	rs, rm := report.Report{}, report.Report{}
	validator.ApplyResult(&rs, single)
	validator.ApplyResult(&rm, merged)
	rs.Judge()
	rm.Judge()
	if rm.Verdict != rs.Verdict || len(rm.Reasons) != len(rs.Reasons) {
		t.Errorf("%d shards: verdict %s %q, single %s %q", shards, rm.Verdict, rm.Reasons, rs.Verdict, rs.Reasons)
	}
}

func fidelityString(f *report.Fidelity) string {
	if f == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{headers %+v timestamps %+v tombstones %+v large %+v compaction %+v compression %+v}",
		f.Headers, f.Timestamps, f.Tombstones, f.Large, f.Compaction, f.Compression)
}

// The MirrorMaker 2 families through a sharded validator: on the same run,
// the 2-shard and the 3-shard merges give the transactions, fidelity,
// stalls and metadata_sync sections (and the verdict) of one validator, for
// a healthy run and for a reference-mirror defect per family, and each
// section shows what the defect did, with the mirror's own counts.
//
// Proven by breaking the merge once: with mergeTxns adding up nothing but
// the first shard's piece of each transaction, the healthy transactional
// run merged to torn 360 (2400 records missing) with 2 shards and torn 360
// (2100 missing) with 3, where one validator saw all 360 whole.
func TestShardedValidatorsMergeTheFamilies(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end runs; skipped with -short")
	}
	txn := &scenarios.Transactions{Size: 10, Abort: 0.2}
	// Tombstones every 7th, large records every 50th: few large records
	// are tombstones (seq 349 mod 350), so both are exercised.
	fid := &scenarios.Fidelity{Headers: true, Timestamps: true, TombstoneEvery: 7, Compacted: true, LargeEvery: 50, LargeBytes: 64 << 10, Compression: "zstd"}
	cases := []struct {
		name  string
		run   familyRun
		check func(t *testing.T, o familyOutcome)
	}{
		{"healthy, transactions", familyRun{txn: txn}, func(t *testing.T, o familyOutcome) {
			healthyWatch(t, o.single)
			if tx := o.single.Transactions; tx == nil || tx.AbortedCopied != 0 || tx.Torn != 0 || tx.Seen == 0 || tx.AbortedRecords != o.led.TotalAborted() || tx.AbortedRecords == 0 {
				t.Errorf("transactions %+v: want %d aborted records, none copied, none torn", tx, o.led.TotalAborted())
			}
		}},
		{"healthy, fidelity", familyRun{fid: fid}, func(t *testing.T, o familyOutcome) {
			healthyWatch(t, o.single)
			f := o.single.Fidelity
			if f == nil || f.Headers.Changed != 0 || f.Headers.Checked == 0 || f.Timestamps.Changed != 0 || f.Tombstones.Missing != 0 || f.Tombstones.Delivered == 0 ||
				f.Compaction.Differ != 0 || f.Large.Delivered != f.Large.Acked || f.Large.Acked == 0 {
				t.Errorf("fidelity %s: want everything kept", fidelityString(f))
			}
		}},
		{"copy-aborted and no-topic-sync", familyRun{txn: txn, defects: []scenarios.Defect{{Name: scenarios.DefectCopyAborted}, {Name: scenarios.DefectNoTopicSync}}},
			func(t *testing.T, o familyOutcome) {
				tx := o.single.Transactions
				if want := o.led.TotalAborted(); tx == nil || tx.AbortedCopied != want || want == 0 || tx.Torn != 0 {
					t.Errorf("transactions %+v: want every one of the %d aborted records copied, none torn", tx, want)
				}
				if rows := syncRows(o.single.MetadataSync); len(rows) != 1 || rows[0].synced || rows[0].late || rows[0].observed != "retention.ms=604800000" {
					t.Errorf("metadata sync %+v: want the one change never synced (the target keeps retention.ms=604800000)", rows)
				}
			}},
		{"drop-tombstones", familyRun{fid: fid, defects: []scenarios.Defect{{Name: scenarios.DefectDropTombstones}}}, func(t *testing.T, o familyOutcome) {
			f := o.single.Fidelity
			if d := o.defect[scenarios.DefectDropTombstones]; f == nil || d == 0 || f.Tombstones.Missing != d || f.Tombstones.Delivered != 0 || f.Tombstones.Acked != d {
				t.Errorf("fidelity %s: want all %d tombstones missing (the mirror's count)", fidelityString(f), d)
			}
		}},
		{"partition-stall", familyRun{txn: txn, defects: []scenarios.Defect{{Name: scenarios.DefectPartitionStall, Every: 100}}}, func(t *testing.T, o familyOutcome) {
			want := []openStall{{report.StallKind, "orders", 0, 100}}
			if got := openStalls(o.single.Stalls); !reflect.DeepEqual(got, want) {
				t.Errorf("open stalls %+v, want %+v", got, want)
			}
			if tx := o.single.Transactions; tx == nil || tx.Torn == 0 {
				t.Errorf("transactions %+v: partition 0 withheld, want committed transactions torn", tx)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.run.run(t)
			s := o.single
			t.Logf("single: counts %+v; transactions %+v; fidelity %s; stalls %+v; sync %+v; mirror's defect counts %v",
				s.Counts, s.Transactions, fidelityString(s.Fidelity), openStalls(s.Stalls), syncRows(s.MetadataSync), o.defect)
			tc.check(t, o)
			for _, n := range []int{2, 3} {
				sameSections(t, n, s, o.merged[n])
			}
		})
	}
}
