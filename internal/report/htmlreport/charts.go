package htmlreport

import (
	"bytes"
	"fmt"
	"html"
	"image/color"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// The charts are drawn by gonum/plot (axes, ticks, lines, markers, legends)
// into one SVG whose rows share the time axis (plot.Align lines up their
// data areas). The phase and fault bands are added around gonum's output
// as plain SVG rectangles placed with gonum's own data-to-canvas transform:
// gonum's canvas cannot attach a tooltip (<title>) or attributes to what it
// draws, and a person hovering a band should read what was applied and
// reverted, and a test should find each band by its fault.

const (
	chartWidth = 760 // points
	rowHeight  = 150
	stripTop   = 16 // room above the first row for the phase names
)

var (
	grey   = color.RGBA{120, 120, 120, 255}
	blue   = color.RGBA{31, 119, 180, 255}
	green  = color.RGBA{44, 160, 44, 255}
	orange = color.RGBA{255, 127, 14, 255}
	red    = color.RGBA{214, 39, 40, 255}
	purple = color.RGBA{148, 103, 189, 255}
	black  = color.RGBA{0, 0, 0, 255}
	brown  = color.RGBA{140, 86, 75, 255}
	pink   = color.RGBA{227, 119, 194, 255}
	olive  = color.RGBA{188, 189, 34, 255}
)

// anomalyStyle gives each category its own colour and marker shape, so
// the markers read without colour too (print).
var anomalyStyle = map[string]struct {
	c color.Color
	g draw.GlyphDrawer
}{
	"lost":      {red, draw.CircleGlyph{}},
	"duplicate": {orange, draw.BoxGlyph{}},
	"reordered": {purple, draw.PyramidGlyph{}},
	"corrupt":   {black, draw.SquareGlyph{}},
}

// Sans-serif text reads better at the small sizes of the charts.
func init() { plot.DefaultFont = font.Font{Typeface: "Liberation", Variant: "Sans"} }

var extraColors = []color.Color{brown, pink, olive, blue, green, orange, purple, grey}

// axisSpan is the time axis: t0 and how many seconds it shows.
type axisSpan struct {
	t0  time.Time
	end float64
}

func (a axisSpan) rel(t time.Time) float64 { return t.Sub(a.t0).Seconds() }

func span(r *report.Report) axisSpan {
	a := axisSpan{t0: r.LoadStart(), end: float64(len(r.Timeline))}
	for _, p := range r.Phases {
		if !p.End.IsZero() {
			a.end = max(a.end, a.rel(p.End))
		}
	}
	for _, f := range r.Faults {
		if !f.End.IsZero() {
			a.end = max(a.end, a.rel(f.End))
		}
	}
	for _, s := range r.ExtraSeries {
		for _, p := range s.Points {
			a.end = max(a.end, p.T)
		}
	}
	if a.end <= 0 {
		a.end = 1
	}
	return a
}

// row is one chart of the stack.
type row struct {
	id string // data-plot name
	p  *plot.Plot
	// points counts what was drawn (0: an empty chart, said in its title)
	points int
}

func newRow(id, title, ylabel string, a axisSpan) *row {
	p := plot.New()
	p.BackgroundColor = nil // the bands behind must show through
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(10)
	p.Y.Label.Text = ylabel
	p.X.Min, p.X.Max = 0, a.end
	p.X.Tick.Marker = secondTicks{}
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	g := plotter.NewGrid()
	g.Vertical.Color = color.RGBA{225, 225, 225, 255}
	g.Horizontal.Color = g.Vertical.Color
	p.Add(g)
	return &row{id: id, p: p}
}

func (r *row) line(name string, c color.Color, dashed bool, xys plotter.XYs) {
	if len(xys) == 0 {
		return
	}
	l, err := plotter.NewLine(xys)
	if err != nil {
		return // NaN or Inf in the data: leave the series out, never crash
	}
	l.Color = c
	l.Width = vg.Points(1.2)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(3), vg.Points(2)}
	}
	r.p.Add(l)
	r.p.Legend.Add(name, l)
	r.points += len(xys)
	r.fitY(xys)
}

func (r *row) markers(name string, c color.Color, g draw.GlyphDrawer, xys plotter.XYs) {
	if len(xys) == 0 {
		return
	}
	s, err := plotter.NewScatter(xys)
	if err != nil {
		return
	}
	s.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(3), Shape: g}
	r.p.Add(s)
	r.p.Legend.Add(name, s)
	r.points += len(xys)
	r.fitY(xys)
}

