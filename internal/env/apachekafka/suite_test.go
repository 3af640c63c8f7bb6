package apachekafka_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/assertions"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// expectation is what a scenario must show on real Kafka, from the mirror
// contract the catalogue encodes and MirrorMaker 2 documents: at-least-once
// (duplicates allowed where a fault interrupts the mirror between copying
// and committing), nothing acknowledged lost, order kept per partition.
type expectation struct {
	scenario string
	// brokers per cluster: 1 unless the fault needs survivors (a killed
	// source broker's partitions must move to another broker).
	brokers int
	// dupsAllowed: the fault may make the mirror copy records again.
	dupsAllowed bool
}

// Parallel real-Kafka tests: those whose checks are counts, not times
// (TestFailoverDrillOnRealKafka, TestLoadModesOnRealKafka,
// TestThreeNodeFaults, TestInterruptLeavesNoJVM, TestKilledKmtLeavesNoJVM)
// call t.Parallel, so go test runs them two at a time (-parallel defaults
// to GOMAXPROCS, 2 on CI) after the sequential ones, in no fixed order. The
// exactly-once transactions run spends about a minute waiting for
// MirrorMaker 2's new task after the hard kill (docs/mirrormaker2.md),
// nearly idle: the other slot runs some of the failover drill, the
// three-node broker faults and the interrupt tests meanwhile.
// TestCatalogueSubsetOnRealKafka stays sequential (alone): its
// metadata-sync window and stall threshold are times.

// ciSubset is what `make test` runs of the catalogue on real Kafka (about
// 40 s each on 2 cores): the two issue-12 families that are stories of
// their own (topic metadata sync: configs, partitions and a new topic; the
// stall watchdog: the mirror frozen while the source grows) and retention
// purge, which only real Kafka's purge to the high watermark exposed
// (kmt's source reader was just past the new log start when the purge was
// noted, and the validator called purged records lost: reference lost 14 /
// truncated 21, MirrorMaker 2 lost 218 / truncated 553; fixed in
// validator/source.go, test "source reader just past the purge" in
// validator/tracker_test.go; then received + truncated = acked for both
// mirrors: reference 7977 + 23, MirrorMaker 2 7123 + 877). The other
// issue-12 families run in make test from their own tests
// (TestFailoverDrillOnRealKafka, TestLoadModesOnRealKafka: exactly-once
// transactions, which include a hard kill of MirrorMaker 2, and record
// fidelity). The rest of the catalogue (baseline, mirror hard kill and
// graceful restart, source broker kill at 3 brokers, WAN partition and
// latency, partitions added, ...) runs on real Kafka in make test-real
// (KMT_REAL_FULL=1), and every story runs with the reference mirror on
// the embedded backend in make test (internal/runner TestCatalogueShort).
var ciSubset = []expectation{
	{"topic-metadata-sync", 1, true},
	{"mirror-stall-watchdog", 1, true},
	{"retention-purge", 1, true},
}

// realMirrors are the mirrors the real-Kafka runs use: MirrorMaker 2 (the
// mirror users run) in `make test`; both with KMT_REAL_FULL (make
// test-real) or as listed in KMT_REAL_MIRRORS (comma-separated).
func realMirrors() []string {
	if v := os.Getenv("KMT_REAL_MIRRORS"); v != "" {
		return strings.Split(v, ",")
	}
	if os.Getenv("KMT_REAL_FULL") != "" {
		return []string{scenarios.MirrorReference, scenarios.MirrorMirrorMaker2}
	}
	return []string{scenarios.MirrorMirrorMaker2}
}

