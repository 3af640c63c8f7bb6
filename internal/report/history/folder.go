// Package history keeps what a report folder holds besides report.json
// (the run's own log, the effective configuration, report.html), points
// reports/latest at the last run, finds a run again by folder or id, and
// compares two runs.
package history

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"go.yaml.in/yaml/v3"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/htmlreport"
)

// File names inside a report folder.
const (
	LogFile      = "kmt.log"       // the run's own log, debug level
	ConfigFile   = "scenario.yaml" // the effective scenario (after --short and flags)
	ReportFile   = "report.json"
	HTMLFile     = "report.html"
	LatestLink   = "latest"  // in the reports folder: symlink to the last run's folder
	DefaultRoot  = "reports" // where runs go by default
	configHeader = "# The scenario as this run ran it: after --short and the command-line overrides.\n"
)

// OpenLog returns log teed into dir/kmt.log (text format; info and above,
// debug too when log shows debug) and a close function. When the file cannot be created it says so on log and
// returns log unchanged: a run is never refused for its log file.
func OpenLog(dir string, log *slog.Logger) (*slog.Logger, func()) {
	f, err := os.OpenFile(filepath.Join(dir, LogFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		log.Warn("could not create the run's log file; logging to stderr only", "err", err)
		return log, func() {}
	}
	lvl := slog.LevelInfo
	if log.Handler().Enabled(context.Background(), slog.LevelDebug) {
		lvl = slog.LevelDebug
	}
	file := slog.NewTextHandler(f, &slog.HandlerOptions{Level: lvl})
	return slog.New(tee{log.Handler(), file}), func() { f.Close() }
}

// tee sends every record to both handlers (each applies its own level).
type tee struct{ a, b slog.Handler }

func (t tee) Enabled(ctx context.Context, l slog.Level) bool {
	return t.a.Enabled(ctx, l) || t.b.Enabled(ctx, l)
}

func (t tee) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	if t.a.Enabled(ctx, r.Level) {
		errs = append(errs, t.a.Handle(ctx, r.Clone()))
	}
	if t.b.Enabled(ctx, r.Level) {
		errs = append(errs, t.b.Handle(ctx, r))
	}
	return errors.Join(errs...)
}

func (t tee) WithAttrs(as []slog.Attr) slog.Handler {
	return tee{t.a.WithAttrs(as), t.b.WithAttrs(as)}
}

func (t tee) WithGroup(n string) slog.Handler { return tee{t.a.WithGroup(n), t.b.WithGroup(n)} }

// SaveConfig writes the effective configuration (any YAML-marshalable
// value, the scenario as run) to dir/scenario.yaml.
func SaveConfig(dir string, cfg any) error {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("write the effective scenario: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, ConfigFile), append([]byte(configHeader), b...), 0o644)
}

// Finish writes dir/report.html from rep and, when markLatest, points the
// latest link beside dir at it. Problems are logged, never fatal: report.json
// is already written.
func Finish(dir string, rep *report.Report, markLatest bool, log *slog.Logger) {
	if path, err := htmlreport.WriteFile(dir, rep); err != nil {
		log.Error("could not write report.html", "err", err)
	} else {
		log.Info("HTML report written", "path", path)
	}
	if markLatest {
		if err := MarkLatest(dir); err != nil {
			log.Warn("could not update the latest link", "err", err)
		}
	}
}

// MarkLatest points <parent of dir>/latest at dir (relative, replaced
// atomically).
func MarkLatest(dir string) error {
	parent, base := filepath.Split(filepath.Clean(dir))
	link := filepath.Join(parent, LatestLink)
	tmp := link + ".tmp"
	os.Remove(tmp)
	if err := os.Symlink(base, tmp); err != nil {
		return fmt.Errorf("link %s -> %s: %w", link, base, err)
	}
	if err := os.Rename(tmp, link); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", link, err)
	}
	return nil
}
