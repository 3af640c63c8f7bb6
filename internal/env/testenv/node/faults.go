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
// controller-manager runs here, so PodChaos pod-kill (mirror-kill) is
// real: it deletes the pod through the API server. Everything that needs
// Chaos Mesh's chaos-daemon (a privileged DaemonSet that enters the pods'
// namespaces: NetworkChaos, container-kill, stress, time) is not run, and
// the traffic-shaping kinds could not run even with it: they are tc netem
// in the pod's network namespace, and this machine's kernel is built
// without netem (ProbeNetem says so when it is the case).

// netemKinds are the kinds Chaos Mesh carries out with tc netem.
var netemKinds = map[scenarios.FaultKind]bool{
	scenarios.WANLatency: true, scenarios.WANLoss: true, scenarios.WANDuplicate: true, scenarios.WANCorrupt: true,
}

// daemonKinds are the other kinds that need the chaos-daemon: bandwidth
// (tc tbf) and partition (iptables) shaping, container kills, stress and
// clock skew.
var daemonKinds = map[scenarios.FaultKind]bool{
	scenarios.WANBandwidth: true, scenarios.WANPartition: true, scenarios.ContainerKill: true,
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
		case netemKinds[f.Kind] || daemonKinds[f.Kind]:
			return fmt.Errorf("scenario %s cannot run on this node: fault %q (%s) needs Chaos Mesh's chaos-daemon (a privileged DaemonSet entering the pods' namespaces), which this node does not run; only the controller-manager runs here (PodChaos pod-kill)", sc.Metadata.Name, f.Name, f.Kind)
		}
	}
	return nil
}
