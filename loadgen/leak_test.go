package loadgen

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/check/ledger"
)

// Run must not leave goroutines behind (writer, transport, ledger topic).
func TestRunLeavesNoGoroutines(t *testing.T) {
	_, bs := newCluster(t, 3, "orders")
	// Warm-up run so one-time goroutines (kfake's per-connection handlers
	// of an earlier client, runtime helpers) settle before the baseline.
	if _, err := Run(context.Background(), Config{Bootstrap: bs, Topics: []string{"orders"}, RunID: "w", Count: 10, Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	settle := func(limit int) int {
		n := runtime.NumGoroutine()
		for deadline := time.Now().Add(5 * time.Second); n > limit && time.Now().Before(deadline); n = runtime.NumGoroutine() {
			time.Sleep(20 * time.Millisecond)
		}
		return n
	}
	// Baseline: the count once it stops changing.
	base := runtime.NumGoroutine()
	for stable := 0; stable < 5; {
		time.Sleep(20 * time.Millisecond)
		if n := runtime.NumGoroutine(); n == base {
			stable++
		} else {
			base, stable = n, 0
		}
	}
	for _, lt := range []string{"", ledger.DefaultTopic} {
		if _, err := Run(context.Background(), Config{Bootstrap: bs, Topics: []string{"orders"}, RunID: "l" + lt, Count: 500, Streams: 5,
			LedgerTopic: lt, Logger: quiet()}); err != nil {
			t.Fatal(err)
		}
		if n := settle(base); n > base {
			buf := make([]byte, 1<<20)
			t.Fatalf("ledger topic %q: %d goroutines after Run, %d before\n%s", lt, n, base, buf[:runtime.Stack(buf, true)])
		}
	}
}
