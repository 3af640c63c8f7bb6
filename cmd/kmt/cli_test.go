package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// cliRun runs kmt with args and returns the exit code, stdout and stderr.
func cliRun(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	start := time.Now()
	code := run(args, &out, &errb)
	t.Logf("kmt %s -> exit %d in %s", strings.Join(args, " "), code, time.Since(start).Round(time.Millisecond))
	return code, out.String(), errb.String()
}

// cliBase is a valid scenario; each bad case below breaks one thing in it.
const cliBase = `apiVersion: kmt.dev/v1
kind: Scenario
metadata:
  name: cli-test
  description: a valid scenario that the cases below break one way each
spec:
  topology:
    topics:
      - name: orders
        partitions: 3
  load:
    rate: 200
    messageSize: 256
    streams: 4
    duration: 20s
  warmup: 2s
  recovery: 3s
  drain: 10s
  timeline:
    - name: kill-mirror
      kind: mirror-kill
      at: 5s
      duration: 4s
  assertions:
    noLoss: true
    custom:
      - {name: arrivals, expr: 'sum(rate(kmt_validator_received_total[10s]))', op: '>', value: 1, window: steady}
  short:
    duration: 10s
    warmup: 1s
    recovery: 1s
    timeScale: 0.5
`

func writeScenario(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "scenario.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCLIBaseScenarioIsValid(t *testing.T) {
	// The bad cases are the base with one mistake: the base itself must
	// pass, or every bad case would pass for the wrong reason.
	p := writeScenario(t, cliBase)
	if code, _, stderr := cliRun(t, "lint", p); code != 0 {
		t.Fatalf("base scenario: lint exit %d, want 0:\n%s", code, stderr)
	}
	// mirror-kill runs on Kubernetes too.
	if code, _, stderr := cliRun(t, "lint", "--backend", "kubernetes", p); code != 0 {
		t.Fatalf("base scenario on kubernetes: lint exit %d, want 0:\n%s", code, stderr)
	}
}

// TestCLIBadScenarios: every bad scenario of scenarios/testdata (what each
// error says is checked there, scenarios/bad_test.go) is exit 2 through both
// kmt lint and kmt run, with the file in the message and no summary; and
// --short on a scenario without a short block, which only kmt run can see.
func TestCLIBadScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "scenarios", "testdata", "*.bad.yaml"))
	if err != nil || len(files) < 28 {
		t.Fatalf("scenarios/testdata: %d bad scenarios (%v), want at least 28", len(files), err)
	}
	check := func(t *testing.T, how, path string, code int, stdout, stderr string) {
		t.Helper()
		if code != 2 || !strings.Contains(stderr, path) {
			t.Errorf("%s %s: exit %d, want 2 naming the file; stderr:\n%s", how, path, code, stderr)
		}
		if stdout != "" && how == "kmt run" {
			t.Errorf("kmt run on a bad scenario printed a summary: %s", stdout)
		}
	}
	for _, p := range files {
		t.Run(strings.TrimSuffix(filepath.Base(p), ".bad.yaml"), func(t *testing.T) {
			code, stdout, stderr := cliRun(t, "lint", p)
			check(t, "kmt lint", p, code, "", stderr)
			code, stdout, stderr = cliRun(t, "run", p, "--report-dir", t.TempDir(), "--log-level", "error")
			check(t, "kmt run", p, code, stdout, stderr)
		})
	}
	noShort := writeScenario(t, strings.Replace(cliBase, "  short:\n    duration: 10s\n    warmup: 1s\n    recovery: 1s\n    timeScale: 0.5\n", "", 1))
	code, stdout, stderr := cliRun(t, "run", noShort, "--short", "--report-dir", t.TempDir(), "--log-level", "error")
	check(t, "kmt run", noShort, code, stdout, stderr)
	if !strings.Contains(stderr, "spec.short") {
		t.Errorf("--short without a short block: %s", stderr)
	}
}

func TestCLILintCatalogue(t *testing.T) {
	files, err := filepath.Glob("../../scenarios/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(scenarios.Catalogue()) || len(files) == 0 {
		t.Fatalf("%d YAML files in scenarios/, catalogue has %d", len(files), len(scenarios.Catalogue()))
	}
	code, stdout, stderr := cliRun(t, append([]string{"lint"}, files...)...)
	if code != 0 {
		t.Fatalf("kmt lint on the catalogue: exit %d\n%s", code, stderr)
	}
	if n := strings.Count(stdout, ": ok"); n != len(files) {
		t.Errorf("lint said ok %d times for %d files:\n%s", n, len(files), stdout)
	}
	// One bad file among good ones still fails the whole lint.
	bad := writeScenario(t, strings.Replace(cliBase, "op: '>'", "op: '=>'", 1))
	if code, _, _ := cliRun(t, "lint", files[0], bad); code != 2 {
		t.Errorf("lint of a good and a bad file: exit %d, want 2", code)
	}
}

func TestCLIBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "baseline", "--bogus"}, "--bogus"},
		{[]string{"run"}, "accepts 1 arg"},
		{[]string{"run", "baseline", "extra"}, "accepts 1 arg"},
		{[]string{"run", "baseline", "--duration", "soon"}, "--duration"},
		{[]string{"run", "baseline", "--defect", "drop"}, "drop=100"},
		{[]string{"run", "baseline", "--defect", "drop=1"}, ">= 2"},
		{[]string{"run", "baseline", "--defect", "explode=5"}, "explode"},
		{[]string{"run", "baseline", "--output", "xml"}, "--output"},
		{[]string{"run", "baseline", "--log-level", "loud"}, "--log-level"},
		{[]string{"run", "baseline", "--log-format", "xml"}, "--log-format"},
		{[]string{"run", "baseline", "--source-bootstrap", "127.0.0.1:1"}, "--target-bootstrap"},
		{[]string{"run", "baseline", "--mirror", "external"}, "--source-bootstrap"},
		{[]string{"run", "wan-partition", "--source-bootstrap", "127.0.0.1:1", "--target-bootstrap", "127.0.0.1:2", "--mirror", "external"}, "cannot inject faults"},
		{[]string{"run", "no-such-scenario"}, "no-such-scenario"},
		{[]string{"run", "baseline", "--run-id", "bad id!"}, "run id"},
		// Stories with no Kubernetes form are refused by name, before any
		// cluster is reached, saying why and what to run instead.
		{[]string{"cluster", "run", "failover-caught-up"}, "Run it with kmt run instead: against your clusters, kmt run failover-caught-up --source-bootstrap"},
		{[]string{"render", "failover-partitions-added"}, "no scenario chart runs that group in a pod"},
		{[]string{"lint"}, "requires at least 1 arg"},
		{[]string{"lint", "--backend", "mars", "baseline"}, "mars"},
		{[]string{"list", "extra"}, "unknown command"},
		{[]string{"frobnicate"}, "unknown command"},
	} {
		args := c.args
		if args[0] == "run" && len(args) > 1 {
			args = append(args, "--report-dir", t.TempDir())
		}
		code, stdout, stderr := cliRun(t, args...)
		if code != 2 {
			t.Errorf("kmt %v: exit %d, want 2; stdout %q stderr %q", c.args, code, stdout, stderr)
			continue
		}
		if !strings.Contains(stderr, c.want) {
			t.Errorf("kmt %v: stderr does not mention %q:\n%s", c.args, c.want, stderr)
		}
	}
}

func TestCLIHelpAndList(t *testing.T) {
	root := newRoot(&globals{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
	var paths [][]string
	var walk func(prefix []string, cmds []*cobra.Command)
	walk = func(prefix []string, cmds []*cobra.Command) {
		for _, c := range cmds {
			if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
				continue
			}
			p := append(append([]string(nil), prefix...), c.Name())
			paths = append(paths, p)
			walk(p, c.Commands())
		}
	}
	walk(nil, root.Commands())
	paths = append(paths, nil) // kmt --help
	if len(paths) < 4 {
		t.Fatalf("found only %d commands: %v", len(paths), paths)
	}
	for _, p := range paths {
		code, stdout, stderr := cliRun(t, append(p, "--help")...)
		if code != 0 {
			t.Errorf("kmt %v --help: exit %d: %s", p, code, stderr)
		}
		if !strings.Contains(stdout, "Usage:") {
			t.Errorf("kmt %v --help printed no usage:\n%s", p, stdout)
		}
	}

	code, stdout, stderr := cliRun(t, "list")
	if code != 0 {
		t.Fatalf("kmt list: exit %d: %s", code, stderr)
	}
	for _, n := range scenarios.Catalogue() {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(n) + `$`).MatchString(stdout) {
			t.Errorf("kmt list does not list %s:\n%s", n, stdout)
		}
	}
}

