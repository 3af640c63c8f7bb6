package htmlreport

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// unitOf says what an assertion's observed value and threshold measure:
// time to recover and latency quantiles are seconds, counters of records
// are records. An expression kmt cannot read gets no unit rather than a
// wrong one.
func unitOf(a report.Assertion) string {
	e := a.Expr
	switch {
	case a.Mode == "within", strings.HasPrefix(a.Name, "recovers"):
		return "s"
	case strings.Contains(e, "_seconds") && !strings.Contains(e, "_total"):
		return "s"
	case strings.Contains(e, "_bytes"):
		return "bytes"
	case strings.Contains(e, "_records") || strings.Contains(e, "_total"):
		return "records"
	}
	return ""
}

// num rounds v for a person in unit u: seconds under one as milliseconds,
// three significant digits, whole numbers as they are.
func num(v float64, u string) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'g', -1, 64)
	}
	if u == "s" {
		if math.Abs(v) < 1 && v != 0 {
			return sig(v*1000) + " ms"
		}
		return sig(v) + " s"
	}
	out := sig(v)
	if u != "" {
		out += " " + u
	}
	return out
}

// sig prints v with three significant digits (whole numbers in full).
func sig(v float64) string {
	if v == math.Trunc(v) && math.Abs(v) < 1e15 {
		return strconv.FormatInt(int64(v), 10)
	}
	p := 3 - int(math.Floor(math.Log10(math.Abs(v)))) - 1
	if p < 0 {
		p = 0
	}
	return strconv.FormatFloat(v, 'f', p, 64)
}

func nums(vs []float64, u string) string {
	if len(vs) == 0 {
		return "no value"
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = num(v, u)
	}
	if len(out) == 2 {
		return out[0] + " .. " + out[1]
	}
	return strings.Join(out, ", ")
}

// evidence is one category's examples as a table. Columns are every field
// the examples carry (fields added to the report later appear by
// themselves), the identity first and the detail last.
type evidence struct {
	Category string
	Total    uint64
	Columns  []string // report.json keys
	Titles   []string // headings
	Rows     [][]string
}

// firstCols is the column order: identity, where it was in the source,
// where at the target, when it was produced and the fault active then.
var firstCols = []string{"topic", "stream", "seq", "seq_end", "source_partition", "source_offset", "partition", "offset", "produced_at", "fault", "what"}

// colTitle is a column's heading (the report.json key, explained).
var colTitle = map[string]string{"partition": "target partition", "offset": "target offset", "source_partition": "source partition",
	"source_offset": "source offset", "produced_at": "produced (acked)", "fault": "fault active then", "seq_end": "to seq"}

func evidenceTables(r *report.Report, t0 time.Time) []evidence {
	var out []evidence
	for _, cat := range slices.Sorted(maps.Keys(r.Examples)) {
		exs := r.Examples[cat]
		if len(exs) == 0 {
			continue
		}
		rows := make([]map[string]any, 0, len(exs))
		present := map[string]bool{}
		for _, e := range exs {
			m := map[string]any{}
			b, _ := json.Marshal(e)
			_ = json.Unmarshal(b, &m)
			for k := range m {
				present[k] = true
			}
			rows = append(rows, m)
		}
		cols := []string{}
		for _, c := range firstCols {
			if present[c] {
				cols = append(cols, c)
				delete(present, c)
			}
		}
		hasDetail := present["detail"]
		delete(present, "detail")
		cols = append(cols, slices.Sorted(maps.Keys(present))...)
		if hasDetail {
			cols = append(cols, "detail")
		}
		ev := evidence{Category: cat, Total: categoryTotal(r, cat), Columns: cols}
		for _, c := range cols {
			t := colTitle[c]
			if t == "" {
				t = c
			}
			ev.Titles = append(ev.Titles, t)
		}
		for _, m := range rows {
			cells := make([]string, len(cols))
			for i, c := range cols {
				cells[i] = cell(c, m[c], t0)
			}
			ev.Rows = append(ev.Rows, cells)
		}
		out = append(out, ev)
	}
	return out
}

func categoryTotal(r *report.Report, cat string) uint64 {
	c := r.Counts
	m := map[string]uint64{"lost": c.Lost, "unseen": c.Unseen, "duplicate": c.Duplicate, "redelivery": c.Redelivery,
		"reordered": c.Reordered, "corrupt": c.Corrupt, "foreign": c.Foreign, "source_lost": c.SourceLost,
		"truncated": r.ExtraCounts.Truncated}
	return m[cat]
}

// cell formats one evidence value: -1 partitions and offsets (ranges) as a
// dash, times relative to the load start, nested values as JSON.
func cell(col string, v any, t0 time.Time) string {
	switch x := v.(type) {
	case nil:
		return ""
	case float64:
		if x == -1 && (col == "partition" || col == "offset" || strings.HasSuffix(col, "_partition") || strings.HasSuffix(col, "_offset")) {
			return "–"
		}
		if x == 0 && col == "seq_end" {
			return ""
		}
		return sig(x)
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			if t.IsZero() {
				return ""
			}
			return fmt.Sprintf("%s (%s)", secs(t.Sub(t0).Seconds()), t.UTC().Format("15:04:05.000"))
		}
		return x
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

type countRow struct {
	Name, Value, Note string
	Bad               bool
}

func countRows(r *report.Report) []countRow {
	c, x := r.Counts, r.ExtraCounts
	row := func(name string, v uint64, note string, bad bool) countRow {
		return countRow{name, strconv.FormatUint(v, 10), note, bad && v > 0}
	}
	return []countRow{
		row("produced", c.Produced, "records handed to the source producer", false),
		row("acked", c.Acked, "acknowledged by the source", false),
		row("received", c.Received, "this run's records read from the target", false),
		row("lost", c.Lost, "acknowledged, missing below what arrived", true),
		row("unseen", c.Unseen, "acknowledged, never arrived before the drain deadline", true),
		row("duplicate", c.Duplicate, "same record at two target offsets", false),
		row("reordered", c.Reordered, "a lower sequence after a higher one", true),
		row("corrupt", c.Corrupt, "checksum or payload mismatch", true),
		row("source_lost", c.SourceLost, "missing from the source log itself", true),
		row("redelivery", c.Redelivery, "kmt's own re-reads (not the mirror's)", false),
		row("foreign", c.Foreign, "records that are not kmt's", false),
		row("truncated", x.Truncated, "deleted by the source before the mirror copied them", false),
		row("failed", x.Failed, "sends the source rejected", false),
		row("other_runs", x.OtherRuns, "records of other runs", false),
	}
}

type windowRow struct {
	Class, Name, Kind, Applied, Reverted, Actions, Error string
	start                                                time.Time
}

func windowRows(r *report.Report, a axisSpan) []windowRow {
	at := func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return fmt.Sprintf("%s (%s)", secs(a.rel(t)), t.UTC().Format("15:04:05.000"))
	}
	var out []windowRow
	for _, p := range r.Phases {
		if strings.HasPrefix(p.Name, "fault:") {
			continue
		}
		out = append(out, windowRow{Class: "phase", Name: p.Name, Kind: "phase", Applied: at(p.Start), Reverted: at(p.End), start: p.Start})
	}
	for _, f := range r.Faults {
		out = append(out, windowRow{Class: "fault", Name: f.Name, Kind: f.Kind, Applied: at(f.Start), Reverted: at(f.End),
			Actions: strings.Join(f.Actions, "; "), Error: f.Error, start: f.Start})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}
