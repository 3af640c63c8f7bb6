// Command kmt is kafka-mirror-tester: a Jepsen-style test suite for Kafka
// cross-cluster mirroring. See `kmt --help`.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the CLI and returns the exit code (0 pass, 1 fail, 2 usage,
// 3 could not run).
func run(args []string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := watchSignals(cancel, stderr, func() { os.Exit(runner.ExitEnv) })
	defer stop()
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRoot(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return g.exit
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(stderr, "kmt: %v\n", err)
	if isFlagError(err) {
		fmt.Fprintln(stderr, "Run 'kmt --help' or 'kmt <command> --help' for usage.")
		return runner.ExitUsage
	}
	return runner.ExitCode(err)
}

// watchSignals turns the first SIGINT or SIGTERM into cancel (every phase
// then ends promptly: the run reverts its faults and writes an incomplete
// report, exit 3) and a second one into exitNow, for a user who does not
// want to wait for the clean-up. The returned stop ends the watch.
func watchSignals(cancel func(), stderr io.Writer, exitNow func()) (stop func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigs:
			fmt.Fprintf(stderr, "kmt: %v: stopping and writing an incomplete report (again to exit at once)\n", s)
			cancel()
		case <-done:
			return
		}
		select {
		case s := <-sigs:
			fmt.Fprintf(stderr, "kmt: second %v: exiting now\n", s)
			exitNow()
		case <-done:
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(done)
	}
}

// exitError carries an exit code for a verdict (already reported).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit %d", e.code) }

func isFlagError(err error) bool {
	m := err.Error()
	for _, s := range []string{"unknown flag", "unknown shorthand", "flag needs an argument", "invalid argument", "unknown command", "accepts ", "requires at least", "requires exactly"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

type globals struct {
	stdout, stderr io.Writer
	logLevel       string
	logFormat      string
	exit           int
}

func (g *globals) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, runner.Usage(fmt.Errorf("--log-level %q: use debug, info, warn or error", g.logLevel))
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch g.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(g.stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(g.stderr, opts)), nil
	}
	return nil, runner.Usage(fmt.Errorf("--log-format %q: use text or json", g.logFormat))
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "kmt",
		Short: "kafka-mirror-tester: Jepsen-style tests for Kafka cross-cluster mirroring",
		Long: `kmt runs a mirror between two Kafka clusters, produces sequenced records on
the source, checks every record that arrives on the target, injects faults on
a timeline, and ends with a verdict: what was lost, duplicated, reordered,
corrupted or late, and whether each PromQL assertion held.

Start here:
  kmt list                                  the scenario catalogue
  kmt run baseline                          a run on two embedded clusters, zero install
  kmt run scenarios/wan-partition.yaml --short
  kmt lint my-scenario.yaml                 check a scenario file without running it

Exit codes: 0 verdict pass, 1 verdict fail, 2 bad usage or bad scenario,
3 could not run (environment, interrupted).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       version,
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&g.logFormat, "log-format", "text", "log format on stderr: text or json")
	// Every command, explicitly (no init() registration): this list is the
	// CLI.
	root.AddCommand(
		newRunCmd(g), newListCmd(g), newLintCmd(g), // local runs and scenarios
		newLoadgenCmd(g), newValidateCmd(g), // the halves of a run on clusters of your own
		newRenderCmd(g), newClusterCmd(g), newAbortCmd(g), newAgentCmd(g), // Kubernetes
		newGamedayCmd(g), newShowCmd(g), newCompareCmd(g), // game days and past reports
	)
	return root
}
