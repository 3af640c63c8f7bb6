package node

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Which scenario faults this node can perform. Chaos Mesh's
// controller-manager and chaos-daemon run here (chaosmesh.go,
// chaosdaemon.go): PodChaos pod-kill (mirror-restart) deletes the pod
// through the API server, and container-kill (mirror-kill, container-kill)
// is the daemon's SIGKILL of the container's task through containerd. The
// daemon's other chaos runs programs its upstream image carries and the
// node's image (the chaos-daemon binary alone) does not: tc for bandwidth
// (tbf), iptables and ipset for partitions, stress-ng for stress, and
// Chaos Mesh's own helpers (nsexec, toda) to enter the pods' namespaces
// and skew clocks; those stories are refused. The traffic-shaping kinds
// could not run even with those tools: they are tc netem in the pod's
// network namespace, and this machine's kernel is built without netem
// (ProbeNetem says so when it is the case).

// netemKinds are the kinds Chaos Mesh carries out with tc netem.
var netemKinds = map[scenarios.FaultKind]bool{
	scenarios.WANLatency: true, scenarios.WANLoss: true, scenarios.WANDuplicate: true, scenarios.WANCorrupt: true,
}

// daemonToolKinds are the other kinds whose chaos-daemon work needs the
// tools the node's daemon image lacks: bandwidth (tc tbf), partition
// (iptables, ipset), stress (stress-ng) and clock skew (toda).
var daemonToolKinds = map[scenarios.FaultKind]bool{
	scenarios.WANBandwidth: true, scenarios.WANPartition: true,
	scenarios.CPUStress: true, scenarios.MemoryStress: true, scenarios.ClockSkew: true,
}

// ProbeNetem returns why this kernel cannot run netem, or "" when it can:
// it adds a netem qdisc to the loopback device of a scratch network
// namespace (unshare --net: the namespace goes with the command), and
// quotes the kernel's build configuration when /proc/config.gz has it.
func ProbeNetem() string {
	out, err := exec.Command("unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "10ms").CombinedOutput()
	if err == nil {
		return ""
	}
	reason := fmt.Sprintf("`tc qdisc add dev lo root netem delay 10ms` in a scratch network namespace fails: %s (%v)", strings.TrimSpace(string(out)), err)
	if line := kernelConfig("CONFIG_NET_SCH_NETEM"); line != "" {
		reason = fmt.Sprintf("the kernel is built without netem (/proc/config.gz: %q); %s", line, reason)
	}
	return reason
}

// kernelConfig is the line of /proc/config.gz that sets or leaves unset
// option, or "" when the kernel does not publish its configuration.
func kernelConfig(option string) string {
	f, err := os.Open("/proc/config.gz")
	if err != nil {
		return ""
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		return ""
	}
	sc := bufio.NewScanner(z)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, option+"=") || l == "# "+option+" is not set" {
			return l
		}
	}
	return ""
}

// Refusal says why this node cannot run scenario sc, or nil when it can
// perform every fault of its timeline; netem is ProbeNetem's answer.
func Refusal(sc *scenarios.Scenario, netem string) error {
	for _, f := range sc.Spec.Timeline {
		switch {
		case netemKinds[f.Kind] && netem != "":
			return fmt.Errorf("scenario %s cannot run on this node: fault %q (%s) is Chaos Mesh NetworkChaos shaping traffic with tc netem in the pods' network namespaces, and %s", sc.Metadata.Name, f.Name, f.Kind, netem)
		case netemKinds[f.Kind] || daemonToolKinds[f.Kind]:
			return fmt.Errorf("scenario %s cannot run on this node: fault %q (%s) needs programs Chaos Mesh's chaos-daemon image carries (tc, iptables, ipset, stress-ng, nsexec, toda) and this node's chaos-daemon image, the daemon binary alone, does not; the daemon here performs container-kill (SIGKILL through containerd) only", sc.Metadata.Name, f.Name, f.Kind)
		}
	}
	return nil
}
