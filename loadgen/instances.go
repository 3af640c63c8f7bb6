package loadgen

import (
	"context"
	"fmt"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/bootstrap"
	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// N loadgen instances of one run (Config.Instances > 1) share the run id by
// design, while a run id an earlier run used must still be refused. They
// tell the two apart through the ledger topic and a launch token they share
// (Config.Launch: an Indexed Job's uid): instance 0 checks the run id as a
// single loadgen does and writes a claim entry for its launch before
// producing; every other instance waits for that claim and refuses the run
// id when the ledger holds an entry of another launch. Every entry carries
// the launch and the instance count, so the validator's ledger reader waits
// for all N instances to finish.

// claimWait bounds how long instance i > 0 waits for instance 0's claim
// (pods of one Job start within seconds of each other; image pulls may
// take a while).
var claimWait = 2 * time.Minute

// checkInstances refuses an instance configuration that cannot coordinate.
func (cfg *Config) checkInstances() error {
	if cfg.Instances < 0 || cfg.Instance < 0 || cfg.Instance >= max(cfg.Instances, 1) {
		return badConfig("instance %d of %d: give 0 <= instance < instances", cfg.Instance, cfg.Instances)
	}
	// Without the run id check (a caller that holds the ledger itself, in
	// process) the instances need nothing to coordinate.
	if cfg.Instances > 1 && !cfg.SkipRunIDCheck && (cfg.Launch == "" || cfg.LedgerTopic == "") {
		return badConfig("instance %d of %d needs a launch token shared by the instances (--launch-id, e.g. the Job's uid) and the ledger topic they coordinate through", cfg.Instance, cfg.Instances)
	}
	return nil
}

// checkRunID refuses a run id in use: as a single loadgen for instance 0,
// else by waiting for instance 0's claim of this launch.
func (cfg Config) checkRunID(ctx context.Context) error {
	if cfg.Instances <= 1 || cfg.Instance == 0 {
		return CheckRunID(ctx, RunIDCheck{Bootstrap: cfg.Bootstrap, Dial: cfg.Dial, Security: cfg.Security, Topics: cfg.Topics, LedgerTopic: cfg.LedgerTopic, RunID: cfg.RunID})
	}
	client := kafkaclient.Config{Brokers: bootstrap.Split(cfg.Bootstrap), Dial: cfg.Dial, Security: cfg.Security}
	deadline := time.Now().Add(claimWait)
	for {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		l, err := ledger.RunLaunches(cctx, client, cfg.LedgerTopic, cfg.RunID, cfg.Launch)
		cancel()
		switch {
		case err != nil:
			return fmt.Errorf("loadgen instance %d: checking run id %q: %w", cfg.Instance, cfg.RunID, err)
		case l.Other != "":
			return &RunIDInUseError{RunID: cfg.RunID, Where: fmt.Sprintf("ledger topic %q on %s (launch %s, this is launch %s)", cfg.LedgerTopic, cfg.Bootstrap, l.Other, cfg.Launch)}
		case l.Claimed:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("loadgen instance %d of %d: instance 0 of launch %s did not claim run %q in ledger topic %q within %s: is instance 0 running (its log says why it stopped)?",
				cfg.Instance, cfg.Instances, cfg.Launch, cfg.RunID, cfg.LedgerTopic, claimWait)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("loadgen instance %d: waiting for instance 0's claim of run %q: %w", cfg.Instance, cfg.RunID, ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// share is this instance's part of a run's total rate and count (the first
// count % Instances instances produce one record more).
func (cfg Config) share() (rate float64, count int64) {
	n := int64(max(cfg.Instances, 1))
	if n == 1 || cfg.Instance < 0 || int64(cfg.Instance) >= n {
		return cfg.Rate, cfg.Count
	}
	count = cfg.Count / n
	if int64(cfg.Instance) < cfg.Count%n {
		count++
	}
	return cfg.Rate / float64(n), count
}
