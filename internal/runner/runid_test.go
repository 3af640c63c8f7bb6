package runner

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kafkaclient"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/loadgen"
	"github.com/kmt-dev/kafka-mirror-tester/validator"
)

// TestRunRefusesARunIDInUseOnExistingClusters: `kmt run --run-id X` against
// clusters whose source or target topic already holds X's records exits 2
// before the run starts, saying to pick another; a fresh id passes the
// check, also when the target topic does not exist yet.
func TestRunRefusesARunIDInUseOnExistingClusters(t *testing.T) {
	newCluster := func() string {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "src", "dst"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c.ListenAddrs()[0]
	}
	produce := func(bs, topic, run string) {
		t.Helper()
		if _, err := loadgen.Run(context.Background(), loadgen.Config{Bootstrap: bs, Topics: []string{topic}, RunID: run, Count: 30, Logger: testLogger(t)}); err != nil {
			t.Fatal(err)
		}
	}
	src, tgt := newCluster(), newCluster()
	produce(src, "src", "in-source")
	produce(tgt, "dst", "in-target") // as if a mirror had copied it
	for _, run := range []string{"in-source", "in-target"} {
		t.Run(run, func(t *testing.T) {
			_, err := Run(context.Background(), Options{
				Scenario: "baseline", Short: true, RunID: run, SourceBootstrap: src, TargetBootstrap: tgt,
				SourceTopic: "src", TargetTopic: "dst", ReportDir: t.TempDir(), Logger: testLogger(t),
			})
			if ExitCode(err) != ExitUsage || !strings.Contains(err.Error(), "pick another") || !strings.Contains(err.Error(), run) {
				t.Fatalf("err %v (exit %d), want exit %d naming run %s and saying to pick another", err, ExitCode(err), ExitUsage, run)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := checkRunIDUnused(ctx, "fresh", kafkaclient.Security{}, runIDSide{src, nil, []string{"src"}}, runIDSide{tgt, nil, []string{"dst", "not-yet-created"}}); err != nil {
		t.Fatalf("a fresh run id was refused: %v", err)
	}
}

// TestLedgerProblemsMakeTheVerdictIncomplete: a ledger that does not add up
// turns what would be a pass into incomplete, with the reason.
func TestLedgerProblemsMakeTheVerdictIncomplete(t *testing.T) {
	for _, tc := range []struct {
		problems []string
		want     string
	}{
		{nil, report.Pass},
		{[]string{"ledger of run r (loadgen epoch 7): its done entry counts 3 data entries, the topic holds 2"}, report.Incomplete},
	} {
		rep := &report.Report{}
		ApplyResult(rep, &validator.Result{DrainComplete: true, SourceChecked: true, LedgerProblems: tc.problems})
		rep.Judge()
		if rep.Verdict != tc.want || (tc.problems != nil && !strings.Contains(rep.Error, "does not add up: "+tc.problems[0])) {
			t.Errorf("problems %q: verdict %s, error %q; want %s with the problem", tc.problems, rep.Verdict, rep.Error, tc.want)
		}
	}
}
