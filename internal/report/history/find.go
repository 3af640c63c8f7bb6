package history

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// Run is one run found again: its folder and its report.
type Run struct {
	Dir    string
	Report *report.Report
}

// Find resolves what a person types to name a run: a report folder, a
// report.json, a run id under root (reports/<run>), or "latest".
func Find(root, what string) (*Run, error) {
	tried := []string{}
	for _, dir := range candidates(root, what) {
		p := filepath.Join(dir, ReportFile)
		tried = append(tried, p)
		r, err := report.ReadJSON(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &Run{Dir: dir, Report: r}, nil
	}
	return nil, fmt.Errorf("no report for %q (looked for %s): give a report folder, a report.json, or a run id under %s/ (ls %s)",
		what, strings.Join(tried, ", "), root, root)
}

func candidates(root, what string) []string {
	if filepath.Base(what) == ReportFile {
		return []string{filepath.Dir(what)}
	}
	out := []string{what}
	if !strings.ContainsRune(what, os.PathSeparator) {
		out = append(out, filepath.Join(root, what))
	}
	return out
}

// ReadConfig returns the effective scenario saved in a report folder ("" if
// the run saved none).
func ReadConfig(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, ConfigFile))
	if err != nil {
		return ""
	}
	return string(b)
}
