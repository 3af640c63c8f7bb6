package htmlreport_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// chromiumPath finds Debian's chromium (scripts/install-deps.sh installs it
// for `make test`). Without it: a failure as root (CI installs it), a skip
// otherwise.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, n := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Geteuid() == 0 {
		t.Fatal("chromium is not on PATH: run scripts/install-deps.sh (make deps) to install Debian's chromium")
	}
	t.Skip("chromium not on PATH and not root: install Debian's chromium package (scripts/install-deps.sh)")
	return ""
}

// artifactDir is where the test keeps its screenshot: $KMT_ARTIFACTS, or
// reports/test-artifacts at the repository root (git-ignored).
func artifactDir(t *testing.T) string {
	d := os.Getenv("KMT_ARTIFACTS")
	if d == "" {
		d = filepath.Join("..", "..", "..", "reports", "test-artifacts")
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatalf("create the artefact folder %s: %v", d, err)
	}
	return d
}

type box struct{ X, Y, W, H float64 }

type pageFacts struct {
	Verdict string
	Areas   []struct {
		Plot string
		Box  box
	}
	Faults []struct {
		Name  string
		Boxes []struct {
			Plot string
			Box  box
		}
	}
	Ticks []struct {
		V   float64
		Box box
	}
	LostHead []string
	Lost     [][]string
}

// factsJS reads what a person sees: the charts' data areas, the fault
// bands, the time axis labels of the bottom chart, the lost-records table.
const factsJS = `(() => {
  const r = e => { const b = e.getBoundingClientRect(); return {X: b.left + scrollX, Y: b.top + scrollY, W: b.width, H: b.height}; };
  const areas = [...document.querySelectorAll('svg.charts rect.data-area')].map(e => ({Plot: e.dataset.plot, Box: r(e)}));
  const faults = [...document.querySelectorAll('svg.charts g.fault')].map(g => ({Name: g.dataset.name,
    Boxes: [...g.querySelectorAll('rect.band')].map(e => ({Plot: e.dataset.plot, Box: r(e)}))}));
  const last = areas.length ? areas[areas.length - 1].Box : {Y: 0, H: 0};
  const ticks = [...document.querySelectorAll('svg.charts text')]
    .filter(e => !e.classList.contains('band-label') && /^[0-9]+(\.[0-9]+)?$/.test(e.textContent.trim()))
    .map(e => ({V: +e.textContent.trim(), Box: r(e)}))
    .filter(t => t.Box.Y >= last.Y + last.H && t.Box.Y < last.Y + last.H + 30);
  const tab = document.querySelector('table.evidence[data-category="lost"]');
  const rows = tab ? [...tab.querySelectorAll('tr')] : [];
  return {Verdict: document.getElementById('verdict').textContent, Areas: areas, Faults: faults, Ticks: ticks,
    LostHead: rows.length ? [...rows[0].cells].map(c => c.dataset.key) : [],
    Lost: rows.slice(1).map(tr => [...tr.cells].map(c => c.textContent))};
})()`

// TestBrowserShowsTheRun runs a WAN partition through a mirror that drops
// every 50th record, opens its report.html in headless Chromium and checks
// what a person would see: four charts that each draw something, one
// shaded band per applied fault where the time axis says the fault really
// was, and the lost records in the evidence table.
func TestBrowserShowsTheRun(t *testing.T) {
	chrome := chromiumPath(t)
	if testing.Short() {
		t.Skip("a real run of about 20 s")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	rep, err := runner.Run(ctx, runner.Options{
		Scenario: "wan-partition", Short: true, ReportDir: dir,
		Defects: []scenarios.Defect{{Name: scenarios.DefectDrop, Every: 50}},
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	if rep.Counts.Lost == 0 || len(rep.Examples["lost"]) == 0 {
		t.Fatalf("the drop=50 mirror lost nothing (counts %+v): the page has nothing to show", rep.Counts)
	}
	var applied []report.Fault
	for _, f := range rep.Faults {
		if !f.Start.IsZero() {
			applied = append(applied, f)
		}
	}
	if len(applied) == 0 || rep.LoadStartedAt == nil {
		t.Fatalf("faults %+v load start %v: the run applied no fault", rep.Faults, rep.LoadStartedAt)
	}

	alloc, acancel := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.WindowSize(1200, 900),
		// Chromium puts its singleton socket folder
		// (org.chromium.Chromium.*) in $TMPDIR and leaves it there.
		chromedp.Env("TMPDIR="+t.TempDir()))...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(alloc)
	defer bcancel()
	if err := chromedp.Do(bctx, chromedp.Navigate("file://"+filepath.Join(dir, "report.html"))); err != nil {
		t.Fatalf("chromium: open report.html: %v", err)
	}
	facts, err := chromedp.Run(bctx, chromedp.Evaluate[pageFacts](factsJS))
	if err != nil {
		t.Fatalf("chromium: read the page: %v", err)
	}
	shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("chromium: screenshot: %v", err)
	}
	art := artifactDir(t)
	os.WriteFile(filepath.Join(art, "report-browser.png"), shot, 0o644)
	if b, err := os.ReadFile(filepath.Join(dir, "report.html")); err == nil {
		os.WriteFile(filepath.Join(art, "report-browser.html"), b, 0o644)
	}
	t.Logf("screenshot: %s", filepath.Join(art, "report-browser.png"))

	if facts.Verdict != report.Fail {
		t.Errorf("verdict shown %q, want fail", facts.Verdict)
	}
	checkChartsDrawn(t, facts, shot)
	checkFaultBands(t, facts, rep, applied)
	checkLostTable(t, facts, rep)
}

// checkChartsDrawn: the four charts are there and each shows drawn data:
// pixels of a series colour inside its data area.
func checkChartsDrawn(t *testing.T, facts pageFacts, shot []byte) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("decode the screenshot: %v", err)
	}
	want := []string{"rates", "lag", "latency", "anomalies"}
	if len(facts.Areas) != len(want) {
		t.Fatalf("charts on the page: %+v, want %v", facts.Areas, want)
	}
	for i, a := range facts.Areas {
		if a.Plot != want[i] {
			t.Errorf("chart %d is %q, want %q", i, a.Plot, want[i])
		}
		if a.Box.W < 300 || a.Box.H < 60 {
			t.Errorf("chart %s is %.0fx%.0f px: too small to read", a.Plot, a.Box.W, a.Box.H)
		}
		if n := seriesPixels(img, a.Box); n < 40 {
			t.Errorf("chart %s: %d pixels of a series colour in its data area, want a drawn series", a.Plot, n)
		}
	}
}

