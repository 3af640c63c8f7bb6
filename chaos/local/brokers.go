package local

import (
	"context"
	"errors"
	"fmt"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// brokerFaults: broker-kill and broker-pause take some brokers of one
// cluster out (hard, or frozen with connections open) and bring the same
// brokers back when the window ends. Needs BrokerKiller / BrokerPauser.
var brokerFaults = Family{
	Name:  "brokers",
	Kinds: []scenarios.FaultKind{scenarios.BrokerKill, scenarios.BrokerPause},
	Plan:  planBrokers,
}

func planBrokers(env Env, f scenarios.Fault) (Inject, error) {
	name := f.Params.Cluster
	side, part := env.cluster(name), name+" cluster"
	if f.Kind == scenarios.BrokerKill {
		c, err := capability[BrokerKiller](env, f, side, part, "kill brokers")
		if err != nil {
			return nil, err
		}
		return brokerToggle(c, name, "killed", "restored", c.KillBrokers, c.RestoreBrokers), nil
	}
	c, err := capability[BrokerPauser](env, f, side, part, "pause brokers")
	if err != nil {
		return nil, err
	}
	return brokerToggle(c, name, "paused", "resumed", c.PauseBrokers, c.ResumeBrokers), nil
}

// brokerToggle takes the picked brokers out with do and back with undo.
func brokerToggle(set BrokerSet, cluster, did, undid string, do, undo func([]int32) error) Inject {
	return func(_ context.Context, a *Act) (Recover, error) {
		nodes, err := pickNodes(set, a.Topic(), a.fault.Params)
		if err != nil {
			return nil, err
		}
		recover := func(context.Context) error {
			if err := undo(nodes); err != nil {
				return err
			}
			a.Did("%s %s brokers %v", undid, cluster, nodes)
			return nil
		}
		if err := do(nodes); err != nil {
			// Some brokers may be out already (do acts node by node):
			// undo is safe on nodes that are fine, so it still runs when
			// the window ends.
			return recover, err
		}
		a.Did("%s %s brokers %v", did, cluster, nodes)
		return recover, nil
	}
}

// pickNodes returns the nodes a broker fault acts on: the listed ones, or
// the leaders of the first partitions of the default topic, so the fault
// surely hits brokers that carry traffic.
func pickNodes(c BrokerSet, topic string, p scenarios.FaultParams) ([]int32, error) {
	if len(p.Nodes) > 0 {
		return p.Nodes, nil
	}
	nodes := c.LeaderNodes(topic, p.Brokers)
	if len(nodes) < p.Brokers {
		// Fewer distinct leaders than asked: fill with other nodes.
		seen := map[int32]bool{}
		for _, x := range nodes {
			seen[x] = true
		}
		for _, x := range c.Nodes() {
			if len(nodes) >= p.Brokers {
				break
			}
			if !seen[x] {
				nodes = append(nodes, x)
			}
		}
	}
	if len(nodes) >= len(c.Nodes()) {
		return nil, fmt.Errorf("asked to act on %d brokers but the cluster has %d: at least one must stay up", p.Brokers, len(c.Nodes()))
	}
	if len(nodes) == 0 {
		return nil, errors.New("no broker to act on")
	}
	return nodes, nil
}
