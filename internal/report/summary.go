package report

import (
	"encoding/xml"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// WriteSummary prints the report for a person.
func (r *Report) WriteSummary(w io.Writer) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	verdict := strings.ToUpper(r.Verdict)
	p("\n== kmt verdict: %s ==  scenario %s, run %s, mirror %s%s\n", verdict, r.Scenario, r.Run, r.Mirror, map[bool]string{true: " (short form)"}[r.Short])
	c := r.Counts
	p("records   produced %d  acked %d  received %d  (failed sends %d)\n", c.Produced, c.Acked, c.Received, r.ExtraCounts.Failed)
	p("anomalies lost %d  unseen %d  duplicate %d  reordered %d  corrupt %d  source_lost %d\n", c.Lost, c.Unseen, c.Duplicate, c.Reordered, c.Corrupt, c.SourceLost)
	p("          aborted_read %d  identity_mismatch %d  split %d  aborted_copied %d\n", c.AbortedRead, c.IdentityMismatch, c.Split, c.AbortedCopied)
	p("counted   redelivery %d  foreign %d  truncated %d  other runs %d\n", c.Redelivery, c.Foreign, r.ExtraCounts.Truncated, r.ExtraCounts.OtherRuns)
	l := r.LatencySeconds
	p("latency   p50 %s  p95 %s  p99 %s  max %s  (%d records)\n", secs(l.P50), secs(l.P95), secs(l.P99), secs(l.Max), l.Count)
	if r.Load.Seconds > 0 {
		p("load      %.0f msg/s achieved of %.0f target over %.1fs\n", r.Load.AchievedRate, r.Load.TargetRate, r.Load.Seconds)
	}
	p("drain     %s in %.1fs\n", map[bool]string{true: "complete", false: "INCOMPLETE (deadline passed)"}[r.Drain.Complete], r.Drain.Seconds)
	r.writeSections(p) // sections.go
	for _, f := range r.Faults {
		status := "ok"
		if f.Error != "" {
			status = "ERROR " + f.Error
		}
		p("fault     %-22s %-20s %s .. %s  %s  %s\n", f.Name, f.Kind, rel(r.StartedAt, f.Start), rel(r.StartedAt, f.End), strings.Join(f.Actions, "; "), status)
	}
	r.writeSyncSummary(p)
	for _, a := range r.Assertions {
		mark := "PASS"
		if !a.Pass {
			mark = "FAIL"
		}
		p("assert    %s %-28s %s %s observed %s  [%s, %s]", mark, a.Name, a.Op, fmtThreshold(a.Threshold), fmtFloats(a.Observed), a.Window, a.Mode)
		if a.Reason != "" && !a.Pass {
			p("  (%s)", a.Reason)
		}
		p("\n")
	}
	if f := r.Failover; f != nil {
		p("%s\n", f.summaryLine())
	}
	for _, k := range slices.Sorted(maps.Keys(r.Examples)) {
		for _, e := range r.Examples[k] {
			seq := fmt.Sprint(e.Seq)
			if e.SeqEnd > e.Seq {
				seq = fmt.Sprintf("%d..%d", e.Seq, e.SeqEnd)
			}
			p("example   %-11s topic %s stream %d seq %s partition %d offset %d%s %s\n", k, e.Topic, e.Stream, seq, e.Partition, e.Offset, e.Evidence(), e.Detail)
		}
	}
	for _, e := range r.MirrorExits {
		p("mirror    exited on its own at %s with %s; last lines of %s:\n", relTime(r.StartedAt, e.At), e.Status, e.Log)
		for _, l := range strings.Split(strings.TrimRight(e.Tail, "\n"), "\n") {
			p("          | %s\n", l)
		}
	}
	for _, reason := range r.Reasons {
		p("reason    %s\n", reason)
	}
	for _, h := range r.Hints {
		p("check     %s\n", h)
	}
}

func rel(t0, t time.Time) string {
	if t.IsZero() || t0.IsZero() {
		return "-"
	}
	return t.Sub(t0).Round(100 * time.Millisecond).String()
}

