package testkit

import (
	"os"
	"strconv"
	"strings"
)

// LoadAverage is the machine's 1, 5 and 15 minute load averages as
// /proc/loadavg prints them ("?" where it cannot be read), for benchmarks to
// log beside their figures: on a shared machine a figure means little
// without the load it was measured under.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// BenchRounds is how many alternating rounds a comparison benchmark runs:
// BENCH_ROUNDS, default 5. Its figure is the median over the rounds.
func BenchRounds() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 5
}
