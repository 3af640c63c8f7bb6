package e2e

import (
	"math"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/runner"
)

// TestWANLatency: a one-way WAN delay D raises the validator's median mirror
// latency by D (within 10%), comparing the fault window with the steady
// window of the same run.
func TestWANLatency(t *testing.T) {
	skipShort(t)
	t.Parallel()
	const d = 25 * time.Millisecond // must match testdata/wan-latency.yaml
	r := run(t, runner.Options{Scenario: testdata("wan-latency.yaml")})
	noLoss(t, r)
	f := r.fault(t, "slow-wan")
	fw := r.window(f)
	steady := r.seconds(window{2, fw.from}, 0)
	during := r.seconds(fw, 1)
	base, nb := medianP50(steady)
	slow, ns := medianP50(during)
	t.Logf("steady:%s", timelineString(steady))
	t.Logf("fault: %s", timelineString(during))
	delta := slow - base
	t.Logf("WAN latency D=%s: steady median p50 %.1f ms (%d s), fault median p50 %.1f ms (%d s), delta %.1f ms = %.2f D",
		d, base*1e3, nb, slow*1e3, ns, delta*1e3, delta/d.Seconds())
	if nb < 5 || ns < 5 {
		t.Fatalf("too few seconds with arrivals to compare: steady %d, fault %d (want >= 5 each)", nb, ns)
	}
	if math.Abs(delta-d.Seconds()) > 0.1*d.Seconds() {
		t.Errorf("latency rose by %.1f ms during a %s one-way WAN delay; want %s within 10%%", delta*1e3, d, d)
	}
}
