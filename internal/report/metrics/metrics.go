// Package metrics names every Prometheus metric kmt exports, in one place, so
// that assertions can be checked against the list before a run starts and the
// Grafana dashboard, PrometheusRules and code cannot drift apart.
//
// Conventions (see DESIGN.md): prefix kmt_, base units, _total counters.
// Every series carries the constant labels scenario, run and role (attached
// with WrapRegisterer); per-topic series add topic. Nothing is labelled per
// key or per sequence.
package metrics

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"
)

// Constant label names.
const (
	LabelScenario = "scenario"
	LabelRun      = "run"
	LabelRole     = "role" // loadgen | mirror | validator | harness
	LabelTopic    = "topic"
	LabelCategory = "category"
	LabelPhase    = "phase"
	LabelFault    = "fault"
	LabelKind     = "kind"
)

// Metric names. Kind in the comment: C counter, G gauge, H histogram.
const (
	// loadgen (role=loadgen), label topic
	LoadgenSent   = "kmt_loadgen_sent_total"        // C records handed to the producer
	LoadgenAcked  = "kmt_loadgen_acked_total"       // C records the source acknowledged (acks=all)
	LoadgenFailed = "kmt_loadgen_failed_total"      // C records whose send failed
	LoadgenBytes  = "kmt_loadgen_acked_bytes_total" // C value bytes acknowledged
	LoadgenRate   = "kmt_loadgen_target_rate"       // G configured messages per second

	// reference mirror (role=mirror), label topic
	MirrorConsumed = "kmt_mirror_consumed_total" // C records read from the source
	MirrorProduced = "kmt_mirror_produced_total" // C records acknowledged by the target
	MirrorCommits  = "kmt_mirror_commits_total"  // C source offset commits
	MirrorErrors   = "kmt_mirror_errors_total"   // C consume/produce/commit errors
	MirrorRunning  = "kmt_mirror_up"             // G 1 while the mirror runs, 0 while killed/paused
	// MirrorDefect counts the records each deliberate reference-mirror
	// defect affected (label defect): the self-tests' expected counts.
	MirrorDefect = "kmt_mirror_defect_records_total" // C

	// validator (role=validator), label topic (the source topic name)
	ValidatorReceived = "kmt_validator_received_total"  // C this run's records read from the target (duplicates in, re-reads out)
	ValidatorAnomaly  = "kmt_validator_anomalies_total" // C label category: duplicate redelivery reordered corrupt foreign
	// G label category: lost unseen source_lost. Live values: lost counts acked
	// sequences missing below the highest seen; unseen those above it.
	ValidatorMissing     = "kmt_validator_missing_records"
	ValidatorLatency     = "kmt_validator_latency_seconds"                // H target read time minus produce time
	ValidatorLag         = "kmt_validator_lag_records"                    // G acked minus distinct received
	ValidatorLastArrival = "kmt_validator_last_arrival_timestamp_seconds" // G wall time of the last arrival
	// Stall watchdog (label topic: the target topic): partitions stalled
	// now, and stalls begun so far.
	ValidatorStalled = "kmt_validator_stalled_partitions" // G
	ValidatorStalls  = "kmt_validator_stalls_total"       // C
	// ValidatorSyncSeconds: seconds each metadata change took to appear on
	// the target (label kind: config, partitions, topic).
	ValidatorSyncSeconds = "kmt_validator_metadata_sync_seconds" // G labels kind, fault

	// harness (role=harness)
	Phase       = "kmt_phase"        // G label phase: 1 while the phase is current
	FaultActive = "kmt_fault_active" // G labels fault, kind: 1 while the fault window is open
	RunInfo     = "kmt_run_info"     // G 1, carries the constant labels
	WANBytes    = "kmt_wan_bytes_total"
)

// LatencyBuckets (seconds) resolve 1 ms steps up to 10 ms and keep a
// constant ~25% relative width up to 10 minutes, so histogram_quantile is
// meaningful for a local mirror (single-digit ms) and a stalled one (minutes).
var LatencyBuckets = func() []float64 {
	var b []float64
	for ms := 1; ms <= 10; ms++ {
		b = append(b, float64(ms)/1000)
	}
	for v := 0.0125; v <= 600; v *= 1.25 {
		b = append(b, v)
	}
	return append(b, 600)
}()

// Histograms lists the histogram names, whose series are name_bucket,
// name_sum and name_count.
var Histograms = []string{ValidatorLatency}

// Names returns every series name kmt exports, sorted, including the
// _bucket/_sum/_count series of histograms.
func Names() []string {
	n := []string{
		LoadgenSent, LoadgenAcked, LoadgenFailed, LoadgenBytes, LoadgenRate,
		MirrorConsumed, MirrorProduced, MirrorCommits, MirrorErrors, MirrorRunning, MirrorDefect,
		ValidatorReceived, ValidatorAnomaly, ValidatorMissing, ValidatorLag, ValidatorLastArrival,
		ValidatorStalled, ValidatorStalls, ValidatorSyncSeconds,
		Phase, FaultActive, RunInfo, WANBytes,
	}
	for _, h := range Histograms {
		n = append(n, h+"_bucket", h+"_sum", h+"_count")
	}
	sort.Strings(n)
	return n
}

// Known reports whether name is a series kmt exports.
func Known(name string) bool {
	for _, n := range Names() {
		if n == name {
			return true
		}
	}
	return false
}

// Wrap returns a registerer that adds the constant labels every kmt series
// carries.
func Wrap(reg prometheus.Registerer, scenario, run, role string) prometheus.Registerer {
	return prometheus.WrapRegistererWith(prometheus.Labels{
		LabelScenario: scenario, LabelRun: run, LabelRole: role,
	}, reg)
}