// fitY leaves headroom above the highest value for the legend.
func (r *row) fitY(xys plotter.XYs) {
	for _, p := range xys {
		r.p.Y.Max = max(r.p.Y.Max, p.Y*1.3)
	}
}

// rows builds the charts of a report, top to bottom.
func rows(r *report.Report, a axisSpan) []*row {
	tl := r.Timeline
	mid := func(s report.Second) float64 { return float64(s.T) + 0.5 }

	rate := newRow("rates", "Records per second: produced and acknowledged at the source, delivered at the target", "records/s", a)
	var prod, acked, deliv plotter.XYs
	for _, s := range tl {
		prod = append(prod, plotter.XY{X: mid(s), Y: float64(s.Produced)})
		acked = append(acked, plotter.XY{X: mid(s), Y: float64(s.Acked)})
		deliv = append(deliv, plotter.XY{X: mid(s), Y: float64(s.Arrivals)})
	}
	if sampled(tl) {
		if anyY(prod) { // kmt validate reads acks from the ledger, not the producer
			rate.line("produced", grey, true, prod)
		}
		rate.line("acked", blue, false, acked)
	}
	rate.line("delivered", green, false, deliv)

	lag := newRow("lag", "Lag: records acknowledged by the source, not yet delivered to the target", "records", a)
	if sampled(tl) {
		var xys plotter.XYs
		for _, s := range tl {
			xys = append(xys, plotter.XY{X: float64(s.T) + 1, Y: float64(s.Lag)})
		}
		lag.line("lag", blue, false, xys)
	}

	lat := newRow("latency", "Mirror latency (produce to target read) of the records delivered each second", "seconds", a)
	var p50, p99, mx plotter.XYs
	for _, s := range tl {
		if s.Arrivals == 0 {
			continue
		}
		p50 = append(p50, plotter.XY{X: mid(s), Y: s.LatencyP50})
		if s.LatencyMax > 0 {
			p99 = append(p99, plotter.XY{X: mid(s), Y: s.LatencyP99})
			mx = append(mx, plotter.XY{X: mid(s), Y: s.LatencyMax})
		}
	}
	lat.line("max", red, true, mx)
	lat.line("p99", orange, false, p99)
	lat.line("p50", blue, false, p50)

	an := newRow("anomalies", "Anomalies detected per second, by category", "records", a)
	cats := map[string]plotter.XYs{}
	for _, s := range tl {
		for c, n := range s.Anomalies {
			cats[c] = append(cats[c], plotter.XY{X: mid(s), Y: float64(n)})
		}
	}
	for _, c := range slices.Sorted(maps.Keys(cats)) {
		st, ok := anomalyStyle[c]
		if !ok {
			st.c, st.g = grey, draw.PlusGlyph{}
		}
		an.markers(c, st.c, st.g, cats[c])
	}
	if an.points == 0 {
		an.p.Title.Text += " (none detected)"
		an.p.Y.Max = 1
	}
	out := append([]*row{rate, lag, lat, an}, extraRows(r.ExtraSeries, a)...)
	out[len(out)-1].p.X.Label.Text = "seconds since the load started"
	return out
}

func anyY(xys plotter.XYs) bool {
	for _, p := range xys {
		if p.Y != 0 {
			return true
		}
	}
	return false
}

// sampled says whether the timeline has the per-second source figures
// (reports from before they were recorded, or kmt validate, have none).
func sampled(tl []report.Second) bool {
	for _, s := range tl {
		if s.Produced > 0 || s.Acked > 0 || s.Lag > 0 {
			return true
		}
	}
	return false
}

// extraRows draws the extra series, one chart per unit.
func extraRows(ss []report.Series, a axisSpan) []*row {
	byUnit := map[string][]report.Series{}
	for _, s := range ss {
		byUnit[s.Unit] = append(byUnit[s.Unit], s)
	}
	var out []*row
	for i, unit := range slices.Sorted(maps.Keys(byUnit)) {
		names := []string{}
		for _, s := range byUnit[unit] {
			names = append(names, s.Name)
		}
		rw := newRow(fmt.Sprintf("extra-%d", i), "Also recorded: "+strings.Join(names, ", "), unit, a)
		for j, s := range byUnit[unit] {
			xys := make(plotter.XYs, 0, len(s.Points))
			for _, p := range s.Points {
				xys = append(xys, plotter.XY{X: p.T, Y: p.V})
			}
			rw.line(s.Name, extraColors[j%len(extraColors)], false, xys)
			// Series may go below zero (a rate derived from a reset counter).
			for _, p := range xys {
				rw.p.Y.Min = min(rw.p.Y.Min, p.Y)
			}
		}
		out = append(out, rw)
	}
	return out
}

