package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/assertions"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

func newLintCmd(g *globals) *cobra.Command {
	var backend string
	c := &cobra.Command{
		Use:     "lint SCENARIO...",
		Aliases: []string{"validate-scenario"},
		Short:   "Check scenario files without running them",
		Long: `Check scenario files strictly, without starting anything: unknown fields,
wrong types, bad durations, fault windows that cannot coexist or do not fit
the load, faults the chosen backend cannot perform, and PromQL assertions
that do not parse or name a metric kmt does not export. Every problem is
printed as FILE:LINE: FIELD: MESSAGE. Exit code 2 when any file has one.

A scenario file looks like this (see scenarios/*.yaml for the catalogue):

  apiVersion: kmt.dev/v1
  kind: Scenario
  metadata: {name: my-test, description: what it tests and what healthy looks like}
  spec:
    topology:
      source: {brokers: 3}
      target: {brokers: 3}
      topics: [{name: orders, partitions: 6, targetName: orders}]
      mirror: {kind: reference}          # reference | process (command: ...) | external
    load: {rate: 1000, messageSize: 256, streams: 32, duration: 60s}
    warmup: 5s
    recovery: 15s
    drain: 60s
    timeline:
      - {name: kill-mirror, kind: mirror-kill, at: 30s, duration: 20s}
    assertions:
      noLoss: true
      maxDuplicates: 1000
      ordered: true
      p99LatencyBelow: {phase: steady, value: 500ms}
      recoversWithin: {after: kill-mirror, value: 30s, lagBelow: 500}
      custom:
        - {name: arrivals, expr: 'sum(rate(kmt_validator_received_total[10s]))', op: '>', value: 100, window: steady, mode: continuous, tolerate: 1}
    short: {duration: 16s, rate: 500, warmup: 2s, recovery: 3s, drain: 30s, timeScale: 0.2}

Fault kinds: ` + kindList(),
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b := scenarios.Backend(backend)
			switch b {
			case scenarios.BackendLocal, scenarios.BackendKubernetes, scenarios.BackendExternal:
			default:
				return runner.Usage(fmt.Errorf("--backend %q: use local, kubernetes or external", backend))
			}
			bad := 0
			for _, f := range args {
				if err := lintOne(f, b); err != nil {
					bad++
					fmt.Fprintln(g.stderr, err)
					continue
				}
				fmt.Fprintf(g.stdout, "%s: ok (%s backend)\n", f, b)
			}
			if bad > 0 {
				return &exitError{runner.ExitUsage}
			}
			return nil
		},
	}
	c.Flags().StringVar(&backend, "backend", "local", "backend the scenario must run on: local, kubernetes or external")
	return c
}

// lintOne parses and validates one scenario, assertions included.
func lintOne(path string, b scenarios.Backend) error {
	s, err := scenarios.Read(path)
	if err != nil {
		return err
	}
	// Both stages report everything they find, so one lint shows every
	// problem of the file.
	return errors.Join(s.Validate(b), checkAssertions(s))
}

func kindList() string {
	out := ""
	for _, k := range scenarios.KindNames() {
		info := scenarios.Kinds[scenarios.FaultKind(k)]
		bs := ""
		for i, b := range info.Backends {
			if i > 0 {
				bs += ","
			}
			bs += string(b)
		}
		out += fmt.Sprintf("\n  %-22s %s [%s]", k, info.Help, bs)
	}
	return out
}

// checkAssertions compiles the scenario's assertions and checks their PromQL.
func checkAssertions(s *scenarios.Scenario) error {
	as, err := assertions.Compile(s)
	if err != nil {
		return runner.LocateExprErrors(s, err)
	}
	if err := assertions.CheckExprs(as); err != nil {
		return runner.LocateExprErrors(s, err)
	}
	return nil
}
