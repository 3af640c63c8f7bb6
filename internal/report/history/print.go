package history

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText prints the comparison for a person: counts, latency per phase,
// recovery per fault, configuration changes, then the regressions.
func (c *Comparison) WriteText(w io.Writer) {
	fmt.Fprintf(w, "A  %s  (%s)  %s\nB  %s  (%s)  %s\n\n", c.RunA, c.A, c.Verdicts[0], c.RunB, c.B, c.Verdicts[1])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "count\tA\tB\tB-A\t")
	for _, d := range c.Counts {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%+d\t\n", d.Name, d.A, d.B, int64(d.B)-int64(d.A))
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "latency\tA p50\tA p99\tA max\tB p50\tB p99\tB max\t")
	for _, l := range c.Latency {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", l.Phase, dur(l.A[0]), dur(l.A[1]), dur(l.A[2]), dur(l.B[0]), dur(l.B[1]), dur(l.B[2]))
	}
	tw.Flush()
	if len(c.Recovery) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "time to recover after\tA\tB\t")
		for _, r := range c.Recovery {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\n", r.Fault, recov(r.A), recov(r.B))
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	if len(c.Config) == 0 {
		fmt.Fprintln(w, "configuration: the same effective scenario")
	} else {
		fmt.Fprintln(w, "configuration changes (A -> B):")
		for _, ch := range c.Config {
			fmt.Fprintf(w, "  %s: %s -> %s\n", ch.Path, orNone(ch.A), orNone(ch.B))
		}
	}
	fmt.Fprintln(w)
	if len(c.Regressions) == 0 {
		fmt.Fprintln(w, "no regression: B is within the thresholds of A")
		return
	}
	fmt.Fprintf(w, "REGRESSED: B is worse than A in %d way(s):\n  %s\n", len(c.Regressions), strings.Join(c.Regressions, "\n  "))
}

func recov(s float64) string {
	if s < 0 {
		return "never"
	}
	return dur(s)
}

func orNone(s string) string {
	if s == "" {
		return "(absent)"
	}
	return s
}
