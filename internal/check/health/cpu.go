package health

import (
	"math"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// CPU is a process's CPU use over a period, as shares of the usable cores
// (1 = every usable core busy all the time), and how long its goroutines
// waited to run. The wait is what matters for latency and it also shows a
// machine shared with other busy processes, which the process's own CPU
// share does not: kmt can be starved while using little CPU itself.
type CPU struct {
	Avg   float64 `json:"avg"`
	Peak  float64 `json:"peak"` // the busiest sampling interval
	Cores int     `json:"cores"`
	// SchedP99Seconds: 99th percentile of the time a runnable goroutine
	// waited for a CPU (Go runtime metric /sched/latencies:seconds).
	SchedP99Seconds float64 `json:"sched_p99_seconds"`
	// RunQueueWaitSeconds: the average time one of the process's threads
	// waited in the kernel's run queue each time it became runnable
	// (Linux /proc/self/task/*/schedstat; 0 elsewhere). Go's own metric
	// does not see a thread the kernel keeps off the CPU because other
	// processes hold it: this does.
	RunQueueWaitSeconds float64 `json:"run_queue_wait_seconds"`
	// RunQueuePeakSeconds: the same in the worst sampling interval (a
	// burst of contention shows in the latency tail, not in the average).
	RunQueuePeakSeconds float64 `json:"run_queue_peak_seconds"`
	// Throttling: how often a cgroup CPU quota stopped the process (the
	// worst of its own cgroup and its ancestors; zero without a quota).
	Throttling Throttling `json:"throttling"`
}

// CPUMeter samples this process's CPU time (user + system) at a fixed
// interval until Stop.
type CPUMeter struct {
	every time.Duration
	cores int
	read  func() time.Duration // process CPU time so far

	start   time.Time
	cpu0    time.Duration
	sched0  *metrics.Float64Histogram
	wait0   time.Duration
	slices0 uint64
	thr0    map[string]Throttling // cgroup cpu.stat counters at the start
	rqPeak  float64               // worst interval's run-queue wait per timeslice (loop-owned)
	peak    float64
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
	result  CPU
}

// StartCPU starts sampling every interval (1 s if <= 0). The usable cores
// are GOMAXPROCS: what the Go scheduler can run at once.
func StartCPU(every time.Duration) *CPUMeter {
	return startCPU(every, runtime.GOMAXPROCS(0), processCPU)
}

func startCPU(every time.Duration, cores int, read func() time.Duration) *CPUMeter {
	if every <= 0 {
		every = time.Second
	}
	m := &CPUMeter{every: every, cores: cores, read: read, start: time.Now(), cpu0: read(),
		sched0: schedLatencies(), stop: make(chan struct{}), done: make(chan struct{})}
	m.wait0, m.slices0 = runQueue()
	m.thr0 = throttleCounters()
	go m.loop()
	return m
}

func (m *CPUMeter) loop() {
	defer close(m.done)
	t := time.NewTicker(m.every)
	defer t.Stop()
	lastT, lastC := m.start, m.cpu0
	lastW, lastN := m.wait0, m.slices0
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			now, c := time.Now(), m.read()                                // the tick's own time may be stale under load
			m.peak = max(m.peak, share(c-lastC, now.Sub(lastT), m.cores)) // loop-owned until done
			lastT, lastC = now, c
			if w, n := runQueue(); n > lastN && w > lastW {
				m.rqPeak = max(m.rqPeak, (w-lastW).Seconds()/float64(n-lastN))
				lastW, lastN = w, n
			}
		}
	}
}

// Stop ends sampling and returns the result (the same on every call).
func (m *CPUMeter) Stop() CPU {
	m.once.Do(func() {
		close(m.stop)
		<-m.done
		avg := share(m.read()-m.cpu0, time.Since(m.start), m.cores)
		// A load shorter than one interval has no full sample: its
		// average is its busiest stretch.
		m.result = CPU{Avg: avg, Peak: max(m.peak, avg), Cores: m.cores, SchedP99Seconds: quantile(m.sched0, schedLatencies(), 0.99)}
		if wait, slices := runQueue(); slices > m.slices0 && wait > m.wait0 {
			m.result.RunQueueWaitSeconds = (wait - m.wait0).Seconds() / float64(slices-m.slices0)
		}
		m.result.RunQueuePeakSeconds = max(m.rqPeak, m.result.RunQueueWaitSeconds)
		m.result.Throttling = worstThrottling(m.thr0, throttleCounters())
	})
	return m.result
}

// share is cpu time over wall time of cores cores.
func share(cpu, wall time.Duration, cores int) float64 {
	if wall <= 0 || cores <= 0 {
		return 0
	}
	return cpu.Seconds() / wall.Seconds() / float64(cores)
}

// processCPU is this process's user + system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

const schedMetric = "/sched/latencies:seconds"

func schedLatencies() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: schedMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return nil
	}
	return s[0].Value.Float64Histogram()
}

// quantile returns the q-quantile of the observations added between the
// cumulative histograms a and b (same buckets), as the upper bound of the
// bucket it falls in (finite: the lower bound for the last bucket).
func quantile(a, b *metrics.Float64Histogram, q float64) float64 {
	if a == nil || b == nil || len(a.Counts) != len(b.Counts) {
		return 0
	}
	var total uint64
	for i := range b.Counts {
		total += b.Counts[i] - a.Counts[i]
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i := range b.Counts {
		seen += b.Counts[i] - a.Counts[i]
		if seen >= rank {
			if hi := b.Buckets[i+1]; !math.IsInf(hi, 1) {
				return hi
			}
			return b.Buckets[i]
		}
	}
	return 0
}

// runQueue sums, over the process's threads, the time spent waiting in the
// kernel's run queue and the number of times they ran (fields 2 and 3 of
// /proc/<pid>/task/<tid>/schedstat). Threads that exited are not counted,
// so a delta over a period can only understate the wait.
func runQueue() (time.Duration, uint64) {
	dirs, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, 0
	}
	var wait, slices uint64
	for _, d := range dirs {
		b, err := os.ReadFile("/proc/self/task/" + d.Name() + "/schedstat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) < 3 {
			continue
		}
		w, err1 := strconv.ParseUint(f[1], 10, 64)
		n, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 == nil && err2 == nil {
			wait += w
			slices += n
		}
	}
	return time.Duration(wait), slices
}