func TestCLIUnreachableClusters(t *testing.T) {
	start := time.Now()
	code, _, stderr := cliRun(t, "run", "baseline", "--short", "--report-dir", t.TempDir(), "--log-level", "error",
		"--source-bootstrap", "127.0.0.1:1", "--target-bootstrap", "127.0.0.1:2", "--mirror", "external")
	took := time.Since(start)
	if code != 3 {
		t.Errorf("exit %d, want 3 (could not run); stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "127.0.0.1:1") && !strings.Contains(stderr, "127.0.0.1:2") {
		t.Errorf("the message names neither unreachable address:\n%s", stderr)
	}
	// A hang guard, not a timing assertion: the brief allows ~20 s.
	if took > time.Minute {
		t.Errorf("took %s to give up on unreachable clusters", took)
	}
}

// startKfake starts a one-broker in-process cluster with topic (if given)
// and returns its bootstrap address.
func startKfake(t *testing.T, topic string, partitions int32) string {
	t.Helper()
	opts := []kfake.Opt{kfake.NumBrokers(1)}
	if topic != "" {
		opts = append(opts, kfake.SeedTopics(partitions, topic))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// TestCLIExternalIdentityMirror runs external mode where source and target
// are the same cluster and topic: the "mirror" is the identity, so every
// record arrives exactly once, and records that were in the topic before
// (not kmt's format) are counted foreign, never judged.
func TestCLIExternalIdentityMirror(t *testing.T) {
	if testing.Short() {
		t.Skip("a 6 s run against a kfake cluster")
	}
	const topic, seeded = "orders", 7
	boot := startKfake(t, topic, 3)
	w := &kafka.Writer{Addr: kafka.TCP(boot), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	var msgs []kafka.Message
	for i := range seeded {
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(i)), Value: []byte(fmt.Sprintf(`{"order": %d, "note": "someone else's record"}`, i))})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("seed foreign records: %v", err)
	}
	w.Close()

	dir := t.TempDir()
	code, stdout, stderr := cliRun(t, "run", "baseline", "--short", "--duration", "6s", "--drain", "10s",
		"--source-bootstrap", boot, "--target-bootstrap", boot, "--mirror", "external", "--same-topic",
		"--report-dir", dir, "--log-level", "warn", "--output", "json")
	var rep report.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("--output json did not print a report (%v); exit %d\nstdout:\n%s\nstderr:\n%s", err, code, stdout, stderr)
	}
	c := rep.Counts
	t.Logf("verdict %s: acked %d received %d foreign %d lost %d unseen %d dup %d reordered %d corrupt %d source_lost %d; reasons %v",
		rep.Verdict, c.Acked, c.Received, c.Foreign, c.Lost, c.Unseen, c.Duplicate, c.Reordered, c.Corrupt, c.SourceLost, rep.Reasons)
	if code != 0 || rep.Verdict != report.Pass {
		t.Errorf("identity mirror: exit %d verdict %s, want 0 pass; reasons %v\nstderr:\n%s", code, rep.Verdict, rep.Reasons, stderr)
	}
	if c.Foreign != seeded {
		t.Errorf("foreign %d, want the %d seeded records", c.Foreign, seeded)
	}
	if c.Acked == 0 || c.Received != c.Acked || c.Duplicate != 0 {
		t.Errorf("identity mirror: acked %d received %d duplicates %d; want every acked record exactly once", c.Acked, c.Received, c.Duplicate)
	}
	if rep.Backend != string(scenarios.BackendExternal) || rep.Mirror != scenarios.MirrorExternal {
		t.Errorf("report backend %q mirror %q, want external/external", rep.Backend, rep.Mirror)
	}
	onDisk, err := report.ReadJSON(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if onDisk.Counts != rep.Counts {
		t.Errorf("report.json counts %+v differ from the printed report's %+v", onDisk.Counts, rep.Counts)
	}
}

func TestCLIExternalMissingTopic(t *testing.T) {
	boot := startKfake(t, "", 0)
	start := time.Now()
	code, _, stderr := cliRun(t, "run", "baseline", "--short", "--duration", "4s",
		"--source-bootstrap", boot, "--target-bootstrap", boot, "--mirror", "external", "--same-topic",
		"--source-topic", "absent-topic", "--target-topic", "absent-topic",
		"--report-dir", t.TempDir(), "--log-level", "error")
	if code != 3 {
		t.Errorf("missing topic: exit %d, want 3; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "absent-topic") {
		t.Errorf("the message does not name the missing topic:\n%s", stderr)
	}
	if took := time.Since(start); took > time.Minute {
		t.Errorf("took %s to notice a missing topic", took)
	}
}

// TestCLIDefectExitCode: a reference-mirror defect makes the verdict fail
// and kmt exit 1 (the CI contract), with the anomaly in report.json.
func TestCLIDefectExitCode(t *testing.T) {
	if testing.Short() {
		t.Skip("a 6 s embedded run")
	}
	dir := t.TempDir()
	code, stdout, stderr := cliRun(t, "run", "baseline", "--short", "--duration", "6s", "--defect", "duplicate=50",
		"--report-dir", dir, "--log-level", "error", "--progress-interval", "1s")
	if code != 1 {
		t.Fatalf("exit %d, want 1 (verdict fail)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	rep, err := report.ReadJSON(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Verdict != report.Fail || rep.Counts.Duplicate == 0 || rep.Counts.Duplicate != rep.Counts.Acked/50 {
		t.Errorf("verdict %s duplicates %d acked %d; want fail with acked/50 duplicates", rep.Verdict, rep.Counts.Duplicate, rep.Counts.Acked)
	}
	if !strings.Contains(stdout, filepath.Join(dir, "report.json")) {
		t.Errorf("summary does not say where report.json is:\n%s", stdout)
	}
	if !strings.Contains(stderr, "acked=") {
		t.Errorf("no progress lines on stderr:\n%s", stderr)
	}
}