// TestCatalogueSubsetOnRealKafka runs the CI subset on real Apache Kafka
// clusters with each built-in mirror, checks the verdict against the
// expectation, and counts the target topic with kcat (librdkafka, a client
// the validator does not use) against the report. With KMT_REAL_FULL=1
// (make test-real) it runs the whole catalogue at the scenarios' own
// broker counts instead.
func TestCatalogueSubsetOnRealKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("real Kafka runs take about a minute each; skipped with -short")
	}
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat not on PATH (make deps installs it): %v", err)
	}
	set := ciSubset
	if os.Getenv("KMT_REAL_FULL") != "" {
		set = nil
		for _, name := range scenarios.Catalogue() {
			set = append(set, fullExpectation(name))
		}
	}
	suite := time.Now()
	mirrors := realMirrors()
	runs := 0
	for _, m := range mirrors {
		for _, e := range set {
			runs++
			t.Run(m+"/"+e.scenario, func(t *testing.T) { runReal(t, kcat, m, e) })
		}
	}
	t.Logf("real-Kafka suite (%d runs) took %v", runs, time.Since(suite).Round(time.Second))
}

// fullExpectation: the scenario's own broker counts; duplicates allowed
// wherever a fault runs.
func fullExpectation(name string) expectation {
	s, err := scenarios.Read(name)
	return expectation{scenario: name, brokers: 0, dupsAllowed: err != nil || len(s.Spec.Timeline) > 0}
}

func runReal(t *testing.T, kcat, mirror string, e expectation) {
	runID := runner.NewRunID("real-" + e.scenario)
	dir := t.TempDir()
	o := runner.Options{
		Scenario: e.scenario, Short: true, Brokers: runner.BrokersApache, ClusterSize: e.brokers,
		Mirror: mirror, RunID: runID, ReportDir: dir,
	}
	p, err := runner.Prepare(o)
	if err != nil {
		t.Fatalf("prepare %s: %v", e.scenario, err)
	}
	targetTopic := p.Scenario.Spec.Topology.Topics[0].Target()
	var counted kcatCount
	o.BeforeTeardown = func(_, target string) { counted = countTarget(kcat, target, targetTopic) }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	t0 := time.Now()
	rep, err := runner.Run(ctx, o)
	took := time.Since(t0)
	noJVMLeft(t, runID)
	if err != nil {
		t.Fatalf("%s on real Kafka with %s: %v (logs in %s)", e.scenario, mirror, err, dir)
	}
	c := rep.Counts
	t.Logf("%s/%s: verdict %s in %v; acked %d received %d dup %d lost %d unseen %d reordered %d truncated %d; p99 %.3fs; brokers %s",
		mirror, e.scenario, rep.Verdict, took.Round(time.Second), c.Acked, c.Received, c.Duplicate, c.Lost, c.Unseen, c.Reordered, rep.ExtraCounts.Truncated, rep.LatencySeconds.P99, rep.Brokers)
	if !strings.HasPrefix(rep.Brokers, "apache-kafka-") {
		t.Errorf("report.brokers = %q, want apache-kafka-<version>", rep.Brokers)
	}
	checkVerdict(t, rep, e)
	if counted.err != nil {
		t.Fatalf("independent kcat count of %s: %v", targetTopic, counted.err)
	}
	if want := c.Received + c.Foreign + c.Corrupt + rep.ExtraCounts.OtherRuns; uint64(counted.n) != want {
		t.Errorf("kcat counted %d records in %s on the target; the report says received+foreign+corrupt+other_runs = %d", counted.n, targetTopic, want)
	}
}

