package main

import (
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestChartArgsAreFlags: every flag the scenario charts pass to a kmt
// workload (charts/kmt-lib: loadgen, validate, agent) is a flag of that
// command, so a renamed flag fails here instead of in a user's cluster.
func TestChartArgsAreFlags(t *testing.T) {
	b, err := os.ReadFile("../../charts/kmt-lib/templates/_workloads.tpl")
	if err != nil {
		t.Fatal(err)
	}
	// Each container's args start with the subcommand and run to env:.
	blockRE := regexp.MustCompile(`(?s)args:\s*\n\s*- (loadgen|validate|agent)\n(.*?)\n\s*env:`)
	flagRE := regexp.MustCompile(`(?m)^\s*- (--[a-z][a-z-]*)`)
	root := newRoot(&globals{stdout: io.Discard, stderr: io.Discard})
	seen := map[string]int{}
	for _, m := range blockRE.FindAllStringSubmatch(string(b), -1) {
		cmd, _, err := root.Find([]string{m[1]})
		if err != nil || cmd.Name() != m[1] {
			t.Fatalf("the charts run `kmt %s`, which is not a command: %v", m[1], err)
		}
		for _, f := range flagRE.FindAllStringSubmatch(m[2], -1) {
			name := strings.TrimPrefix(f[1], "--")
			seen[m[1]]++
			if cmd.Flags().Lookup(name) == nil {
				t.Errorf("the charts pass %s to `kmt %s`, which has no such flag", f[1], m[1])
			}
		}
	}
	for _, c := range []string{"loadgen", "validate", "agent"} {
		if seen[c] < 5 {
			t.Errorf("found %d flags for `kmt %s` in the chart: the parser no longer reads the template", seen[c], c)
		}
	}
}
