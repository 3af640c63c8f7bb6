package scenarios_test

import (
	"testing"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// TestTargetTopicOfCreatedTopic: the target name the metadata sync watches
// (and the reference mirror creates) for a topic the timeline creates.
// Before, every mirror but kmt's MirrorMaker 2 got the source name, so an
// external MirrorMaker 2 that wrote source.payments beside source.orders
// failed the run with "new topic never appeared on target topic payments".
func TestTargetTopicOfCreatedTopic(t *testing.T) {
	topics := func(pairs ...string) []scenarios.Topic {
		var ts []scenarios.Topic
		for i := 0; i < len(pairs); i += 2 {
			ts = append(ts, scenarios.Topic{Name: pairs[i], TargetName: pairs[i+1]})
		}
		return ts
	}
	for _, c := range []struct {
		name   string
		mirror scenarios.Mirror
		topics []scenarios.Topic
		want   string
	}{
		{"external, every topic renamed alike", scenarios.Mirror{Kind: scenarios.MirrorExternal},
			topics("orders", "primary.orders", "users", "primary.users"), "primary.payments"},
		{"external, not renamed", scenarios.Mirror{Kind: scenarios.MirrorExternal}, topics("orders", ""), "payments"},
		{"external, renamed two ways", scenarios.Mirror{Kind: scenarios.MirrorExternal},
			topics("orders", "a.orders", "users", "b.users"), "payments"},
		{"external, a name that is no prefix", scenarios.Mirror{Kind: scenarios.MirrorExternal},
			topics("orders", "orders-copy"), "payments"},
		{"reference, renamed", scenarios.Mirror{Kind: scenarios.MirrorReference}, topics("orders", "dr.orders"), "dr.payments"},
		{"mirrormaker2, default policy", scenarios.Mirror{Kind: scenarios.MirrorMirrorMaker2}, topics("orders", ""), "source.payments"},
		{"mirrormaker2, identity", scenarios.Mirror{Kind: scenarios.MirrorMirrorMaker2,
			MirrorMaker2: scenarios.MirrorMaker2{ReplicationPolicy: scenarios.PolicyIdentity}}, topics("orders", ""), "payments"},
	} {
		s := &scenarios.Scenario{}
		s.Spec.Topology.Mirror, s.Spec.Topology.Topics = c.mirror, c.topics
		if got := s.TargetTopicOf("payments"); got != c.want {
			t.Errorf("%s: target of payments %q, want %q", c.name, got, c.want)
		}
	}
}