// checkVerdict holds the run to its expectation. Timing assertions
// (p99 latency, recovers-within) are measurements on a shared 2-core
// machine: reported and logged, never what makes this test pass or fail.
func checkVerdict(t *testing.T, rep *report.Report, e expectation) {
	t.Helper()
	c := rep.Counts
	if rep.Verdict == report.Incomplete {
		t.Fatalf("verdict incomplete: %s", rep.Error)
	}
	for _, x := range []struct {
		what string
		n    uint64
	}{{"lost", c.Lost}, {"unseen", c.Unseen}, {"corrupt", c.Corrupt}, {"reordered", c.Reordered}, {"source_lost", c.SourceLost}} {
		if x.n != 0 {
			t.Errorf("%s: %d %s, want 0 (nothing acknowledged may be lost or damaged)", e.scenario, x.n, x.what)
		}
	}
	if !e.dupsAllowed && c.Duplicate != 0 {
		t.Errorf("%s: %d duplicates, want 0 (no fault interrupts the mirror)", e.scenario, c.Duplicate)
	}
	if distinct := c.Received - c.Duplicate; c.Acked == 0 || distinct+rep.ExtraCounts.Truncated < c.Acked {
		t.Errorf("%s: acked %d, distinct received %d, truncated %d: no data moved or some was lost", e.scenario, c.Acked, distinct, rep.ExtraCounts.Truncated)
	}
	checkSyncAndStalls(t, rep, e)
	for _, a := range rep.Assertions {
		if a.Pass {
			continue
		}
		if strings.HasPrefix(a.Name, assertions.NameP99Prefix) || strings.HasPrefix(a.Name, assertions.NameRecoversPrefix) {
			t.Logf("%s: timing assertion %s not met (observed %v, %s): measured, not asserted here", e.scenario, a.Name, a.Observed, a.Reason)
			continue
		}
		t.Errorf("%s: assertion %s failed: observed %v %s", e.scenario, a.Name, a.Observed, a.Reason)
	}
}

// checkSyncAndStalls: every metadata change the mirror copies by design
// arrived within the scenario's window (its time is logged: the numbers in
// docs/mirrormaker2.md), no stall was left open, and where the mirror is
// frozen on purpose (mirror-stall-watchdog) the watchdog saw the target
// stand still and move again.
func checkSyncAndStalls(t *testing.T, rep *report.Report, e expectation) {
	t.Helper()
	if ms := rep.MetadataSync; ms != nil {
		for _, c := range ms.Changes {
			secs := "never"
			if c.Seconds != nil {
				secs = fmt.Sprintf("%.1fs", *c.Seconds)
			}
			t.Logf("%s: metadata %s %s on %s: synced %v after %s (never copied by design: %v; target has %q)", e.scenario, c.Kind, c.What, c.TargetTopic, c.Synced, secs, c.NeverCopied, c.Observed)
			if !c.Synced && !c.NeverCopied {
				t.Errorf("%s: %s (%s) did not reach %s within %gs", e.scenario, c.What, c.Kind, c.TargetTopic, ms.WithinSeconds)
			}
		}
	}
	recovered := 0
	if st := rep.Stalls; st != nil {
		for _, ev := range st.Events {
			t.Logf("%s: %s of %s[%d] from %s for %.1fs, recovered %v, fault %q", e.scenario, ev.Kind, ev.Topic, ev.Partition, ev.Start.Format(time.TimeOnly), ev.Seconds, ev.Recovered, ev.Fault)
			if ev.Kind != report.StallKind {
				continue
			}
			if !ev.Recovered {
				t.Errorf("%s: target %s partition %d stalled and never recovered", e.scenario, ev.Topic, ev.Partition)
			}
			recovered++
		}
	}
	if e.scenario == "mirror-stall-watchdog" && recovered == 0 {
		t.Errorf("%s: the mirror was frozen while the source grew, but the watchdog saw no stall", e.scenario)
	}
}

type kcatCount struct {
	n   int
	err error
}

// countTarget counts every record of the topic with kcat, reading each
// partition to its end.
func countTarget(kcat, bootstrap, topic string) kcatCount {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcat, "-C", "-e", "-q", "-b", bootstrap, "-t", topic, "-o", "beginning", "-f", "%p %o\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return kcatCount{err: fmt.Errorf("%s: %w: %s", cmd, err, stderr.Bytes())}
	}
	return kcatCount{n: bytes.Count(out, []byte("\n"))}
}

