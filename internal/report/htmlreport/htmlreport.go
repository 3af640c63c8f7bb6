// Package htmlreport renders report.html: one self-contained page (no
// script, no network, inline SVG charts and CSS) that a person reads
// offline or prints: the verdict and its reasons, the assertions, the
// time series on one time axis with every phase and fault window shaded,
// the evidence, the effective scenario, the command line and the files of
// the report folder.
package htmlreport

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// FileName is the page's name in a report folder.
const FileName = "report.html"

//go:embed report.html.tmpl
var pageText string

var page = template.Must(template.New("report").Parse(pageText))

// Options are what the page shows besides report.json.
type Options struct {
	Scenario string   // the effective scenario (YAML); empty: not shown
	Files    []string // names of the report folder's files, linked relatively
}

type assertionRow struct {
	Name, Window, Mode, Observed, Condition, Reason, Expr string
	Pass                                                  bool
}

type view struct {
	R          *report.Report
	Title      string
	Duration   string
	Charts     template.HTML
	Counts     []countRow
	Latency    []countRow
	Assertions []assertionRow
	Windows    []windowRow
	Evidence   []evidence
	Mirror     []countRow // the mirror's own metrics (MirrorMaker 2), by name
	Scenario   string
	Command    string
	Files      []string
	Generated  string
}

// Render writes the page for r.
func Render(w io.Writer, r *report.Report, o Options) error {
	svg, _, err := chartsSVG(r)
	if err != nil {
		return err
	}
	a := span(r)
	v := view{
		R: r, Title: fmt.Sprintf("kmt %s: %s (%s)", r.Verdict, r.Scenario, r.Run),
		Charts: template.HTML(svg), Counts: countRows(r), Windows: windowRows(r, a),
		Evidence: evidenceTables(r, a.t0), Scenario: o.Scenario, Files: o.Files,
		Command:   shellJoin(r.Command),
		Generated: time.Now().UTC().Format(time.RFC3339),
	}
	if !r.EndedAt.IsZero() && !r.StartedAt.IsZero() {
		v.Duration = r.EndedAt.Sub(r.StartedAt).Round(100 * time.Millisecond).String()
	}
	l := r.LatencySeconds
	for _, q := range []struct {
		n string
		v float64
	}{{"p50", l.P50}, {"p95", l.P95}, {"p99", l.P99}, {"max", l.Max}} {
		v.Latency = append(v.Latency, countRow{Name: q.n, Value: num(q.v, "s")})
	}
	for _, k := range slices.Sorted(maps.Keys(r.MirrorMetrics)) {
		v.Mirror = append(v.Mirror, countRow{Name: k, Value: sig(r.MirrorMetrics[k])})
	}
	for _, as := range r.Assertions {
		u := unitOf(as)
		v.Assertions = append(v.Assertions, assertionRow{
			Name: as.Name, Window: as.Window, Mode: as.Mode, Pass: as.Pass, Reason: as.Reason, Expr: as.Expr,
			Observed: nums(as.Observed, u), Condition: as.Op + " " + nums(as.Threshold, u),
		})
	}
	return page.Execute(w, v)
}

// WriteFile renders dir/report.html for r, with the effective scenario
// (dir/scenario.yaml) and links to the folder's other files, atomically.
func WriteFile(dir string, r *report.Report) (string, error) {
	o := Options{}
	if b, err := os.ReadFile(filepath.Join(dir, "scenario.yaml")); err == nil {
		o.Scenario = string(b)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		n := e.Name()
		if n == FileName || strings.HasSuffix(n, ".tmp") || e.IsDir() {
			continue
		}
		o.Files = append(o.Files, n)
	}
	sort.Strings(o.Files)
	var buf bytes.Buffer
	if err := Render(&buf, r, o); err != nil {
		return "", fmt.Errorf("render %s for run %s: %w", FileName, r.Run, err)
	}
	path := filepath.Join(dir, FileName)
	if err := os.WriteFile(path+".tmp", buf.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, os.Rename(path+".tmp", path)
}

// shellJoin quotes args so the line can be pasted into a shell.
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r == '-' || r == '_' || r == '.' || r == '/' || r == '=' || r == ':' || r == ',' || r == '@' ||
				(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
		}) < 0 {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}
