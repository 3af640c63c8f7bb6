package node

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestRemoveKubeIPTables builds, in a scratch network namespace, the
// iptables state a node leaves when its daemons die: kubelet's
// KUBE-FIREWALL with jumps from INPUT and OUTPUT (one with a quoted
// comment, as the kubelet writes it), KUBE-IPTABLES-HINT in mangle,
// kube-proxy's KUBE-SERVICES jumping to a KUBE-SVC chain with jumps from
// PREROUTING and OUTPUT, and an ip6tables KUBE-FIREWALL with a jump from
// INPUT: 5 chains and 5 jumps. kubeIPTables must list exactly those,
// removeKubeIPTables must leave none, and a rule that is not the node's
// must survive.
func TestRemoveKubeIPTables(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces and iptables need root")
	}
	ns := fmt.Sprintf("kmt-ipt-test-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "delete", ns).Run() })
	setup := [][]string{
		{"iptables", "-N", "KUBE-FIREWALL"},
		{"iptables", "-A", "KUBE-FIREWALL", "-m", "mark", "--mark", "0x8000/0x8000", "-j", "DROP"},
		{"iptables", "-A", "INPUT", "-j", "KUBE-FIREWALL"},
		{"iptables", "-A", "OUTPUT", "-m", "comment", "--comment", "kubernetes firewall for dropping marked packets", "-j", "KUBE-FIREWALL"},
		{"iptables", "-A", "INPUT", "-p", "tcp", "--dport", "1", "-j", "ACCEPT"},
		{"iptables", "-t", "mangle", "-N", "KUBE-IPTABLES-HINT"},
		{"iptables", "-t", "nat", "-N", "KUBE-SERVICES"},
		{"iptables", "-t", "nat", "-N", "KUBE-SVC-ABC"},
		{"iptables", "-t", "nat", "-A", "KUBE-SERVICES", "-d", "10.213.1.1/32", "-j", "KUBE-SVC-ABC"},
		{"iptables", "-t", "nat", "-A", "PREROUTING", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"},
		{"iptables", "-t", "nat", "-A", "OUTPUT", "-j", "KUBE-SERVICES"},
		{"ip6tables", "-N", "KUBE-FIREWALL"},
		{"ip6tables", "-A", "INPUT", "-j", "KUBE-FIREWALL"},
	}
	for _, c := range setup {
		if out, err := iptablesCommand(ns, c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", c, err, out)
		}
	}
	var chains, jumps int
	for _, r := range kubeIPTables(ns) {
		if r.rule == nil {
			chains++
		} else {
			jumps++
		}
	}
	if chains != 5 || jumps != 5 {
		t.Errorf("found %d KUBE-* chains and %d jumps, want 5 and 5:\n%v", chains, jumps, kubeIPTables(ns))
	}
	if err := removeKubeIPTables(ns); err != nil {
		t.Errorf("removing: %v", err)
	}
	if left := kubeIPTables(ns); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	out, err := iptablesCommand(ns, "iptables-save").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "-A INPUT -p tcp -m tcp --dport 1 -j ACCEPT") {
		t.Errorf("a rule that is not the node's was removed:\n%s", out)
	}
}

// TestSplitIPTablesRule: quoted comments are one argument.
func TestSplitIPTablesRule(t *testing.T) {
	got := splitIPTablesRule(`-A OUTPUT -m comment --comment "kubernetes \"firewall\" rule" -j KUBE-FIREWALL`)
	want := []string{"-A", "OUTPUT", "-m", "comment", "--comment", `kubernetes "firewall" rule`, "-j", "KUBE-FIREWALL"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}