// The series colours of charts.go (blue, green, orange, red, purple).
var seriesColours = [][3]float64{{31, 119, 180}, {44, 160, 44}, {255, 127, 14}, {214, 39, 40}, {148, 103, 189}}

func seriesPixels(img image.Image, b box) int {
	n := 0
	for y := int(b.Y) + 1; y < int(b.Y+b.H)-1; y++ {
		for x := int(b.X) + 1; x < int(b.X+b.W)-1; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			for _, c := range seriesColours {
				d := math.Abs(float64(r>>8)-c[0]) + math.Abs(float64(g>>8)-c[1]) + math.Abs(float64(bl>>8)-c[2])
				if d < 45 {
					n++
					break
				}
			}
		}
	}
	return n
}

// checkFaultBands: one band per applied fault, on every chart, from where
// the axis puts the fault's applied time to where it puts its reverted
// time (report.json's times; the axis read from the tick labels).
func checkFaultBands(t *testing.T, facts pageFacts, rep *report.Report, applied []report.Fault) {
	t.Helper()
	if len(facts.Faults) != len(applied) {
		t.Fatalf("%d fault bands on the page, want %d (one per applied fault: %+v)", len(facts.Faults), len(applied), applied)
	}
	// Fit pixel x = a + b*seconds to the labelled ticks.
	if len(facts.Ticks) < 3 {
		t.Fatalf("time axis labels found: %+v, want at least 3", facts.Ticks)
	}
	var sx, sy, sxx, sxy float64
	for _, tk := range facts.Ticks {
		x := tk.Box.X + tk.Box.W/2
		sx, sy, sxx, sxy = sx+tk.V, sy+x, sxx+tk.V*tk.V, sxy+tk.V*x
	}
	n := float64(len(facts.Ticks))
	b := (n*sxy - sx*sy) / (n*sxx - sx*sx)
	a := (sy - b*sx) / n
	const tol = 3.0 // px: tick labels are centred with gonum's font metrics
	for i, f := range applied {
		band := facts.Faults[i]
		if band.Name != f.Name {
			t.Errorf("band %d is %q, want fault %q", i, band.Name, f.Name)
		}
		wantL := a + b*f.Start.Sub(*rep.LoadStartedAt).Seconds()
		wantR := a + b*f.End.Sub(*rep.LoadStartedAt).Seconds()
		if len(band.Boxes) != len(facts.Areas) {
			t.Errorf("fault %s shaded on %d charts, want all %d", f.Name, len(band.Boxes), len(facts.Areas))
		}
		for _, bx := range band.Boxes {
			if math.Abs(bx.Box.X-wantL) > tol || math.Abs(bx.Box.X+bx.Box.W-wantR) > tol {
				t.Errorf("fault %s on chart %s shaded from x=%.1f to %.1f px, want %.1f to %.1f (applied %.2f s, reverted %.2f s after the load start)",
					f.Name, bx.Plot, bx.Box.X, bx.Box.X+bx.Box.W, wantL, wantR,
					f.Start.Sub(*rep.LoadStartedAt).Seconds(), f.End.Sub(*rep.LoadStartedAt).Seconds())
			}
		}
	}
}

// checkLostTable: every lost example of report.json is a row of the lost
// table, by stream and sequence.
func checkLostTable(t *testing.T, facts pageFacts, rep *report.Report) {
	t.Helper()
	col := map[string]int{}
	for i, h := range facts.LostHead {
		col[h] = i
	}
	si, ok1 := col["stream"]
	qi, ok2 := col["seq"]
	if !ok1 || !ok2 {
		t.Fatalf("lost table columns %v: no stream or seq", facts.LostHead)
	}
	shown := map[[2]string]bool{}
	for _, r := range facts.Lost {
		shown[[2]string{r[si], r[qi]}] = true
	}
	exs := rep.Examples["lost"]
	if len(facts.Lost) != len(exs) {
		t.Errorf("lost table has %d rows, report.json %d examples", len(facts.Lost), len(exs))
	}
	for _, e := range exs {
		k := [2]string{strconv.FormatUint(uint64(e.Stream), 10), strconv.FormatUint(e.Seq, 10)}
		if !shown[k] {
			t.Errorf("lost record stream %s seq %s is not in the table %v", k[0], k[1], facts.Lost)
		}
	}
}
