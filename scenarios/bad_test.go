package scenarios_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/assertions"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// badScenarios is every file testdata/*.bad.yaml with what its error must
// say (Prometheus' config/testdata style): a new rule is one file and one
// line here. Each file is a valid scenario (testdata/good.yaml) with one
// mistake. line > 0: the message must point at file:line.
var badScenarios = []struct {
	file string
	line int
	want []string
}{
	{"bad-apiversion.bad.yaml", 1, []string{"apiVersion", "kmt.dev/v2"}},
	{"bad-assertion-op.bad.yaml", 27, []string{"spec.assertions.custom[0].op", "=>"}},
	{"bad-duration.bad.yaml", 15, []string{"spec.load.duration", "20 seconds"}},
	{"bad-short-timescale.bad.yaml", 32, []string{"spec.short.timeScale"}},
	{"bad-topic-name.bad.yaml", 9, []string{"spec.topology.topics[0].name", "or ders"}},
	{"duplicate-fault-name.bad.yaml", 24, []string{"spec.timeline[1].name", "used twice"}},
	{"failover-after-load-end.bad.yaml", 26, []string{"spec.failover.at", "before the load ends"}},
	{"fault-after-load-end.bad.yaml", 23, []string{"spec.timeline[0].duration", "after the load ends"}},
	{"fault-in-warmup.bad.yaml", 22, []string{"spec.timeline[0].at", "warmup"}},
	{"fault-the-local-backend-cannot-do.bad.yaml", 21, []string{"spec.timeline[0].kind", "cpu-stress", "local"}},
	{"internal-topic-name.bad.yaml", 9, []string{"spec.topology.topics[0].name", "internal"}},
	{"large-records-all-tombstones.bad.yaml", 18, []string{"spec.load.fidelity.largeEvery", "multiple of tombstoneEvery 10", "largeEvery 49"}},
	{"message-size-zero.bad.yaml", 13, []string{"spec.load.messageSize", "is 0"}},
	{"message-too-small.bad.yaml", 13, []string{"spec.load.messageSize"}},
	{"missing-required-param.bad.yaml", 0, []string{"spec.timeline[0].params", "latency"}},
	{"negative-duration.bad.yaml", 18, []string{"spec.drain", "-10s"}},
	{"not-yaml.bad.yaml", 6, []string{"did not find expected"}},
	{"overlapping-exclusive-faults.bad.yaml", 24, []string{"spec.timeline[1].at", "kill-mirror"}},
	{"partitions-zero.bad.yaml", 10, []string{"spec.topology.topics[0].partitions", "is 0"}},
	{"promql-syntax-error.bad.yaml", 27, []string{"spec.assertions.custom[0].expr", "arrivals", "syntax"}},
	{"promql-unknown-metric.bad.yaml", 27, []string{"spec.assertions.custom[0].expr", "arrivals", "kmt_validator_recieved_total", "did you mean kmt_validator_received_total"}},
	{"rate-zero.bad.yaml", 12, []string{"spec.load.rate", "is 0"}},
	{"recoverswithin-names-no-fault.bad.yaml", 26, []string{"spec.assertions.recoversWithin.after", "nope"}},
	{"short-fault-inside-short-warmup.bad.yaml", 0, []string{"short form", "spec.timeline[0].at", "warmup"}},
	{"streams-zero.bad.yaml", 14, []string{"spec.load.streams", "is 0"}},
	{"topic-config-unknown.bad.yaml", 12, []string{"spec.topology.topics[0].targetConfig.max.message.byte", "not a Kafka topic config", "max.message.bytes"}},
	{"topic-config-value.bad.yaml", 12, []string{"spec.topology.topics[0].config.cleanup.policy", `"compcat" must be delete, compact`}},
	{"two-documents.bad.yaml", 0, []string{"more than one YAML document"}},
	{"unknown-fault-kind.bad.yaml", 21, []string{"spec.timeline[0].kind", "mirror-explode"}},
	{"unknown-field.bad.yaml", 12, []string{"spec.load.rat"}},
	{"unknown-param-for-kind.bad.yaml", 24, []string{"spec.timeline[0].params.brokers"}},
	{"unknown-window.bad.yaml", 27, []string{"spec.assertions.custom[0].window", "stedy"}},
	{"window-names-no-fault.bad.yaml", 27, []string{"spec.assertions.custom[0].window", "fault:nope"}},
	{"wrong-type-in-a-flow-mapping.bad.yaml", 27, []string{"spec.assertions.custom[0]", "lots"}},
	{"wrong-type.bad.yaml", 10, []string{"spec.topology.topics[0].partitions", "three"}},
}

// lint is what kmt lint does to a scenario for the local backend: parse,
// validate (the short form too), compile and check the assertions.
func lint(path string) error {
	s, err := scenarios.Read(path)
	if err != nil {
		return err
	}
	if err := s.Validate(scenarios.BackendLocal); err != nil {
		return err
	}
	as, err := assertions.Compile(s)
	if err == nil {
		err = assertions.CheckExprs(as)
	}
	if err != nil {
		return runner.LocateExprErrors(s, err)
	}
	return nil
}

func TestGoodScenarioIsValid(t *testing.T) {
	// Every bad file is this one with one mistake: it must pass, or a bad
	// case could fail for the wrong reason.
	if err := lint(filepath.Join("testdata", "good.yaml")); err != nil {
		t.Fatal(err)
	}
}

func TestBadScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.bad.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, c := range badScenarios {
		listed[c.file] = true
		t.Run(strings.TrimSuffix(c.file, ".bad.yaml"), func(t *testing.T) {
			path := filepath.Join("testdata", c.file)
			err := lint(path)
			if err == nil {
				t.Fatalf("%s passed lint", path)
			}
			msg := err.Error()
			var se *scenarios.Error
			var ses scenarios.Errors
			if !errors.As(err, &se) && !errors.As(err, &ses) {
				t.Errorf("error %T is not a scenarios.Error(s): %s", err, msg)
			}
			for _, w := range c.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not say %q:\n%s", w, msg)
				}
			}
			if loc := fmt.Sprintf("%s:%d", path, c.line); c.line > 0 && !strings.Contains(msg, loc) {
				t.Errorf("error does not point at %s:\n%s", loc, msg)
			}
		})
	}
	for _, f := range files {
		if !listed[filepath.Base(f)] {
			t.Errorf("%s has no row in badScenarios", f)
		}
	}
	if len(files) != len(badScenarios) || !slices.IsSortedFunc(badScenarios, func(a, b struct {
		file string
		line int
		want []string
	}) int {
		return strings.Compare(a.file, b.file)
	}) {
		t.Errorf("%d files, %d rows (rows sorted by file name)", len(files), len(badScenarios))
	}
}
