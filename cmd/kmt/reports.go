package main

import (
	"log/slog"

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
