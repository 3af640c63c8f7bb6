package local

import (
	"context"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// clusterRestartFaults: cluster-restart stops every broker of one cluster
// and restarts the cluster from its persisted data when the window ends.
// Needs ClusterRestarter.
var clusterRestartFaults = Family{
	Name:  "cluster-restart",
	Kinds: []scenarios.FaultKind{scenarios.ClusterRestart},
	Plan: func(env Env, f scenarios.Fault) (Inject, error) {
		name := f.Params.Cluster
		c, err := capability[ClusterRestarter](env, f, env.cluster(name), name+" cluster", "be stopped and restarted")
		if err != nil {
			return nil, err
		}
		return func(_ context.Context, a *Act) (Recover, error) {
			recover := func(ctx context.Context) error {
				if err := c.Restart(ctx); err != nil {
					return err
				}
				a.Did("restarted the %s cluster from its data", name)
				return nil
			}
			if err := c.Stop(); err != nil {
				// Some brokers may be down already: Restart brings back
				// the ones that are, so it still runs.
				return recover, err
			}
			a.Did("stopped the %s cluster", name)
			return recover, nil
		}, nil
	},
}
