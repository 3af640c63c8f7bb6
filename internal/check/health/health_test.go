package health

import (
	"math"
	"os"
	"runtime/metrics"
	"strings"
	"testing"
	"time"
)

func TestAssess(t *testing.T) {
	cpu := func(avg, peak float64) CPU { return CPU{Avg: avg, Peak: peak, Cores: 2} }
	cases := []struct {
		name string
		s    Sample
		want []string // one substring per reason, in order; nil: healthy
	}{
		{"healthy", Sample{TargetRate: 1000, AchievedRate: 995, CPU: cpu(0.5, 0.7), ReadLagSeconds: 0.02}, nil},
		{"unlimited rate is never behind", Sample{TargetRate: 0, AchievedRate: 10, CPU: cpu(0.5, 0.7), ReadLagSeconds: -1}, nil},
		{"no CPU measured", Sample{TargetRate: 10, AchievedRate: 10, ReadLagSeconds: -1}, nil},
		{"load behind", Sample{TargetRate: 60000, AchievedRate: 41000, Skipped: 19000, ReadLagSeconds: -1},
			[]string{"reached 41000 of the 60000 records/s asked (68%, 19000 scheduled records skipped)"}},
		{"on rate but skipped", Sample{TargetRate: 1000, AchievedRate: 999, Skipped: 3, ReadLagSeconds: -1}, []string{"skipped 3 records"}},
		{"CPU on average", Sample{CPU: cpu(0.93, 0.99), ReadLagSeconds: -1}, []string{"used 93% of its 2 usable cores on average"}},
		{"CPU in the busiest second", Sample{CPU: cpu(0.6, 0.99), ReadLagSeconds: -1}, []string{"used 99% of its 2 usable cores in its busiest second"}},
		{"goroutines waited for a CPU", Sample{CPU: CPU{Avg: 0.3, Peak: 0.4, Cores: 2, SchedP99Seconds: 0.064}, ReadLagSeconds: -1},
			[]string{"waited up to 64 ms for a CPU"}},
		{"threads waited in the kernel's run queue", Sample{CPU: CPU{Avg: 0.1, Peak: 0.2, Cores: 2, RunQueueWaitSeconds: 0.0125}, ReadLagSeconds: -1},
			[]string{"waited 12.5 ms on average in the kernel's run queue"}},
		{"a burst of run-queue wait", Sample{CPU: CPU{Avg: 0.1, Peak: 0.2, Cores: 2, RunQueueWaitSeconds: 0.0005, RunQueuePeakSeconds: 0.009}, ReadLagSeconds: -1},
			[]string{"waited 9.0 ms per run in the kernel's run queue in the worst second"}},
		{"throttled by a CPU quota in 1% of the periods", Sample{CPU: CPU{Avg: 0.1, Peak: 0.2, Cores: 2,
			Throttling: Throttling{Periods: 200, Throttled: 2, Seconds: 0.12, Cgroup: "/sys/fs/cgroup/kubepods/pod1"}}, ReadLagSeconds: -1},
			[]string{"ran out of its CPU quota (cgroup /sys/fs/cgroup/kubepods/pod1) in 2 of 200 periods and was stopped for 0.12 s"}},
		{"throttled in fewer than 1% of the periods", Sample{CPU: CPU{Avg: 0.1, Peak: 0.2, Cores: 2,
			Throttling: Throttling{Periods: 201, Throttled: 2, Seconds: 0.12}}, ReadLagSeconds: -1}, nil},
		{"validator read lag", Sample{ReadLagSeconds: 2.5}, []string{"validator fell 2.5 s behind"}},
		{"everything", Sample{TargetRate: 100, AchievedRate: 50, CPU: cpu(0.95, 1), ReadLagSeconds: 7},
			[]string{"reached 50 of the 100", "on average", "fell 7.0 s behind"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := Assess(tc.s, DefaultLimits)
			if a.Saturated != (tc.want != nil) || len(a.Reasons) != len(tc.want) {
				t.Fatalf("Assess = %+v, want %d reasons %q", a, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(a.Reasons[i], w) {
					t.Errorf("reason %d %q does not say %q", i, a.Reasons[i], w)
				}
			}
		})
	}
}

// TestCPUMeterShares: with a process clock that advances 1.5 s of CPU per
// second of wall time and 2 cores, the average and every interval are 0.75.
func TestCPUMeterShares(t *testing.T) {
	base := time.Now()
	fake := func() time.Duration { return time.Duration(1.5 * float64(time.Since(base))) }
	m := startCPU(20*time.Millisecond, 2, fake)
	time.Sleep(100 * time.Millisecond)
	c := m.Stop()
	if c.Cores != 2 || c.Avg < 0.74 || c.Avg > 0.76 || c.Peak < 0.74 || c.Peak > 0.76 {
		t.Fatalf("CPU %+v, want avg and peak 0.75 of 2 cores", c)
	}
	if again := m.Stop(); again != c {
		t.Fatalf("second Stop = %+v, first %+v", again, c)
	}
}

// TestQuantile: the 99th percentile of what was added between two
// cumulative histograms is the upper bound of its bucket.
func TestQuantile(t *testing.T) {
	a := &metrics.Float64Histogram{Counts: []uint64{5, 5, 0}, Buckets: []float64{0, 0.001, 0.01, math.Inf(1)}}
	cases := []struct {
		counts []uint64
		want   float64
	}{
		{[]uint64{5, 5, 0}, 0},       // nothing added
		{[]uint64{105, 5, 0}, 0.001}, // all fast
		{[]uint64{103, 7, 0}, 0.01},  // 2 of 100 slow: the 99th is slow
		{[]uint64{104, 6, 0}, 0.001}, // 1 of 100 slow: the 99th is fast
		{[]uint64{5, 5, 100}, 0.01},  // the last bucket is open: its lower bound
	}
	for _, tc := range cases {
		b := &metrics.Float64Histogram{Counts: tc.counts, Buckets: a.Buckets}
		if got := quantile(a, b, 0.99); got != tc.want {
			t.Errorf("counts %v: p99 %g, want %g", tc.counts, got, tc.want)
		}
	}
}

// TestRunQueueReadsThisProcess: the kernel counts at least one timeslice
// for this process's threads (Linux).
func TestRunQueueReadsThisProcess(t *testing.T) {
	if _, err := os.Stat("/proc/self/task"); err != nil {
		t.Skip("no /proc: not Linux")
	}
	if rq := runQueue(); rq.slices == 0 {
		t.Fatal("no timeslices counted for a running process")
	}
}

// TestSchedStatArithmetic: the run-queue figures from two readings of the
// threads' counters: 30 ms waited over 60 turns is 0.5 ms a turn, and 30
// of the 120 ms the threads wanted a CPU is a share of 0.25.
func TestSchedStatArithmetic(t *testing.T) {
	a := schedStat{run: 1 * time.Second, wait: 100 * time.Millisecond, slices: 1000}
	b := schedStat{run: 1090 * time.Millisecond, wait: 130 * time.Millisecond, slices: 1060}
	d := b.since(a)
	if d.perSlice() != 0.0005 || d.share() != 0.25 {
		t.Fatalf("per turn %g s, share %g; want 0.0005 and 0.25", d.perSlice(), d.share())
	}
	if (schedStat{}).perSlice() != 0 || (schedStat{}).share() != 0 {
		t.Fatal("an empty interval must give 0, not NaN")
	}
}
