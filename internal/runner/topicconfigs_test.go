package runner

import (
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// TestRunRefusesATopicWithOtherConfigs: on the user's clusters, a source
// topic the scenario wants compacted that exists with cleanup.policy
// delete is refused with exit 2 before anything runs, naming the config,
// both values and the kafka-configs.sh command; kmt does not alter it.
func TestRunRefusesATopicWithOtherConfigs(t *testing.T) {
	newCluster := func() string {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, "src", "dst"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c.ListenAddrs()[0]
	}
	src, tgt := newCluster(), newCluster()
	_, err := Run(context.Background(), Options{
		Scenario: "compacted-topic", Short: true, SourceBootstrap: src, TargetBootstrap: tgt,
		SourceTopic: "src", TargetTopic: "dst", ReportDir: t.TempDir(), Logger: testLogger(t),
	})
	if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), `cleanup.policy is "delete", the scenario wants "compact"`) ||
		!strings.Contains(err.Error(), "kafka-configs.sh --alter --entity-type topics --entity-name src") {
		t.Fatalf("err %v (exit %d), want exit %d naming cleanup.policy and the command that sets it", err, ExitCode(err), ExitUsage)
	}
}
