package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/kmt-dev/kafka-mirror-tester/internal/kube"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report/history"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Every report names the kmt that wrote it (main.version comes from -ldflags).
func init() { report.Version = version }

// saveValidateArtifacts adds to kmt validate's report folder what kmt run's
// has: the scenario it judged by (if any), report.html, the latest link.
func saveValidateArtifacts(dir string, s *scenarios.Scenario, rep *report.Report, markLatest bool, log *slog.Logger) {
	if s != nil {
		if err := history.SaveConfig(dir, s); err != nil {
			log.Warn("could not save the scenario", "err", err)
		}
	}
	history.Finish(dir, rep, markLatest, log)
}

// configMapRoom is what report.html may take in the report ConfigMap: a
// ConfigMap holds 1 MiB in all, report.json and the summary come first.
const configMapRoom = 1<<20 - 64<<10

// putHTMLConfigMap adds report.html to the in-cluster report ConfigMap when
// it fits; otherwise the log says where it is.
func putHTMLConfigMap(ctx context.Context, cm *kube.ReportWriter, dir string, log *slog.Logger) {
	page, err := os.ReadFile(filepath.Join(dir, history.HTMLFile))
	if err != nil {
		log.Warn("no report.html for the ConfigMap", "err", err)
		return
	}
	js, _ := os.ReadFile(filepath.Join(dir, history.ReportFile))
	if len(page)+len(js) > configMapRoom {
		log.Warn("report.html does not fit the report ConfigMap beside report.json; copy it from the validator pod",
			"html_bytes", len(page), "json_bytes", len(js), "path", filepath.Join(dir, history.HTMLFile))
		return
	}
	if err := cm.Put(ctx, map[string]string{history.HTMLFile: string(page)}); err != nil {
		log.Warn("could not add report.html to the report ConfigMap", "err", err)
		return
	}
	log.Info("report.html written to the report ConfigMap", "bytes", len(page))
}
