package validator

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// A sharded run of a story whose load-mode checks the shards and the merge do
// not carry (transactions, fidelity) is refused before anything is read: its
// merged verdict would miss aborted_copied, torn transactions and changed
// records that one validator reports. Stories without them still shard.
func TestShardingRefusesLoadModesItCannotMerge(t *testing.T) {
	// Bounded: without the refusal the shard would wait for a ledger that
	// never comes.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, name := range []string{"transactions", "record-fidelity"} {
		s, err := scenarios.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		// Unreachable addresses: a refusal must come before any dial.
		base := Job{Scenario: s, RunID: "r", SourceBootstrap: "127.0.0.1:1", TargetBootstrap: "127.0.0.1:1", Shards: 3}
		shard := base
		shard.Shard = 1
		err = shard.RunShard(ctx)
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "spec.load.") {
			t.Errorf("%s: RunShard error %v: want a ConfigError naming the load mode", name, err)
		}
		merge := base
		merge.Merge = true
		rep, err := merge.Run(ctx)
		if !errors.As(err, &ce) || rep != nil {
			t.Errorf("%s: merge gave report %v, error %v: want a ConfigError and no report", name, rep, err)
		}
	}
	s, err := scenarios.Read("baseline")
	if err != nil {
		t.Fatal(err)
	}
	if err := (Job{Scenario: s, Shards: 3}).shardableModes(); err != nil {
		t.Errorf("baseline refused for sharding: %v", err)
	}
}
