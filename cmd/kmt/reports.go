package main

import (
	"context"
	"fmt"
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

// putHTMLConfigMap adds report.html to the in-cluster report ConfigMap
// (name) when it fits; otherwise the Job's log says how to rebuild it from
// the ConfigMap's report.json (a finished pod cannot be copied from).
func putHTMLConfigMap(ctx context.Context, cm *kube.ReportWriter, name, dir string, log *slog.Logger) {
	page, err := os.ReadFile(filepath.Join(dir, history.HTMLFile))
	if err != nil {
		log.Warn("no report.html for the ConfigMap", "err", err)
		return
	}
	js, _ := os.ReadFile(filepath.Join(dir, history.ReportFile))
	if len(page)+len(js) > configMapRoom {
		ns, _ := kube.Namespace()
		log.Warn("report.html does not fit the report ConfigMap beside report.json; rebuild it on your machine from the report.json the ConfigMap keeps",
			"html_bytes", len(page), "json_bytes", len(js),
			"get_it", fmt.Sprintf(`kubectl -n %s get configmap %s -o jsonpath='{.data.report\.json}' > report.json && kmt show report.json --html`, ns, name))
		return
	}
	if err := cm.Put(ctx, map[string]string{history.HTMLFile: string(page)}); err != nil {
		log.Warn("could not add report.html to the report ConfigMap", "err", err)
		return
	}
	log.Info("report.html written to the report ConfigMap", "bytes", len(page))
}
