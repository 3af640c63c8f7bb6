package health

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Throttling is what a cgroup CPU quota did to the process: a Kubernetes
// CPU limit, docker --cpus, systemd's CPUQuota. When a cgroup has used its
// quota for the current period (100 ms by default), the kernel stops every
// thread in it until the next period begins. A stopped thread is not in the
// run queue, so neither the run-queue wait nor the Go scheduler's latency
// sees it; only the cgroup's cpu.stat counts it. Every record kmt handles
// during such a stop waits for it, so a throttled kmt reports its own stops
// as the mirror's latency.
type Throttling struct {
	// Periods is how many quota periods the cgroup had runnable threads
	// in; Throttled is how many of them ran out of quota.
	Periods   uint64  `json:"periods"`
	Throttled uint64  `json:"throttled"`
	Seconds   float64 `json:"seconds"` // time its threads were stopped, summed over the periods
	Cgroup    string  `json:"cgroup,omitempty"`
}

// cgroupRoot is where cgroup file systems are mounted (a var for tests).
var cgroupRoot = "/sys/fs/cgroup"

// cpuStatFiles lists the cpu.stat files that can throttle this process:
// its own cgroup's and every ancestor's (a quota on a Kubernetes pod's
// cgroup stops its containers too), for cgroup v2 and for v1's cpu
// controller. Files that do not exist are left out.
func cpuStatFiles(procCgroup []byte) []string {
	var files []string
	sc := bufio.NewScanner(bytes.NewReader(procCgroup))
	for sc.Scan() {
		// hierarchy-ID:controllers:path
		f := strings.SplitN(sc.Text(), ":", 3)
		if len(f) != 3 {
			continue
		}
		var mounts []string
		switch {
		case f[0] == "0" && f[1] == "":
			mounts = []string{cgroupRoot, filepath.Join(cgroupRoot, "unified")}
		case hasController(f[1], "cpu"):
			mounts = []string{filepath.Join(cgroupRoot, f[1]), filepath.Join(cgroupRoot, "cpu"), filepath.Join(cgroupRoot, "cpu,cpuacct")}
		default:
			continue
		}
		for _, m := range mounts {
			files = append(files, ancestors(m, f[2])...)
		}
	}
	return dedupe(files)
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// ancestors returns the cpu.stat files from mount/path up to mount. In a
// cgroup namespace the path is "/" and the mount is the process's own
// cgroup; outside one the path names it below the mount.
func ancestors(mount, path string) []string {
	var out []string
	for p := filepath.Clean("/" + path); ; p = filepath.Dir(p) {
		f := filepath.Join(mount, p, "cpu.stat")
		if _, err := os.Stat(f); err == nil {
			out = append(out, f)
		}
		if p == "/" {
			return out
		}
	}
}

func dedupe(files []string) []string {
	seen := map[string]bool{}
	out := files[:0]
	for _, f := range files {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// parseCPUStat reads the throttling counters of a cpu.stat file: v2 gives
// throttled_usec, v1 throttled_time in nanoseconds. ok is false when the
// file has no nr_throttled (not a CPU controller's file).
func parseCPUStat(b []byte) (t Throttling, ok bool) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, found := strings.Cut(sc.Text(), " ")
		if !found {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "nr_periods":
			t.Periods = n
		case "nr_throttled":
			t.Throttled, ok = n, true
		case "throttled_usec":
			t.Seconds = float64(n) / 1e6
		case "throttled_time":
			t.Seconds = float64(n) / float64(time.Second)
		}
	}
	return t, ok
}

// throttleCounters reads every cpu.stat that can throttle this process.
func throttleCounters() map[string]Throttling {
	pc, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	out := map[string]Throttling{}
	for _, f := range cpuStatFiles(pc) {
		if b, err := os.ReadFile(f); err == nil {
			if t, ok := parseCPUStat(b); ok {
				t.Cgroup = filepath.Dir(f)
				out[f] = t
			}
		}
	}
	return out
}

// worstThrottling is the cgroup that stopped the process longest between
// two readings of throttleCounters.
func worstThrottling(before, after map[string]Throttling) Throttling {
	var worst Throttling
	for f, a := range after {
		b, ok := before[f]
		if !ok || a.Throttled < b.Throttled || a.Periods < b.Periods {
			continue // appeared or was reset meanwhile: no delta to trust
		}
		d := Throttling{Periods: a.Periods - b.Periods, Throttled: a.Throttled - b.Throttled, Seconds: a.Seconds - b.Seconds, Cgroup: a.Cgroup}
		if d.Throttled > worst.Throttled || d.Throttled == worst.Throttled && d.Seconds > worst.Seconds {
			worst = d
		}
	}
	return worst
}
