package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// The scale-out split on one kfake cluster standing in for both datacenters
// (an identity mirror): three `kmt loadgen` instances of one launch share a
// run id, three `kmt validate --shards 3` shards each read a third of the
// partitions and publish their states, `kmt validate --merge` writes the
// report; a plain `kmt validate` judges the same run. Both reports must say
// the same, and the run id is refused to a later launch.
func TestShardedLoadgenAndValidateCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("produces and validates 3000 records on kfake")
	}
	addr := startKfake(t, "orders", 6)
	const run, n = "scale-1", 3
	common := []string{"--source-bootstrap", addr, "--target-bootstrap", addr, "--topic", "orders", "--run-id", run, "--drain", "10s", "--wait", "60s", "--log-level", "warn"}
	type result struct {
		code      int
		out, errs string
	}
	var mu sync.Mutex
	results := map[string]result{}
	var wg sync.WaitGroup
	start := func(name string, args ...string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out, errs := cliRun(t, args...)
			mu.Lock()
			results[name] = result{code, out, errs}
			mu.Unlock()
		}()
	}
	single, merged := t.TempDir(), t.TempDir()
	start("single", append([]string{"validate", "--report-dir", single}, common...)...)
	start("merge", append([]string{"validate", "--merge", "--shards", "3", "--report-dir", merged}, common...)...)
	for i := range n {
		start(fmt.Sprintf("shard %d", i), append([]string{"validate", "--shards", "3", "--shard", fmt.Sprint(i)}, common...)...)
		start(fmt.Sprintf("loadgen %d", i), "loadgen", "--bootstrap", addr, "--topic", "orders", "--rate", "1500", "--count", "3000", "--streams", "4",
			"--run-id", run, "--ledger-topic", "__kmt_ledger", "--instances", "3", "--instance", fmt.Sprint(i), "--launch-id", "launch-1", "--log-level", "warn")
	}
	wg.Wait()
	for name, r := range results {
		if r.code != 0 {
			t.Errorf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", name, r.code, r.out, r.errs)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	one, err := report.ReadJSON(filepath.Join(single, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := report.ReadJSON(filepath.Join(merged, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Counts != one.Counts || m.Verdict != one.Verdict || m.SourceChecked != one.SourceChecked || m.ExtraCounts != one.ExtraCounts {
		t.Errorf("merged report: %s %+v %+v source %v\nsingle report: %s %+v %+v source %v", m.Verdict, m.Counts, m.ExtraCounts, m.SourceChecked,
			one.Verdict, one.Counts, one.ExtraCounts, one.SourceChecked)
	}
	if c := m.Counts; m.Verdict != report.Pass || c.Acked != 3000 || c.Received != 3000 {
		t.Errorf("merged report: %s %+v, want a pass with 3000 acked and received", m.Verdict, c)
	}

	// A later launch reusing the run id: every instance refuses it (exit 2).
	for i := range 2 {
		code, _, errs := cliRun(t, "loadgen", "--bootstrap", addr, "--topic", "orders", "--count", "10", "--run-id", run, "--ledger-topic", "__kmt_ledger",
			"--instances", "2", "--instance", fmt.Sprint(i), "--launch-id", "launch-2", "--log-level", "warn")
		if code != 2 || !strings.Contains(errs, "already") {
			t.Errorf("instance %d of a second launch of %s: exit %d, stderr %q; want 2 and the run id in use", i, run, code, errs)
		}
	}
}
