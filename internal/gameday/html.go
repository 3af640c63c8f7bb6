package gameday

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"os"
	"path/filepath"
	"time"
)

//go:embed game-day.html.tmpl
var pageText string

var page = template.Must(template.New("gameday").Funcs(template.FuncMap{
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("15:04:05.000")
	},
	"secs": func(v float64) string { return fmt.Sprintf("%.1f s", v) },
	"inc":  func(i int) int { return i + 1 },
}).Parse(pageText))

// writeHTML writes game-day.html: self-contained, one section per step,
// links to each step's own report.html.
func writeHTML(dir string, r *Result) error {
	var buf bytes.Buffer
	if err := page.Execute(&buf, r); err != nil {
		return fmt.Errorf("render the game day report: %w", err)
	}
	path := filepath.Join(dir, resultHTML)
	if err := os.WriteFile(path+".tmp", buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.Rename(path+".tmp", path)
}
