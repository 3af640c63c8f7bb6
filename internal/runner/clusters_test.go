package runner

import (
	"strings"
	"testing"
)

func TestPrepareBrokersFlag(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string // "" = accepted
	}{
		{Options{Scenario: "baseline", Brokers: "apache"}, ""},
		{Options{Scenario: "baseline", Brokers: "embedded"}, ""},
		{Options{Scenario: "baseline", Brokers: "confluent"}, `--brokers "confluent": use embedded`},
		{Options{Scenario: "baseline", Brokers: "apache", SourceBootstrap: "a:1", TargetBootstrap: "b:1"}, "give one or the other"},
	} {
		_, err := Prepare(tc.o)
		if tc.want == "" {
			if err != nil {
				t.Errorf("Prepare(%+v): %v", tc.o, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || ExitCode(err) != ExitUsage {
			t.Errorf("Prepare(brokers %q): err %v (exit %d), want a usage error containing %q", tc.o.Brokers, err, ExitCode(err), tc.want)
		}
	}
}
