package node

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// The node's iptables state: kube-proxy's Service rules and whatever the
// kubelet makes (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT
// and the jumps to them from INPUT, OUTPUT and FORWARD), in both address
// families and every table. One node runs per machine (node.lock), so
// every KUBE-* chain and every jump to one is the node's: teardown removes
// them all, whoever made them, and Leftovers reports any that survive.

// iptablesFamilies are the save and edit commands of each address family.
var iptablesFamilies = [][2]string{{"iptables-save", "iptables"}, {"ip6tables-save", "ip6tables"}}

// kubeRule is a rule of a built-in (or other non-KUBE) chain that jumps
// to a KUBE-* chain, or (Rule nil) a KUBE-* chain itself.
type kubeRule struct {
	tool, table, chain string
	rule               []string // the rule's match and target, as iptables-save wrote it after "-A <chain>"
}

func (r kubeRule) String() string {
	if r.rule == nil {
		return fmt.Sprintf("%s -t %s: chain %s", r.tool, r.table, r.chain)
	}
	return fmt.Sprintf("%s -t %s: rule -A %s %s", r.tool, r.table, r.chain, strings.Join(r.rule, " "))
}

// iptablesCommand runs tool in network namespace netns ("" for this
// machine's own, the node's).
func iptablesCommand(netns, tool string, args ...string) *exec.Cmd {
	if netns == "" {
		return exec.Command(tool, args...)
	}
	return exec.Command("ip", append([]string{"netns", "exec", netns, tool}, args...)...)
}

// kubeIPTables lists the KUBE-* chains and the jumps to them from other
// chains of network namespace netns ("" for the machine's), in both
// families (a family whose tools are missing is skipped).
func kubeIPTables(netns string) []kubeRule {
	var out []kubeRule
	for _, f := range iptablesFamilies {
		save, err := iptablesCommand(netns, f[0]).Output()
		if err != nil {
			continue
		}
		out = append(out, parseKubeIPTables(f[1], string(save))...)
	}
	return out
}

// parseKubeIPTables finds, in iptables-save output, the KUBE-* chains and
// the rules of other chains that jump (-j or -g) to one.
func parseKubeIPTables(tool, save string) []kubeRule {
	var out []kubeRule
	table := ""
	for _, line := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":KUBE-"):
			out = append(out, kubeRule{tool: tool, table: table, chain: strings.Fields(line)[0][1:]})
		case strings.HasPrefix(line, "-A "):
			args := splitIPTablesRule(line)
			if len(args) < 3 || strings.HasPrefix(args[1], "KUBE-") {
				continue // a KUBE-* chain's own rules go with it
			}
			for i := 2; i+1 < len(args); i++ {
				if (args[i] == "-j" || args[i] == "-g") && strings.HasPrefix(args[i+1], "KUBE-") {
					out = append(out, kubeRule{tool: tool, table: table, chain: args[1], rule: args[2:]})
					break
				}
			}
		}
	}
	return out
}

// splitIPTablesRule splits an iptables-save rule line into arguments:
// spaces separate them except inside double quotes (comments), where a
// backslash escapes the next character.
func splitIPTablesRule(line string) []string {
	var args []string
	var cur strings.Builder
	inArg, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '"':
			quoted, inArg = !quoted, true
		case c == ' ' && !quoted:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}

// removeKubeIPTables deletes the jumps to KUBE-* chains, then flushes and
// deletes the chains (flushing all first, since they jump to each other),
// and reports what it could not remove (in network namespace netns, ""
// for the machine's).
func removeKubeIPTables(netns string) error {
	rules := kubeIPTables(netns)
	var errs []error
	run := func(tool string, args ...string) {
		if out, err := iptablesCommand(netns, tool, args...).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(string(out))))
		}
	}
	for _, r := range rules {
		if r.rule != nil {
			run(r.tool, append([]string{"-w", "-t", r.table, "-D", r.chain}, r.rule...)...)
		}
	}
	for _, r := range rules {
		if r.rule == nil {
			run(r.tool, "-w", "-t", r.table, "-F", r.chain)
		}
	}
	for _, r := range rules {
		if r.rule == nil {
			run(r.tool, "-w", "-t", r.table, "-X", r.chain)
		}
	}
	if left := kubeIPTables(netns); len(left) > 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("iptables still holds %d KUBE-* chains or jumps after removing them, first: %s", len(left), left[0]))
	}
	return errors.Join(errs...)
}
