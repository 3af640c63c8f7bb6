package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// TestLoadgenThenValidate is the cluster-run split used on Kubernetes, on
// one kfake cluster standing in for both datacenters (an identity mirror):
// `kmt loadgen` creates the topic, produces and publishes its ack ledger to
// the ledger topic; `kmt validate`, another process in real life, learns
// what was acked only from that topic and judges the target.
func TestLoadgenThenValidate(t *testing.T) {
	if testing.Short() {
		t.Skip("produces and validates 1500 records on kfake")
	}
	addr := startKfake(t, "", 0)
	code, out, errs := cliRun(t, "loadgen", "--bootstrap", addr, "--topic", "orders", "--create-topics",
		"--rate", "1000", "--count", "1500", "--streams", "5", "--run-id", "split-1", "--ledger-topic", "__kmt_ledger", "--log-level", "warn")
	if code != 0 {
		t.Fatalf("loadgen exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	var st struct{ Acked, Failed uint64 }
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &st); err != nil || st.Acked != 1500 {
		t.Fatalf("loadgen printed %q (err %v), want acked 1500", out, err)
	}

	dir := t.TempDir()
	code, out, errs = cliRun(t, "validate", "--source-bootstrap", addr, "--target-bootstrap", addr, "--topic", "orders",
		"--run-id", "split-1", "--drain", "15s", "--wait", "30s", "--report-dir", dir, "--log-level", "warn")
	if code != 0 {
		t.Fatalf("validate exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
	rep, err := report.ReadJSON(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Counts
	if rep.Verdict != report.Pass || c.Acked != 1500 || c.Received != 1500 || c.Duplicate != 0 || c.Lost+c.Unseen != 0 || !rep.SourceChecked {
		t.Errorf("report: verdict %s counts %+v source_checked %v; want pass, 1500 acked and received, nothing else", rep.Verdict, c, rep.SourceChecked)
	}
	if _, err := os.Stat(filepath.Join(dir, "junit.xml")); err != nil {
		t.Error(err)
	}

	// The same run id again (a restarted pod, a copied command line): refused
	// before producing, exit 2, saying how to pick another.
	code, _, errs = cliRun(t, "loadgen", "--bootstrap", addr, "--topic", "orders", "--count", "10",
		"--run-id", "split-1", "--ledger-topic", "__kmt_ledger", "--log-level", "warn")
	if code != 2 || !strings.Contains(errs, "pick another") {
		t.Errorf("loadgen with a used run id: exit %d, stderr %q; want 2 and how to pick another", code, errs)
	}

	// A run id the ledger never saw: the validator waits for its load,
	// gives up after --wait and says so, with exit 3.
	code, _, errs = cliRun(t, "validate", "--source-bootstrap", addr, "--target-bootstrap", addr, "--topic", "orders",
		"--run-id", "no-such-run", "--drain", "1s", "--wait", "3s", "--report-dir", t.TempDir(), "--log-level", "warn")
	if code != 3 || !strings.Contains(errs, "did not finish") {
		t.Errorf("validate of an unknown run: exit %d, stderr %q; want 3 and a message that its load did not finish", code, errs)
	}
}

// Flags that make no sense are blamed on the flag, not on the scenario file.
func TestFlagErrorsNameTheFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "baseline", "--mirror", "bogus"}, "--mirror \"bogus\""},
		{[]string{"run", "baseline", "--mirror-command", "true", "--defect", "drop=10"}, "--defect needs the reference mirror"},
		{[]string{"render", "rules", "baseline", "--short", "--namespace", "mon"}, ""},
	} {
		code, out, errs := cliRun(t, tc.args...)
		if tc.want == "" {
			if code != 0 || !strings.Contains(out, "namespace: mon") {
				t.Errorf("%v: exit %d, stdout %q", tc.args, code, out)
			}
			continue
		}
		if code != 2 || !strings.Contains(errs, tc.want) || strings.Contains(errs, "baseline:") {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q, not a scenario line", tc.args, code, errs, tc.want)
		}
	}
}
