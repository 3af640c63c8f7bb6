package ledger

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/logscan"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
)

// Launches is what the ledger topic says about the launches of a run.
type Launches struct {
	// Other: an entry of the run from another launch (or from a loadgen
	// with no launch): the run id belongs to an earlier run.
	Other string
	// Claimed: instance 0 of this launch claimed the run.
	Claimed bool
}

// RunLaunches reads the newest entries of the ledger topic (as RunExists)
// for runID and says whether another launch used it and whether launch
// claimed it. N loadgen instances of one launch share a run id by design;
// a run id with entries of another launch is a reused one.
func RunLaunches(ctx context.Context, client kafkaclient.Config, topic, runID, launch string) (Launches, error) {
	if topic == "" {
		topic = DefaultTopic
	}
	var out Launches
	_, err := logscan.Scan(ctx, logscan.Options{
		Brokers: client.Brokers, Dial: logscan.DialFunc(client.Dial), Security: client.Security, Topics: []string{topic}, Tail: runExistsTail, ClientID: "kmt-ledger-check",
	}, func(r *kgo.Record) bool {
		if string(r.Key) != runID {
			return true
		}
		var e Entry
		if json.Unmarshal(r.Value, &e) != nil || e.Launch != launch {
			out.Other = e.Launch
			if out.Other == "" {
				out.Other = "(none)"
			}
			return false
		}
		out.Claimed = out.Claimed || e.Claim
		return true
	})
	if err != nil {
		return out, fmt.Errorf("ledger topic %q on %s: looking for run %q: %w", topic, strings.Join(client.Brokers, ","), runID, err)
	}
	return out, nil
}
