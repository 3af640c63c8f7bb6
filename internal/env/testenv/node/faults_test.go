package node

import (
	"os"
	"strings"
	"testing"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// TestRefusalNamesWhatThisNodeCannotDo: on this machine the wan-latency
// story is refused with the kernel's own reason (ProbeNetem, which adds a
// real netem qdisc in a scratch network namespace), the other WAN stories
// because the node's chaos-daemon image lacks tc and iptables, and the
// stories whose faults the node performs (no fault; mirror-kill, a
// container-kill by the chaos-daemon) are accepted.
func TestRefusalNamesWhatThisNodeCannotDo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("probing netem needs a network namespace (root)")
	}
	netem := ProbeNetem()
	t.Logf("netem probe: %q", netem)
	read := func(name string) *scenarios.Scenario {
		sc, err := scenarios.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	for _, name := range []string{"baseline", "mirror-hard-kill"} {
		if err := Refusal(read(name), netem); err != nil {
			t.Errorf("%s refused: %v", name, err)
		}
	}
	lat := Refusal(read("wan-latency"), netem)
	switch {
	case lat == nil:
		t.Error("wan-latency accepted, but this node's chaos-daemon has no tc to add its latency")
	case netem != "" && !strings.Contains(lat.Error(), netem):
		t.Errorf("wan-latency refused without the kernel's reason %q: %v", netem, lat)
	}
	if cfg := kernelConfig("CONFIG_NET_SCH_NETEM"); strings.HasSuffix(cfg, "is not set") && !strings.Contains(netem, cfg) {
		t.Errorf("the kernel says %q, and the netem reason does not quote it: %q", cfg, netem)
	}
	for _, name := range []string{"wan-bandwidth", "wan-partition"} {
		err := Refusal(read(name), netem)
		if err == nil || !strings.Contains(err.Error(), "chaos-daemon image") || !strings.Contains(err.Error(), "iptables") {
			t.Errorf("%s: %v, want a refusal naming the tools the chaos-daemon image lacks", name, err)
		}
	}
}