// secondTicks labels the time axis at a round step (1, 2, 5, 10, 15, 30 s,
// 1, 2, 5, 10, 15, 30 min, ...) giving about ten labels, with unlabelled
// minor ticks between them.
type secondTicks struct{}

func (secondTicks) Ticks(lo, hi float64) []plot.Tick {
	steps := []float64{1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200}
	step := steps[len(steps)-1]
	for _, s := range steps {
		if (hi-lo)/s <= 12 {
			step = s
			break
		}
	}
	per := 5 // minor ticks per labelled one
	if step == 15 || step == 900 {
		per = 3
	}
	minor := step / float64(per)
	var ts []plot.Tick
	for k := int(math.Ceil(lo / minor)); float64(k)*minor <= hi+1e-9; k++ {
		t := plot.Tick{Value: float64(k) * minor}
		if k%per == 0 {
			t.Label = strconv.FormatFloat(t.Value, 'f', -1, 64)
		}
		ts = append(ts, t)
	}
	return ts
}

// band is one shaded window of the time axis.
type band struct {
	class      string // "phase" or "fault"
	name, kind string
	start, end float64 // seconds since load start
	title      string
	fill       string
}

func bands(r *report.Report, a axisSpan) []band {
	var out []band
	fills := []string{"#f2f2f2", "#e6eef8"}
	i := 0
	for _, p := range r.Phases {
		if strings.HasPrefix(p.Name, "fault:") || p.Start.IsZero() {
			continue // faults are drawn from what really happened, below
		}
		end := a.end
		if !p.End.IsZero() {
			end = a.rel(p.End)
		}
		out = append(out, band{class: "phase", name: p.Name, start: a.rel(p.Start), end: end, fill: fills[i%2],
			title: fmt.Sprintf("phase %s: %s to %s", p.Name, secs(a.rel(p.Start)), secs(end))})
		i++
	}
	for _, f := range r.Faults {
		if f.Start.IsZero() {
			continue // never applied: listed in the table with its error
		}
		end, reverted := a.end, "not reverted before the report"
		if !f.End.IsZero() {
			end, reverted = a.rel(f.End), "reverted at "+secs(a.rel(f.End))
		}
		t := fmt.Sprintf("fault %s (%s): applied at %s, %s", f.Name, f.Kind, secs(a.rel(f.Start)), reverted)
		if len(f.Actions) > 0 {
			t += "\n" + strings.Join(f.Actions, "\n")
		}
		if f.Error != "" {
			t += "\nerror: " + f.Error
		}
		out = append(out, band{class: "fault", name: f.Name, kind: f.Kind, start: a.rel(f.Start), end: end, title: t, fill: "#fcd5c0"})
	}
	return out
}

// secs formats a time on the axis: "+12.3 s".
func secs(s float64) string { return fmt.Sprintf("+%.1f s", s) }

var (
	svgOpen  = regexp.MustCompile(`(?s)^.*?<svg width="[^"]*" height="[^"]*"`)
	fontFace = regexp.MustCompile(`font-family:Liberation Sans;`)
)

// chartsSVG draws every row into one SVG and returns it, ready to inline.
func chartsSVG(r *report.Report) (string, []*row, error) {
	a := span(r)
	rs := rows(r, a)
	h := vg.Length(stripTop + rowHeight*len(rs))
	c := vgsvg.New(vg.Points(chartWidth), h)
	dc := draw.New(c)
	grid := make([][]*plot.Plot, len(rs))
	for i, rw := range rs {
		grid[i] = []*plot.Plot{rw.p}
	}
	cs := plot.Align(grid, draw.Tiles{Rows: len(rs), Cols: 1, PadTop: stripTop, PadY: 6, PadX: 4, PadLeft: 4, PadRight: 8, PadBottom: 2}, dc)
	var overlay, labels strings.Builder
	areas := make([]draw.Canvas, len(rs))
	for i, rw := range rs {
		rw.p.Draw(cs[i][0])
		areas[i] = rw.p.DataCanvas(cs[i][0])
	}
	writeBands(&overlay, &labels, bands(r, a), rs, areas, float64(h))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", nil, fmt.Errorf("draw the charts: %w", err)
	}
	svg := buf.String()
	svg = svgOpen.ReplaceAllString(svg, fmt.Sprintf(`<svg class="charts" role="img" aria-label="time series of the run" width="100%%" preserveAspectRatio="xMinYMin meet" data-width="%d" data-height="%g"`, chartWidth, float64(h)))
	svg = fontFace.ReplaceAllString(svg, "font-family:'Liberation Sans',Arial,Helvetica,sans-serif;")
	// The bands go under gonum's drawing (its background is transparent)
	// and the labels on top.
	open := strings.Index(svg, ">") + 1
	end := strings.LastIndex(svg, "</svg>")
	svg = svg[:open] + "\n" + overlay.String() + svg[open:end] + labels.String() + "</svg>\n"
	return svg, rs, nil
}

