// Package health judges kmt itself: whether its own load generation,
// validation or CPU was the bottleneck of a run. A latency measured while
// kmt was saturated includes kmt's own queueing, so it must not be blamed on
// the mirror: the run says so (latency assertions become incomplete, with
// the reason) instead of failing the mirror.
package health

import (
	"fmt"
	"math"
)

// Sample is what kmt observed about itself over the load.
type Sample struct {
	TargetRate   float64 // records/s asked for; 0: as fast as possible (never "behind")
	AchievedRate float64 // records/s handed to the producer
	Skipped      uint64  // scheduled records given up because the producer fell behind
	CPU          CPU     // the process's CPU use over the load (zero: not measured)
	// ReadLagSeconds is how far the validator's own reading fell behind
	// the target log at worst; negative when not measured.
	ReadLagSeconds float64
}

// Limits are the thresholds beyond which kmt counts as saturated.
type Limits struct {
	MinRateRatio    float64 // achieved/target below this: the load fell behind
	MaxCPUAvg       float64 // average share of the usable cores
	MaxCPUPeak      float64 // share of the usable cores in the busiest second
	MaxSchedP99     float64 // seconds a runnable goroutine waits for a CPU (99th percentile)
	MaxRunQueue     float64 // seconds a thread waits in the kernel's run queue, on average
	MaxRunQueuePeak float64 // the same in the worst second
	MaxReadLagSecs  float64 // the validator's own read lag
	// MaxThrottled: share of its cgroup's CPU quota periods in which the
	// process ran out of quota and was stopped.
	MaxThrottled float64
}

// DefaultLimits: 2% rate slack is the loadgen's accuracy at half its
// ceiling (the bench table); a process that holds 90% of its cores on
// average, or 98% for a second, leaves its own goroutines queueing for CPU,
// which shows up as latency; a record passes several goroutines on its way
// (producer, mirror, validator), each waiting for a CPU, so a 99th
// percentile wait of 20 ms (a healthy process waits well under a
// millisecond) puts tens of milliseconds of kmt's own queueing into the
// latency it reports; a validator a second behind the target adds that
// second to every latency it measures.
//
// The kernel run-queue wait catches a machine busy with other processes: on
// an idle machine a thread waits microseconds; 2 ms on average (a record
// crosses several threads, and the average hides a long tail) already adds
// more than the single-digit milliseconds a healthy embedded mirror takes;
// 5 ms in the worst second is a burst that reaches the 99th percentile.
//
// A cgroup CPU quota stops the whole process until the period ends (up to
// 100 ms by default) each time it runs out: when 1% of the periods ran out,
// about 1% of the records waited for such a stop, which is the 99th
// percentile of the latency kmt reports.
var DefaultLimits = Limits{MinRateRatio: 0.98, MaxCPUAvg: 0.90, MaxCPUPeak: 0.98, MaxSchedP99: 0.020, MaxRunQueue: 0.002, MaxRunQueuePeak: 0.005, MaxReadLagSecs: 1,
	MaxThrottled: 0.01}

// Assessment is the verdict on kmt itself.
type Assessment struct {
	Saturated bool     `json:"saturated"`
	Reasons   []string `json:"reasons,omitempty"`
}

// Assess compares s with the limits. Each exceeded limit is one reason.
func Assess(s Sample, l Limits) Assessment {
	var a Assessment
	add := func(format string, args ...any) {
		a.Saturated = true
		a.Reasons = append(a.Reasons, fmt.Sprintf(format, args...))
	}
	if s.TargetRate > 0 && s.AchievedRate < l.MinRateRatio*s.TargetRate {
		add("kmt's loadgen reached %.0f of the %.0f records/s asked (%.0f%%, %d scheduled records skipped): the load, not the mirror, was the limit",
			s.AchievedRate, s.TargetRate, 100*s.AchievedRate/s.TargetRate, s.Skipped)
	} else if s.Skipped > 0 {
		add("kmt's loadgen fell more than a second behind its schedule and skipped %d records", s.Skipped)
	}
	if c := s.CPU; c.Cores > 0 {
		if c.Avg >= l.MaxCPUAvg {
			add("kmt's process used %.0f%% of its %d usable cores on average over the load (limit %.0f%%): its own readers and producer queued for CPU",
				100*c.Avg, c.Cores, 100*l.MaxCPUAvg)
		} else if c.Peak >= l.MaxCPUPeak {
			add("kmt's process used %.0f%% of its %d usable cores in its busiest second (limit %.0f%%)", 100*c.Peak, c.Cores, 100*l.MaxCPUPeak)
		}
		if c.RunQueueWaitSeconds >= l.MaxRunQueue {
			add("kmt's threads waited %.1f ms on average in the kernel's run queue (limit %.1f ms): the machine was too busy (other processes, or too few cores) for kmt to measure latency",
				1000*c.RunQueueWaitSeconds, 1000*l.MaxRunQueue)
		} else if c.RunQueuePeakSeconds >= l.MaxRunQueuePeak {
			add("kmt's threads waited %.1f ms per run in the kernel's run queue in the worst second (limit %.1f ms): a burst of contention for CPU shows in the latency tail",
				1000*c.RunQueuePeakSeconds, 1000*l.MaxRunQueuePeak)
		}
		if th := c.Throttling; th.Periods > 0 && float64(th.Throttled) >= l.MaxThrottled*float64(th.Periods) {
			add("kmt's process ran out of its CPU quota (cgroup %s) in %d of %d periods and was stopped for %.2f s in all (limit %.0f%% of the periods): raise its CPU limit, or lower the rate",
				th.Cgroup, th.Throttled, th.Periods, th.Seconds, 100*l.MaxThrottled)
		}
		if c.SchedP99Seconds >= l.MaxSchedP99 {
			add("kmt's goroutines waited up to %.0f ms for a CPU (99th percentile, limit %.0f ms): the machine (kmt or other processes) was too busy for kmt to measure latency",
				1000*c.SchedP99Seconds, 1000*l.MaxSchedP99)
		}
	}
	if s.ReadLagSeconds >= l.MaxReadLagSecs && !math.IsInf(s.ReadLagSeconds, 0) {
		add("kmt's validator fell %.1f s behind the target log (limit %.1f s): measured latency includes its own lag", s.ReadLagSeconds, l.MaxReadLagSecs)
	}
	return a
}

// Report is what report.json says about kmt itself: the figures and the
// assessment.
type Report struct {
	Assessment
	TargetRate     float64 `json:"target_rate"`
	AchievedRate   float64 `json:"achieved_rate"`
	Skipped        uint64  `json:"skipped"`
	CPU            CPU     `json:"cpu"`
	ReadLagSeconds float64 `json:"read_lag_seconds"` // negative: not measured
}

// NewReport assesses s with DefaultLimits.
func NewReport(s Sample) *Report {
	return &Report{Assessment: Assess(s, DefaultLimits), TargetRate: s.TargetRate, AchievedRate: s.AchievedRate,
		Skipped: s.Skipped, CPU: s.CPU, ReadLagSeconds: s.ReadLagSeconds}
}
