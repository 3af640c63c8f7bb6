package validator

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
)

// runShardSteps feeds a case's steps to shards trackers the way a sharded
// validator does: every record of partition p goes to shard p % shards (the
// target, read_uncommitted and source readers alike), and each shard notes
// the purges of its own partitions only, probing them itself.
func runShardSteps(trs []*Tracker, steps []step) {
	n := len(trs)
	var per = make([][]step, n)
	for _, s := range steps {
		if s.trunc != nil {
			for i := range trs {
				own := map[int]int64{}
				for p, ls := range s.trunc {
					if p%n == i {
						own[p] = ls
					}
				}
				c := s
				c.trunc = own
				per[i] = append(per[i], c)
			}
			continue
		}
		per[s.part%n] = append(per[s.part%n], s)
	}
	for i, tr := range trs {
		// A shard's probes are answered from the source records of its
		// own partitions (runSteps reads them from the steps it is given,
		// and every source step of a partition went to its shard).
		runSteps(tr, per[i])
	}
}

// mergeShards exports each shard's state through JSON (as `kmt validate
// --shard` writes it) and merges them.
func mergeShards(t *testing.T, trs []*Tracker, tc ruleCase, sourceChecked bool) *Result {
	t.Helper()
	return mergeTrackers(t, trs, tc.ledger(), sourceChecked)
}

// mergeTrackers is mergeShards with the ledger given.
func mergeTrackers(t *testing.T, trs []*Tracker, led *ledger.Ledger, sourceChecked bool) *Result {
	t.Helper()
	var states []*ShardState
	for i, tr := range trs {
		s := tr.exportState()
		s.Shard, s.Shards, s.SourceChecked, s.DrainComplete = i, len(trs), sourceChecked, true
		s.Ledger = ledgerState(led)
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back ShardState
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		states = append(states, &back)
	}
	res, err := Merge(states)
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	return res
}

// Every rule case, judged by one tracker and by 2 and 3 shards merged: the
// counts, truncated and other-run figures must be exactly equal. The cases
// spread their records over up to three target and source partitions
// (split, reorder across partitions, purges with probes, aborted reads), so
// shards see different parts of one stream.
func TestMergedShardsJudgeLikeOneValidator(t *testing.T) {
	multi := 0
	for _, tc := range ruleCases() {
		parts := map[int]bool{}
		for _, s := range tc.steps {
			parts[s.part] = true
		}
		if len(parts) > 1 {
			multi++
		}
		for _, shards := range []int{2, 3} {
			t.Run(fmt.Sprintf("%s/%d shards", tc.name, shards), func(t *testing.T) {
				one := NewTracker(testRun, 5, t0)
				trs := make([]*Tracker, shards)
				for i := range trs {
					trs[i] = NewTracker(testRun, 5, t0)
				}
				if tc.bySeq {
					one.JudgeOrderBySequence()
					for _, tr := range trs {
						tr.JudgeOrderBySequence()
					}
				}
				runSteps(one, tc.steps)
				runShardSteps(trs, tc.steps)
				j := one.Judge(tc.ledger(), true, tc.sourceChecked)
				res := mergeShards(t, trs, tc, tc.sourceChecked)
				if res.Counts != j.Total || res.Truncated != j.Truncated || res.OtherRuns != j.OtherRuns || res.Streams != j.Streams {
					t.Errorf("merged counts\n got %+v truncated %d other %d streams %d\nsingle %+v truncated %d other %d streams %d",
						res.Counts, res.Truncated, res.OtherRuns, res.Streams, j.Total, j.Truncated, j.OtherRuns, j.Streams)
				}
				if res.Counts != tc.want {
					t.Errorf("merged counts %+v, the case wants %+v", res.Counts, tc.want)
				}
				for cat := range one.Examples() {
					if len(res.Examples[cat]) == 0 {
						t.Errorf("single validator has %s evidence, the merge none", cat)
					}
				}
			})
		}
	}
	if multi < 10 {
		t.Fatalf("only %d rule cases use more than one partition: the merge is not exercised across shards", multi)
	}
}

// A sequence that arrived in partitions of two shards is one delivery and
// one duplicate, as for one validator (each shard alone saw a first arrival).
func TestMergeCountsCrossShardCopiesAsDuplicates(t *testing.T) {
	tc := ruleCase{acks: []ack{{1, 0, 3}}, steps: cat(
		srcRecs(1, 0, 3, 0, 0),
		seqRecs(1, 0, 3, 0, 0),
		[]step{seqAt(1, 0, 1, 2), seqAt(1, 1, 1, 3), seqAt(2, 0, 1, 3)},
	)}
	trs := []*Tracker{NewTracker(testRun, 5, t0), NewTracker(testRun, 5, t0), NewTracker(testRun, 5, t0)}
	runShardSteps(trs, tc.steps)
	res := mergeShards(t, trs, tc, true)
	want := Counts{Produced: 4, Acked: 4, Received: 7, Duplicate: 3, Split: 3}
	if res.Counts != want {
		t.Errorf("merged %+v, want %+v", res.Counts, want)
	}
}

func TestMergeRefusesIncompleteOrMixedShards(t *testing.T) {
	mk := func(shard, shards int, run string) *ShardState {
		s := NewTracker(run, 5, t0).exportState()
		s.Shard, s.Shards = shard, shards
		return s
	}
	for _, c := range []struct {
		name   string
		states []*ShardState
		want   string
	}{
		{"none", nil, "no shard states"},
		{"one missing", []*ShardState{mk(0, 3, testRun), mk(2, 3, testRun)}, "3 shards but 2 states"},
		{"twice", []*ShardState{mk(0, 2, testRun), mk(0, 2, testRun)}, "shard 1's state is missing"},
		{"two runs", []*ShardState{mk(0, 2, testRun), mk(1, 2, "run-2")}, `judged run "run-2"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Merge(c.states)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want one saying %q", err, c.want)
			}
		})
	}
}

// A shard that got a record after a higher one of its stream cannot judge
// the order when another shard reads the source partition that held them:
// the candidate goes to the merge, which judges it against the source's
// order (reordered once; kept when the source itself had them reversed).
func TestMergeJudgesOrderAShardCouldNotKnow(t *testing.T) {
	for _, c := range []struct {
		name   string
		source []step
		want   uint64
	}{
		{"source in order", srcRecs(1, 0, 2, 1, 0), 1},
		{"source reversed too", []step{src(1, 0, rec(testRun, 1, 0)), src(1, 1, rec(testRun, 1, 2)), src(1, 2, rec(testRun, 1, 1))}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			tc := ruleCase{acks: []ack{{1, 0, 2}}, steps: cat(
				[]step{seqAt(0, 0, 1, 0), seqAt(0, 1, 1, 2), seqAt(0, 2, 1, 1)},
				c.source,
			)}
			one := NewTracker(testRun, 5, t0)
			runSteps(one, tc.steps)
			single := one.Judge(tc.ledger(), true, true)
			trs := []*Tracker{NewTracker(testRun, 5, t0), NewTracker(testRun, 5, t0)}
			runShardSteps(trs, tc.steps)
			if len(trs[0].orderPending) != 1 {
				t.Fatalf("shard 0 has %d pending order candidates, want 1 (it cannot see the source partition)", len(trs[0].orderPending))
			}
			res := mergeShards(t, trs, tc, true)
			if res.Counts.Reordered != c.want || single.Total.Reordered != c.want || res.Counts != single.Total {
				t.Errorf("reordered: merged %d, single %d, want %d (merged %+v, single %+v)", res.Counts.Reordered, single.Total.Reordered, c.want, res.Counts, single.Total)
			}
		})
	}
}
