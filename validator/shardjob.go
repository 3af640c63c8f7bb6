package validator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube/agent"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// A sharded validator Job: M shard Jobs (Shard 0..M-1 of Shards M) each
// read their partitions, wait for the load, drain and publish their state
// to StatesTopic on the target (RunShard); one merge Job (Merge) waits for
// every shard's state and produces the report a single validator Job would
// have produced (Run).

func (j Job) statesTopic() string {
	if j.StatesTopic == "" {
		return DefaultStatesTopic
	}
	return j.StatesTopic
}

func (j Job) targetClient() kafkaclient.Config {
	return kafkaclient.Config{Brokers: bootstrap.Split(j.TargetBootstrap), Security: j.Security}
}

// sourceClient reaches the source cluster (the ledger and the fault
// agents' topic).
func (j Job) sourceClient() kafkaclient.Config {
	return kafkaclient.Config{Brokers: bootstrap.Split(j.SourceBootstrap), Security: j.Security}
}

// RunShard is one shard's Job: it judges nothing and returns once its state
// is published (an error says why it could not be).
func (j Job) RunShard(ctx context.Context) error {
	if j.Shards < 2 || j.Merge {
		return &ConfigError{fmt.Errorf("validator: RunShard needs shards >= 2 (got %d) and no merge", j.Shards)}
	}
	lctx, lcancel := context.WithCancel(ctx)
	defer lcancel()
	led, ledErr := j.readLedger(lctx)
	cfg := j.validatorConfig(led)
	cfg.Shard, cfg.Shards = j.Shard, j.Shards
	val, err := New(cfg)
	if err != nil {
		return &ConfigError{err}
	}
	vctx, vcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer vcancel()
	if err := val.Start(vctx); err != nil {
		return err
	}
	if j.FaultsTopic != "" && j.Scenario != nil {
		// Purges reach the shard as they happen (it keeps its partitions').
		faults := agent.NewCollector(val.NoteTruncation)
		go agent.Read(lctx, j.sourceClient(), j.FaultsTopic, j.RunID, faults.Add)
	}
	rep := &report.Report{StartedAt: time.Now()}
	t0, interrupted := j.waitForLoad(ctx, rep, led, val, ledErr)
	loadEnd := time.Now()
	drain := j.Drain
	if interrupted {
		drain = 0
	}
	st, derr := val.DrainShard(context.WithoutCancel(ctx), drain)
	if st == nil {
		return derr
	}
	st.LoadSeen, st.LoadEnded, st.Error = t0, loadEnd, rep.Error
	if derr != nil && st.Error == "" {
		st.Error = derr.Error()
	}
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := PublishState(pctx, j.targetClient(), j.statesTopic(), st); err != nil {
		return err
	}
	j.Logger.Info("shard state published", "shard", j.Shard, "shards", j.Shards, "topic", j.statesTopic(), "run", j.RunID)
	if interrupted {
		return errors.New("interrupted: the shard's state is partial")
	}
	return nil
}

// runMerge is Run for the merge Job: the shards' states instead of readers.
func (j Job) runMerge(ctx context.Context, rep *report.Report) (*report.Report, error) {
	wctx, cancel := context.WithTimeout(ctx, j.Wait+j.Drain+2*time.Minute)
	defer cancel()
	states, err := ReadStates(wctx, j.targetClient(), j.statesTopic(), j.RunID, j.Shards)
	var res *Result
	if err == nil {
		res, err = Merge(states)
	}
	if err != nil {
		rep.Verdict, rep.Error, rep.EndedAt = report.Incomplete, err.Error(), time.Now()
		rep.Judge()
		return rep, nil
	}
	ApplyResult(rep, res)
	var t0, loadEnd time.Time
	for _, s := range states {
		if s.Error != "" && rep.Error == "" {
			rep.Verdict, rep.Error = report.Incomplete, fmt.Sprintf("shard %d: %s", s.Shard, s.Error)
		}
		if !s.LoadSeen.IsZero() && (t0.IsZero() || s.LoadSeen.Before(t0)) {
			t0 = s.LoadSeen
		}
		if s.LoadEnded.After(loadEnd) {
			loadEnd = s.LoadEnded
		}
	}
	rep.EndedAt = time.Now()
	if j.Scenario != nil {
		var faults *agent.Collector
		if j.FaultsTopic != "" {
			faults = agent.NewCollector(nil)
			fctx, fcancel := context.WithCancel(ctx)
			defer fcancel()
			go agent.Read(fctx, j.sourceClient(), j.FaultsTopic, j.RunID, faults.Add)
		}
		j.judgeScenario(ctx, rep, faults, t0, loadEnd)
	}
	rep.Judge()
	if j.Judged != nil {
		j.Judged(rep)
	}
	return rep, nil
}
