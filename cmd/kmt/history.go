package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report/history"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/htmlreport"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
)

func newShowCmd(g *globals) *cobra.Command {
	var root string
	var asJSON, writeHTML bool
	c := &cobra.Command{
		Use:   "show DIR|RUN|latest",
		Short: "Print a past run's summary again from its report",
		Long: `Print the summary of a past run from its report folder: a folder, a
report.json, a run id under --reports (default reports/), or "latest".
--html writes the folder's report.html again (for reports made by an older kmt).`,
		Example: `  kmt show latest
  kmt show wan-partition-20261130T001928-d0af
  kmt show /tmp/kmt --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := history.Find(root, args[0])
			if err != nil {
				return runner.Usage(err)
			}
			if asJSON {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(r.Report)
			}
			if writeHTML {
				if _, err := htmlreport.WriteFile(r.Dir, r.Report); err != nil {
					return runner.Env(err)
				}
			}
			r.Report.WriteSummary(g.stdout)
			page := filepath.Join(r.Dir, history.HTMLFile)
			if _, err := os.Stat(page); err != nil {
				fmt.Fprintf(g.stdout, "report    %s (no report.html: kmt show %s --html writes it)\n", filepath.Join(r.Dir, history.ReportFile), args[0])
			} else {
				fmt.Fprintf(g.stdout, "report    %s\n", page)
			}
			return nil
		},
	}
	c.Flags().StringVar(&root, "reports", history.DefaultRoot, "the folder run ids are looked up in")
	c.Flags().BoolVar(&asJSON, "json", false, "print report.json instead of the summary")
	c.Flags().BoolVar(&writeHTML, "html", false, "write report.html again from report.json")
	return c
}

func newCompareCmd(g *globals) *cobra.Command {
	var root, output string
	th := history.DefaultThresholds
	c := &cobra.Command{
		Use:   "compare A B",
		Short: "Set two runs side by side; exit 1 when B regressed from A",
		Long: `Compare run B with run A (the baseline): counts, latency percentiles per
phase, time to recover after each fault, and what changed in the effective
scenario. B regressed when its verdict got worse, any of lost, unseen,
reordered, corrupt, source_lost or failed grew, duplicates grew by more than
--duplicates of the acked records, a p50/p99 (whole run or per phase) grew by
more than --latency and --latency-floor, a recovery took longer by more than
--recovery and --recovery-floor (or never happened), or the achieved load
rate fell by more than --throughput.

Exit codes: 0 no regression, 1 regressed, 2 a run could not be found.
Runs are named as for kmt show: folders, report.json files, run ids, latest.`,
		Example: `  kmt compare reports/baseline-run reports/latest
  kmt compare A B --latency 0.2 --output json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return runner.Usage(fmt.Errorf("--output %q: use text or json", output))
			}
			a, err := history.Find(root, args[0])
			if err != nil {
				return runner.Usage(err)
			}
			b, err := history.Find(root, args[1])
			if err != nil {
				return runner.Usage(err)
			}
			cmp := history.Compare(a, b, th)
			if output == "json" {
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				enc.Encode(cmp)
			} else {
				cmp.WriteText(g.stdout)
			}
			if len(cmp.Regressions) > 0 {
				return &exitError{runner.ExitFail}
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&root, "reports", history.DefaultRoot, "the folder run ids are looked up in")
	f.StringVar(&output, "output", "text", "text or json")
	f.Float64Var(&th.Latency, "latency", th.Latency, "allowed latency growth as a fraction (0.5 = 50% slower)")
	f.Float64Var(&th.LatencyFloor, "latency-floor", th.LatencyFloor, "latency growth in seconds always allowed (noise)")
	f.Float64Var(&th.Recovery, "recovery", th.Recovery, "allowed growth of a time to recover, as a fraction")
	f.Float64Var(&th.RecoveryFloor, "recovery-floor", th.RecoveryFloor, "growth of a time to recover in seconds always allowed")
	f.Float64Var(&th.Duplicates, "duplicates", th.Duplicates, "allowed growth of duplicates as a fraction of B's acked records")
	f.Float64Var(&th.Throughput, "throughput", th.Throughput, "allowed drop of the achieved load rate, as a fraction")
	return c
}