// noJVMLeft fails when any process still carries the run id (every JVM's
// command line names the run's temporary folder, which holds it).
// runStoryReal runs o (a story on real Kafka) within timeout, checks that no JVM
// of the run survives it, and fails the test naming what and where the logs
// are if the run could not be judged. It returns the report and the wall
// time of the run.
func runStoryReal(t *testing.T, o runner.Options, what string, timeout time.Duration) (*report.Report, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	t0 := time.Now()
	rep, err := runner.Run(ctx, o)
	noJVMLeft(t, o.RunID)
	if err != nil {
		t.Fatalf("%s on real Kafka: %v (logs in %s)", what, err, o.ReportDir)
	}
	return rep, time.Since(t0)
}

func noJVMLeft(t *testing.T, runID string) {
	t.Helper()
	out, err := exec.Command("pgrep", "-af", runID).Output()
	if err == nil && len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("processes of run %s survive the run:\n%s", runID, out)
	}
}

// TestInterruptLeavesNoJVM cancels a real-Kafka run as Ctrl-C does while
// the load runs and checks that no JVM of it survives.
func TestInterruptLeavesNoJVM(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real Kafka")
	}
	t.Parallel() // two at a time with the other count-checked real-Kafka tests (suite_test.go, above ciSubset)
	runID := runner.NewRunID("real-interrupt")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := runner.Options{Scenario: "baseline", Short: true, Brokers: runner.BrokersApache, ClusterSize: 1, RunID: runID, ReportDir: t.TempDir()}
	o.OnStart = func(time.Time, string) {
		go func() { time.Sleep(2 * time.Second); cancel() }()
	}
	rep, err := runner.Run(ctx, o)
	noJVMLeft(t, runID)
	if err == nil && rep != nil && rep.Verdict != report.Incomplete {
		t.Errorf("interrupted run: verdict %q, want incomplete", rep.Verdict)
	}
	if logs, _ := filepath.Glob(filepath.Join(o.ReportDir, "source-broker-*.log")); len(logs) == 0 {
		t.Errorf("no broker logs in the report folder %s", o.ReportDir)
	}
}

// TestKilledKmtLeavesNoJVM kills kmt itself with SIGKILL (no cleanup can
// run) while its real clusters serve, and checks the kernel takes every JVM
// down with it (each is started with a parent-death signal).
func TestKilledKmtLeavesNoJVM(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real Kafka")
	}
	t.Parallel() // two at a time with the other count-checked real-Kafka tests (suite_test.go, above ciSubset)
	bin := filepath.Join(t.TempDir(), "kmt")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../cmd/kmt").CombinedOutput(); err != nil {
		t.Fatalf("build kmt: %v\n%s", err, out)
	}
	runID := runner.NewRunID("real-sigkill")
	cmd := exec.Command(bin, "run", "baseline", "--short", "--brokers", "apache", "--cluster-size", "1", "--run-id", runID, "--report-dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		// kmt could not remove its temporary cluster folder: do it here.
		dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "kmt-"+runID+"-*"))
		for _, d := range dirs {
			os.RemoveAll(d)
		}
	}()
	deadline := time.Now().Add(5 * time.Minute)
	for len(jvmsOf(runID)) < 2 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("kmt did not start two broker JVMs within 5 minutes")
		}
		time.Sleep(500 * time.Millisecond)
	}
	pids := jvmsOf(runID)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	deadline = time.Now().Add(30 * time.Second)
	for len(jvmsOf(runID)) > 0 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	if left := jvmsOf(runID); len(left) > 0 {
		for _, p := range left {
			syscall.Kill(p, syscall.SIGKILL)
		}
		t.Fatalf("JVMs %v (of %v) outlived a SIGKILLed kmt by 30 s", left, pids)
	}
	t.Logf("JVMs %v went down with kmt", pids)
}

// jvmsOf lists the broker JVMs (kafka.Kafka, not the storage formatter
// that exits by itself) whose command line carries runID.
func jvmsOf(runID string) []int {
	out, _ := exec.Command("pgrep", "-f", `java .*kafka\.Kafka .*`+runID).Output()
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil {
			pids = append(pids, p)
		}
	}
	return pids
}