func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(100 * time.Microsecond).String()
}

func fmtThreshold(t []float64) string {
	if len(t) == 2 {
		return fmt.Sprintf("[%g, %g]", t[0], t[1])
	}
	return fmtFloats(t)
}

func fmtFloats(v []float64) string {
	switch len(v) {
	case 0:
		return "none"
	case 1:
		return fmt.Sprintf("%g", v[0])
	}
	if len(v) > 6 {
		return fmt.Sprintf("%g..%g (%d values)", v[0], v[len(v)-1], len(v))
	}
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%g", x)
	}
	return strings.Join(s, ",")
}

// JUnit XML types (the subset CI systems read).
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name     string      `xml:"name,attr"`
	Tests    int         `xml:"tests,attr"`
	Failures int         `xml:"failures,attr"`
	Time     float64     `xml:"time,attr"`
	Cases    []junitCase `xml:"testcase"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Text    string `xml:",chardata"`
}

// WriteJUnit writes junit.xml into dir: one test case per anomaly check and
// per assertion.
func (r *Report) WriteJUnit(dir string) (string, error) {
	s := junitSuite{Name: "kmt." + r.Scenario, Time: r.EndedAt.Sub(r.StartedAt).Seconds()}
	add := func(name string, failed bool, msg string) {
		c := junitCase{Name: name, Classname: "kmt." + r.Scenario}
		if failed {
			c.Failure = &junitFailure{Message: msg, Text: msg}
			s.Failures++
		}
		s.Cases = append(s.Cases, c)
		s.Tests++
	}
	c := r.Counts
	for _, x := range []struct {
		name string
		n    uint64
	}{{"lost", c.Lost}, {"unseen", c.Unseen}, {"corrupt", c.Corrupt}, {"reordered", c.Reordered}, {"source_lost", c.SourceLost},
		{"aborted_read", c.AbortedRead}, {"identity_mismatch", c.IdentityMismatch}, {"split", c.Split}, {"aborted_copied", c.AbortedCopied}} {
		msg := fmt.Sprintf("%d %s records", x.n, x.name)
		if ex := r.Examples[x.name]; x.n > 0 && len(ex) > 0 {
			e := ex[0]
			msg += fmt.Sprintf("; e.g. topic %s stream %d seq %d partition %d offset %d%s %s", e.Topic, e.Stream, e.Seq, e.Partition, e.Offset, e.Evidence(), e.Detail)
		}
		add("no "+x.name, x.n > 0, msg)
	}
	for _, a := range r.Assertions {
		add("assertion "+a.Name, !a.Pass, a.Reason)
	}
	if f := r.Failover; f != nil {
		add("failover drill", f.Verdict != Pass, strings.Join(f.Reasons, "; "))
	}
	if r.Verdict == Incomplete {
		add("run completed", true, r.Error)
	}
	b, err := xml.MarshalIndent(junitSuites{Suites: []junitSuite{s}}, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "junit.xml")
	return path, os.WriteFile(path, append([]byte(xml.Header), append(b, '\n')...), 0o644)
}

// Evidence renders the optional evidence of an example (what differs, the
// source position, when it was produced, the fault active then), each part
// with a leading space; "" when none is known.
func (e Example) Evidence() string {
	var b strings.Builder
	if e.What != "" {
		fmt.Fprintf(&b, " what %s", e.What)
	}
	if e.SourcePartition != nil {
		fmt.Fprintf(&b, " source partition %d", *e.SourcePartition)
		if e.SourceOffset != nil {
			fmt.Fprintf(&b, " offset %d", *e.SourceOffset)
		}
	}
	if e.ProducedAt != nil {
		fmt.Fprintf(&b, " produced %s", e.ProducedAt.UTC().Format("15:04:05.000"))
	}
	if e.Fault != "" {
		fmt.Fprintf(&b, " during fault %s", e.Fault)
	}
	return b.String()
}
