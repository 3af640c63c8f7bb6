package mirror

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// JMXExporterVersion is the Prometheus JMX exporter java agent kmt loads
// into MirrorMaker 2 (io.prometheus.jmx:jmx_prometheus_javaagent, the
// newest that resolves from Maven Central here; 1.3.0 did not, 2026-11-30).
const JMXExporterVersion = "1.0.1"

// EnsureJMXExporter returns the agent jar in cacheRoot, copying it there
// from Maven Central with Maven (once) when missing.
func EnsureJMXExporter(ctx context.Context, cacheRoot string) (string, error) {
	dir := filepath.Join(cacheRoot, "jmx-exporter-"+JMXExporterVersion)
	jar := filepath.Join(dir, "jmx_prometheus_javaagent-"+JMXExporterVersion+".jar")
	if _, err := os.Stat(jar); err == nil {
		return jar, nil
	}
	if err := os.MkdirAll(cacheRoot, 0o755); err != nil {
		return "", fmt.Errorf("JMX exporter: %w", err)
	}
	tmp, err := os.MkdirTemp(cacheRoot, ".jmx-exporter-")
	if err != nil {
		return "", fmt.Errorf("JMX exporter: %w", err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.CommandContext(ctx, "mvn", "-q", "-B", "dependency:copy",
		"-Dartifact=io.prometheus.jmx:jmx_prometheus_javaagent:"+JMXExporterVersion,
		"-DoutputDirectory="+tmp)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("JMX exporter: mvn dependency:copy io.prometheus.jmx:jmx_prometheus_javaagent:%s: %w: %s", JMXExporterVersion, err, strings.TrimSpace(out.String()))
	}
	if err := os.Rename(tmp, dir); err != nil && !os.IsExist(err) {
		if _, serr := os.Stat(jar); serr != nil { // another kmt won the race: fine
			return "", fmt.Errorf("JMX exporter: %w", err)
		}
	}
	if _, err := os.Stat(jar); err != nil {
		return "", fmt.Errorf("JMX exporter: Maven ran but %s is missing: %w", jar, err)
	}
	return jar, nil
}

// mm2ReportSeries are the MirrorMaker 2 series the report keeps (summed or
// maxed over partitions and tasks, see Summary): what it copied, how late,
// and whether its tasks run.
var mm2ReportSeries = []string{
	"kafka_connect_mirror_mirrorsourceconnector_record_count",
	"kafka_connect_mirror_mirrorsourceconnector_byte_count",
	"kafka_connect_mirror_mirrorsourceconnector_replication_latency_ms_avg",
	"kafka_connect_mirror_mirrorsourceconnector_replication_latency_ms_max",
	"kafka_connect_mirror_mirrorsourceconnector_record_age_ms_max",
	"kafka_connect_connect_worker_metrics_connector_running_task_count",
	"kafka_connect_connect_worker_metrics_connector_failed_task_count",
	"kafka_connect_source_task_metrics_source_record_poll",
	"kafka_connect_source_task_metrics_source_record_write",
}

// ReportMetrics is MetricsSummary cut to the series the report shows.
// It scrapes once more first, so the numbers are those of now.
func (m *MirrorMaker2) ReportMetrics() map[string]float64 {
	if m.metrics != nil {
		m.metrics.scrapeOnce(context.Background())
	}
	all := m.MetricsSummary()
	if all == nil {
		return nil
	}
	out := map[string]float64{}
	for _, k := range mm2ReportSeries {
		if v, ok := all[k]; ok && !math.IsNaN(v) && !math.IsInf(v, 0) { // JSON has no NaN (a bean with no sample yet)
			out[k] = v
		}
	}
	return out
}
