package apachekafka_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// TestLoadModesOnRealKafka runs the transactions and record-fidelity
// stories (short forms, about a minute each) on real Apache Kafka with real
// MirrorMaker 2:
//
//   - transactions with MirrorMaker 2's defaults (exactly-once off): its
//     source consumer reads read_uncommitted, so records of aborted
//     transactions are copied as ordinary records. The counts are checked
//     for consistency and logged (docs/mirrormaker2.md has the numbers);
//     whatever it copied of them must be exactly what the ledger aborted
//     and fail the run.
//   - transactions with exactlyOnce (read_committed source consumer,
//     transactional writes to the target): no aborted record, no torn
//     transaction and no duplicate even across the hard kill.
//   - record-fidelity: headers, CreateTime, tombstones, the compacted
//     map, 300 KB records and compression all survive.
func TestLoadModesOnRealKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("real Kafka runs take about a minute each; skipped with -short")
	}
	t.Parallel() // two at a time with the other count-checked real-Kafka tests (suite_test.go, above ciSubset)
	t.Run("mirrormaker2/transactions", func(t *testing.T) {
		// make test keeps the exactly-once run below (the family's CI
		// proof); this one (about 2.5 min on 2 cores) is in make test-real.
		if os.Getenv("KMT_REAL_FULL") == "" {
			t.Skip("MirrorMaker 2 transactions with exactly-once off: run by make test-real (KMT_REAL_FULL=1)")
		}
		rep := runMode(t, "transactions", scenarios.MirrorMirrorMaker2)
		tx := rep.Transactions
		if tx == nil || tx.AbortedRecords == 0 || tx.AbortedRecords != 10*tx.AbortedTransactions {
			t.Fatalf("transactions section %+v: want aborted records = 10 x aborted transactions > 0", tx)
		}
		if tx.AbortedCopied > tx.AbortedRecords || rep.Counts.AbortedCopied != tx.AbortedCopied {
			t.Errorf("aborted_copied %d (counts %d) of %d aborted records", tx.AbortedCopied, rep.Counts.AbortedCopied, tx.AbortedRecords)
		}
		if tx.AbortedCopied > 0 && rep.Verdict != report.Fail {
			t.Errorf("%d aborted records copied, verdict %s: want fail", tx.AbortedCopied, rep.Verdict)
		}
	})
	t.Run("mirrormaker2-exactly-once/transactions", func(t *testing.T) {
		rep := runMode(t, exactlyOnceTransactions(t), "")
		tx := rep.Transactions
		if tx == nil || tx.AbortedRecords == 0 || !tx.ExactlyOnce {
			t.Fatalf("transactions section %+v: want aborted records and exactly_once", tx)
		}
		if tx.AbortedCopied != 0 || tx.Torn != 0 || tx.Duplicates != 0 || rep.Verdict != report.Pass {
			t.Errorf("exactly-once MirrorMaker 2: aborted_copied %d torn %d duplicates %d verdict %s (%v): want 0, 0, 0, pass",
				tx.AbortedCopied, tx.Torn, tx.Duplicates, rep.Verdict, rep.Reasons)
		}
	})
	t.Run("mirrormaker2/record-fidelity", func(t *testing.T) {
		rep := runMode(t, "record-fidelity", scenarios.MirrorMirrorMaker2)
		f := rep.Fidelity
		if f == nil || f.Headers.Checked == 0 || f.Tombstones.Acked == 0 || f.Large.Acked == 0 {
			t.Fatalf("fidelity section %+v: nothing checked", f)
		}
		if f.Headers.Changed != 0 || f.Timestamps.Changed != 0 || f.Tombstones.Missing != 0 || f.Compaction.Differ != 0 ||
			f.Large.Delivered != f.Large.Acked || len(f.Large.Stuck) != 0 || rep.Verdict != report.Pass {
			t.Errorf("MirrorMaker 2 record fidelity: headers %+v timestamps %+v tombstones %+v compaction %+v large %+v compression %+v verdict %s %v",
				f.Headers, f.Timestamps, f.Tombstones, f.Compaction, f.Large, f.Compression, rep.Verdict, rep.Reasons)
		}
	})
}

// runMode runs a scenario's short form on one-broker real clusters (with
// mirror as the mirror kind when set) and logs the load-mode sections.
func runMode(t *testing.T, scenario, mirror string) *report.Report {
	t.Helper()
	name := strings.TrimSuffix(filepath.Base(scenario), ".yaml")
	runID := runner.NewRunID("real-" + name)
	o := runner.Options{Scenario: scenario, Short: true, Brokers: runner.BrokersApache, ClusterSize: 1,
		Mirror: mirror, RunID: runID, ReportDir: t.TempDir(),
		// A bound, not a wait: MirrorMaker 2 with exactly-once needs about a
		// minute after a hard kill before its new task copies again
		// (docs/mirrormaker2.md); the drain ends as soon as all arrived.
		Drain: 180 * time.Second}
	rep, took := runStoryReal(t, o, scenario, 10*time.Minute)
	c := rep.Counts
	t.Logf("%s: verdict %s in %v; acked %d received %d duplicate %d lost %d unseen %d aborted_copied %d; reasons %v",
		name, rep.Verdict, took.Round(time.Second), c.Acked, c.Received, c.Duplicate, c.Lost, c.Unseen, c.AbortedCopied, rep.Reasons)
	if tx := rep.Transactions; tx != nil {
		t.Logf("transactions %+v", *tx)
	}
	if f := rep.Fidelity; f != nil {
		t.Logf("fidelity headers %+v timestamps %+v tombstones %+v compaction %+v large %+v compression %+v", f.Headers, f.Timestamps, f.Tombstones, f.Compaction, f.Large, f.Compression)
	}
	if rep.Verdict == report.Incomplete {
		t.Fatalf("verdict incomplete: %s", rep.Error)
	}
	if c.Lost+c.Unseen+c.Corrupt+c.Reordered+c.SourceLost != 0 {
		t.Errorf("lost %d unseen %d corrupt %d reordered %d source_lost %d: want 0", c.Lost, c.Unseen, c.Corrupt, c.Reordered, c.SourceLost)
	}
	return rep
}

// exactlyOnceTransactions is the transactions story with MirrorMaker 2's
// exactlyOnce on and the transactional checks told so (a duplicate fails).
func exactlyOnceTransactions(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../../scenarios/transactions.yaml")
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), "        partitions: 6\n", "        partitions: 6\n    mirror:\n      kind: mirrormaker2\n      mirrormaker2:\n        exactlyOnce: true\n", 1)
	y = strings.Replace(y, "      abort: 0.2\n", "      abort: 0.2\n      exactlyOnce: true\n", 1)
	y = strings.Replace(y, "name: transactions\n", "name: transactions-exactly-once\n", 1)
	p := filepath.Join(t.TempDir(), "transactions-exactly-once.yaml")
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