// writeBands writes one <g> per band with a rectangle over every chart's
// data area (SVG coordinates: y grows downwards, gonum's upwards).
func writeBands(overlay, labels *strings.Builder, bs []band, rs []*row, areas []draw.Canvas, h float64) {
	overlay.WriteString(`<g class="bands">` + "\n")
	// Each chart's data area, named, so a reader of the page (the browser
	// test) finds where a chart draws without knowing gonum's layout.
	for i, ar := range areas {
		fmt.Fprintf(overlay, `<rect class="data-area" data-plot="%s" x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="none"/>`+"\n",
			rs[i].id, float64(ar.Min.X), h-float64(ar.Max.Y), float64(ar.Max.X-ar.Min.X), float64(ar.Max.Y-ar.Min.Y))
	}
	for _, b := range bs {
		attrs := fmt.Sprintf(`class="%s" data-name="%s" data-start="%.3f" data-end="%.3f"`, b.class, html.EscapeString(b.name), b.start, b.end)
		if b.kind != "" {
			attrs += fmt.Sprintf(` data-kind="%s"`, html.EscapeString(b.kind))
		}
		fmt.Fprintf(overlay, "<g %s><title>%s</title>\n", attrs, html.EscapeString(b.title))
		for i, ar := range areas {
			xf, _ := rs[i].p.Transforms(&ar)
			lo, hi := float64(ar.Min.X), float64(ar.Max.X)
			x0 := clamp(float64(xf(b.start)), lo, hi)
			x1 := clamp(float64(xf(b.end)), lo, hi)
			top, bottom := h-float64(ar.Max.Y), h-float64(ar.Min.Y)
			stroke := ""
			if b.class == "fault" {
				stroke = ` stroke="#d6604d" stroke-width="0.8"`
			}
			fmt.Fprintf(overlay, `<rect class="band" data-plot="%s" x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s"%s/>`+"\n",
				rs[i].id, x0, top, max(0.5, x1-x0), bottom-top, b.fill, stroke)
		}
		overlay.WriteString("</g>\n")
		writeLabel(labels, b, rs[0], areas[0], h)
	}
	overlay.WriteString("</g>\n")
}

// writeLabel names a band: phases in the strip above the charts, faults at
// the top of the first chart's band. A label that would not fit before the
// next band or the axis's end is left out (the tooltip and the table below
// the charts name every window).
func writeLabel(labels *strings.Builder, b band, rw *row, ar draw.Canvas, h float64) {
	lo, hi := float64(ar.Min.X), float64(ar.Max.X)
	x0 := clamp(float64(mustX(rw, ar, b.start)), lo, hi)
	x1 := clamp(float64(mustX(rw, ar, b.end)), lo, hi)
	need := 4.6*float64(len(b.name)) + 3 // points at font-size 8
	if x0+need > hi || (b.class == "phase" && x1-x0 < need) {
		return
	}
	y, fill := 11.0, "#555"
	if b.class == "fault" {
		y, fill = h-float64(ar.Max.Y)+10, "#b2182b"
	}
	fmt.Fprintf(labels, `<text class="band-label %s-label" x="%.2f" y="%.2f" font-size="8" fill="%s" font-family="Arial,Helvetica,sans-serif">%s</text>`+"\n",
		b.class, x0+2, y, fill, html.EscapeString(b.name))
}

func mustX(rw *row, ar draw.Canvas, v float64) vg.Length {
	xf, _ := rw.p.Transforms(&ar)
	return xf(v)
}

func clamp(v, lo, hi float64) float64 { return min(max(v, lo), hi) }
