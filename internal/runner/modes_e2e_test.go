package runner

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/testkit"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Issue 12 on the embedded clusters: the transactional and record-fidelity
// load modes against the reference mirror, correct and with one defect
// each. The checks must count exactly what the defect did (the mirror's own
// count, kmt_mirror_defect_records_total, or the ledger's aborted records)
// and fail the run; the correct mirror must pass with every count zero.

// modeScenario writes a 6-second scenario with the given load mode block
// (indented under spec.load).
func modeScenario(t *testing.T, name, mode string) string {
	t.Helper()
	y := `apiVersion: kmt.dev/v1
kind: Scenario
metadata:
  name: ` + name + `
spec:
  topology:
    topics:
      - name: orders
        partitions: 3
  load:
    rate: 500
    messageSize: 200
    streams: 8
    duration: 6s
` + mode + `
  drain: 15s
`
	return testkit.WriteTemp(t, name+".yaml", y)
}

const (
	txnMode = `    transactions: {size: 10, abort: 0.2}
`
	txnEOSMode = `    transactions: {size: 10, abort: 0.2, exactlyOnce: true}
`
	fidelityMode = `    fidelity: {headers: true, timestamps: true, tombstoneEvery: 10, compacted: true, largeEvery: 79, largeBytes: 300000, compression: lz4}
`
)

func TestLoadModesProveEachRule(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end runs; skipped with -short")
	}
	t.Parallel() // with the other end-to-end tests, after the sequential ones (e2e_test.go)
	type check func(t *testing.T, rep *report.Report, d uint64)
	cases := []struct {
		name   string
		mode   string
		defect *scenarios.Defect
		pass   bool
		check  check
	}{
		{"transactions: correct mirror", txnMode, nil, true, func(t *testing.T, rep *report.Report, _ uint64) {
			tx := rep.Transactions
			if tx.AbortedRecords != 10*tx.AbortedTransactions || tx.AbortedTransactions == 0 || tx.AbortedCopied != 0 || tx.Torn != 0 {
				t.Errorf("transactions %+v: want aborted records = 10 x aborted transactions > 0, none copied, none torn", tx)
			}
			if rep.Counts.Acked+tx.AbortedRecords != rep.Load.Sent {
				t.Errorf("acked %d + aborted %d != sent %d", rep.Counts.Acked, tx.AbortedRecords, rep.Load.Sent)
			}
		}},
		{"transactions: mirror copies aborted records", txnMode, &scenarios.Defect{Name: scenarios.DefectCopyAborted}, false, func(t *testing.T, rep *report.Report, _ uint64) {
			tx := rep.Transactions
			if tx.AbortedCopied != tx.AbortedRecords || tx.AbortedRecords == 0 || rep.Counts.AbortedCopied != tx.AbortedRecords || rep.Counts.Lost+rep.Counts.Unseen != 0 {
				t.Errorf("transactions %+v counts %+v: want every aborted record copied, nothing lost", tx, rep.Counts)
			}
		}},
		{"transactions: mirror drops records (torn)", txnMode, &scenarios.Defect{Name: scenarios.DefectDrop, Every: 50}, false, func(t *testing.T, rep *report.Report, d uint64) {
			// every 50th committed record: never two in one transaction of 10
			tx := rep.Transactions
			if tx.Torn != d || tx.TornMissing != d || rep.Counts.Lost+rep.Counts.Unseen != d || d == 0 {
				t.Errorf("transactions %+v lost+unseen %d: want torn = torn_missing = lost = %d dropped", tx, rep.Counts.Lost+rep.Counts.Unseen, d)
			}
		}},
		{"transactions: duplicates with exactly-once claimed", txnEOSMode, &scenarios.Defect{Name: scenarios.DefectDuplicate, Every: 50}, false, func(t *testing.T, rep *report.Report, d uint64) {
			if tx := rep.Transactions; tx.Duplicates != d || d == 0 || !strings.Contains(strings.Join(rep.Reasons, ";"), "exactly-once") {
				t.Errorf("transactions %+v reasons %v: want %d duplicates failing the run", tx, rep.Reasons, d)
			}
		}},
		{"fidelity: correct mirror", fidelityMode, nil, true, func(t *testing.T, rep *report.Report, _ uint64) {
			f := rep.Fidelity
			if f.Headers.Checked != rep.Counts.Received || f.Headers.Changed != 0 || f.Timestamps.Changed != 0 || f.Tombstones.Missing != 0 ||
				f.Tombstones.Delivered == 0 || f.Tombstones.Delivered != f.Tombstones.Acked || f.Large.Delivered != f.Large.Acked || f.Large.Acked == 0 ||
				f.Compaction.Differ != 0 || f.Compaction.TargetKeys != f.Compaction.SourceKeys || f.Timestamps.Checked+f.Tombstones.Delivered != rep.Counts.Received {
				t.Errorf("fidelity %+v headers %+v timestamps %+v tombstones %+v large %+v compaction %+v", f, f.Headers, f.Timestamps, f.Tombstones, f.Large, f.Compaction)
			}
		}},
		{"fidelity: mirror drops headers", fidelityMode, &scenarios.Defect{Name: scenarios.DefectDropHeaders, Every: 50}, false, func(t *testing.T, rep *report.Report, d uint64) {
			if h := rep.Fidelity.Headers; h.Changed != d || d == 0 {
				t.Errorf("headers %+v, want %d changed", h, d)
			}
		}},
		{"fidelity: mirror rewrites timestamps", fidelityMode, &scenarios.Defect{Name: scenarios.DefectRewriteTimestamp, Every: 50}, false, func(t *testing.T, rep *report.Report, d uint64) {
			if ts := rep.Fidelity.Timestamps; ts.Changed != d || d == 0 {
				t.Errorf("timestamps %+v, want %d changed", ts, d)
			}
		}},
		{"fidelity: mirror drops tombstones", fidelityMode, &scenarios.Defect{Name: scenarios.DefectDropTombstones}, false, func(t *testing.T, rep *report.Report, d uint64) {
			if tb := rep.Fidelity.Tombstones; tb.Missing != d || tb.Delivered != 0 || d == 0 || rep.Counts.Lost+rep.Counts.Unseen != d {
				t.Errorf("tombstones %+v lost+unseen %d, want %d missing", tb, rep.Counts.Lost+rep.Counts.Unseen, d)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e2eSlot(t)
			o := Options{Scenario: modeScenario(t, "modes", tc.mode), Registry: prometheus.NewRegistry(), Drain: 15 * time.Second}
			var d uint64
			if tc.defect != nil {
				o.Defects = []scenarios.Defect{*tc.defect}
			}
			rep, took := runE2E(t, o)
			logReport(t, rep, took)
			if tc.defect != nil {
				d = defectRecords(t, o.Registry, tc.defect.Name)
			}
			t.Logf("mirror counted %d; transactions %+v fidelity %+v", d, rep.Transactions, rep.Fidelity)
			if (tc.mode == fidelityMode) != (rep.Fidelity != nil) || (tc.mode != fidelityMode) != (rep.Transactions != nil) {
				t.Fatalf("report sections: transactions %v fidelity %v", rep.Transactions != nil, rep.Fidelity != nil)
			}
			tc.check(t, rep, d)
			if wantV := map[bool]string{true: report.Pass, false: report.Fail}[tc.pass]; rep.Verdict != wantV {
				t.Errorf("verdict %s (reasons %v, error %q), want %s", rep.Verdict, rep.Reasons, rep.Error, wantV)
			}
		})
	}
}
