package runner

import (
	"context"
	"errors"
	"net"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/loadgen"
)

// checkRunIDUnused refuses (exit 2) a run id that already has records in the
// source or target topics of clusters kmt did not create: a reused run id
// judges two runs as one (the earlier run's records count as the mirror's
// duplicates). Embedded clusters are new for every run and need no check.
func checkRunIDUnused(ctx context.Context, runID string, sec kafkaclient.Security, sides ...runIDSide) error {
	for _, s := range sides {
		err := loadgen.CheckRunID(ctx, loadgen.RunIDCheck{Bootstrap: s.bootstrap, Dial: s.dial, Security: sec, Topics: s.topics, RunID: runID})
		if err != nil {
			if errors.Is(err, loadgen.ErrRunIDInUse) {
				return Usage(err)
			}
			return Env(err)
		}
	}
	return nil
}

type runIDSide struct {
	bootstrap string
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	topics    []string
}
