package kind_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Addresses the stand-in docker reports for the two kind nodes: outside
// 172.18.0.0/16 on purpose, so an assumed kind subnet shows up as a wrong
// peer address.
const (
	standinSourceIP = "192.168.207.3"
	standinTargetIP = "192.168.207.4"
)

// standins puts kind, docker, helm and kubectl stand-ins (testdata/standin.sh)
// first on PATH and returns the environment and the state folder.
func standins(t *testing.T, extra ...string) ([]string, string) {
	t.Helper()
	bin, state := t.TempDir(), t.TempDir()
	self, err := filepath.Abs("testdata/standin.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"kind", "docker", "helm", "kubectl"} {
		if err := os.Symlink(self, filepath.Join(bin, n)); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(),
		"PATH="+bin+":"+os.Getenv("PATH"),
		"STANDIN_STATE="+state,
		"STANDIN_SOURCE_IP="+standinSourceIP,
		"STANDIN_TARGET_IP="+standinTargetIP,
	)
	return append(env, extra...), state
}

func runScript(t *testing.T, env []string, script string, extraEnv ...string) string {
	t.Helper()
	abs, err := filepath.Abs(script)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", abs)
	cmd.Dir = t.TempDir() // run.sh saves the report in the working folder
	cmd.Env = append(env, extraEnv...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s with stand-in tools: %v\n%s", script, err, out)
	}
	return string(out)
}

func traceLines(t *testing.T, state string) []string {
	t.Helper()
	return strings.Split(strings.TrimSpace(readFile(t, filepath.Join(state, "trace"))), "\n")
}

// index of the first trace line containing all of parts, or -1.
func indexOf(lines []string, parts ...string) int {
	for i, l := range lines {
		ok := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				ok = false
				break
			}
		}
		if ok {
			return i
		}
	}
	return -1
}

// TestUpTraced runs kind/up.sh against stand-in tools: namespaces are
// created before anything lands in them (the stand-ins refuse otherwise, as
// the API server does), Strimzi comes from its OCI chart at the pinned
// version, each Kafka advertises the address docker reports, and the
// default MirrorMaker 2 topic pattern reaches the manifest intact. Helm 4
// is accepted.
func TestUpTraced(t *testing.T) {
	v := versions(t)
	env, state := standins(t, "STANDIN_HELM_VERSION=v4.0.1")
	runScript(t, env, "up.sh")
	lines := traceLines(t, state)
	for _, c := range []string{"source", "target"} {
		cx := "kind-kmt-" + c
		create := indexOf(lines, "kind create cluster", c+".yaml", v["KIND_NODE_IMAGE"])
		strimzi := indexOf(lines, "helm --kube-context "+cx, "upgrade --install strimzi "+v["STRIMZI_CHART"], "--version "+v["STRIMZI_VERSION"], "watchNamespaces={kafka}")
		kps := indexOf(lines, "helm --kube-context "+cx, "kube-prometheus-stack", "--version "+v["KUBE_PROMETHEUS_STACK_VERSION"])
		mesh := indexOf(lines, "helm --kube-context "+cx, "chaos-mesh/chaos-mesh", "--version "+v["CHAOS_MESH_VERSION"])
		for name, i := range map[string]int{"kind create": create, "Strimzi install": strimzi, "kube-prometheus-stack install": kps, "Chaos Mesh install": mesh} {
			if i < 0 {
				t.Fatalf("[%s] no %s in the trace:\n%s", c, name, strings.Join(lines, "\n"))
			}
		}
		for _, ns := range []string{"kafka", "strimzi", "monitoring", "chaos-mesh"} {
			i := indexOf(lines, "kubectl --context "+cx+" create namespace "+ns)
			if i < 0 || i > kps || i > strimzi || i < create {
				t.Errorf("[%s] namespace %s created at trace line %d; want after the cluster (%d) and before the Helm installs (kps %d, strimzi %d)", c, ns, i, create, kps, strimzi)
			}
		}
		if kafkaWait := indexOf(lines, "kubectl --context "+cx, "wait kafka/"+c); kafkaWait < strimzi {
			t.Errorf("[%s] waits for Kafka at line %d, before Strimzi is installed (%d)", c, kafkaWait, strimzi)
		}
	}
	if i := indexOf(lines, "helm repo add strimzi"); i >= 0 {
		t.Errorf("up.sh adds the deprecated Strimzi Helm repository: %s", lines[i])
	}
	objs := decodeAll(t, readFile(t, filepath.Join(state, "applied")))
	var kafkas, mm2 []*unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "Kafka":
			kafkas = append(kafkas, o)
		case "KafkaMirrorMaker2":
			mm2 = append(mm2, o)
		}
	}
	if len(kafkas) != 2 || len(mm2) != 1 {
		t.Fatalf("applied %d Kafka and %d KafkaMirrorMaker2, want 2 and 1", len(kafkas), len(mm2))
	}
	for _, k := range kafkas {
		want := map[string]string{"source": standinSourceIP, "target": standinTargetIP}[k.GetName()]
		ls, _, _ := unstructured.NestedSlice(k.Object, "spec", "kafka", "listeners")
		for _, l := range ls {
			brokers, _, _ := unstructured.NestedSlice(l.(map[string]any), "configuration", "brokers")
			for _, b := range brokers {
				if got := b.(map[string]any)["advertisedHost"]; got != want {
					t.Errorf("Kafka %s advertises %v, want the node address docker reports, %s", k.GetName(), got, want)
				}
			}
		}
	}
	mirrors, _, _ := unstructured.NestedSlice(mm2[0].Object, "spec", "mirrors")
	if got := mirrors[0].(map[string]any)["topicsPattern"]; got != "orders|kmt-.*" {
		t.Errorf("MirrorMaker 2 topicsPattern = %q, want the default orders|kmt-.* intact", got)
	}
	clusters, _, _ := unstructured.NestedSlice(mm2[0].Object, "spec", "clusters")
	if got := clusters[0].(map[string]any)["bootstrapServers"]; got != standinSourceIP+":32100" {
		t.Errorf("MirrorMaker 2 source bootstrap = %v, want %s:32100", got, standinSourceIP)
	}
}

// TestRunTraced runs kind/run.sh twice for one scenario against stand-in
// tools: each run uninstalls the previous release before installing (a
// Job's pod template is immutable; a finished Workflow never restarts),
// uses a fresh run id, installs the source side first, and passes each
// side the real far-side address read from docker as the WAN peer.
func TestRunTraced(t *testing.T) {
	env, state := standins(t)
	env = append(env, "SCENARIO=wan-latency")
	// What make kind-up left: both clusters, the kafka namespace.
	if err := os.WriteFile(filepath.Join(state, "clusters"), []byte("kmt-source\nkmt-target\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(state, "namespaces"), []byte("kafka\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		out := runScript(t, env, "run.sh")
		if !strings.Contains(out, "verdict: pass") {
			t.Fatalf("run %d printed no verdict:\n%s", i+1, out)
		}
	}
	lines := traceLines(t, state)
	var runs []string
	runRE := regexp.MustCompile(`--set run=(\S+)`)
	for _, c := range []struct{ side, peer string }{{"target", standinSourceIP + "/32"}, {"source", standinTargetIP + "/32"}} {
		cx := "kind-kmt-" + c.side
		var installs, uninstalls []int
		for i, l := range lines {
			if strings.HasPrefix(l, "helm --kube-context "+cx+" install kmt-wan-latency ") {
				installs = append(installs, i)
				if !strings.Contains(l, "--set role="+c.side) || !strings.Contains(l, "--set chaos.peerAddresses={"+c.peer+"}") {
					t.Errorf("[%s] install lacks role or the real peer %s: %s", c.side, c.peer, l)
				}
				if c.side == "target" {
					runs = append(runs, runRE.FindStringSubmatch(l)[1])
				}
			}
			if strings.HasPrefix(l, "helm --kube-context "+cx+" uninstall kmt-wan-latency ") {
				uninstalls = append(uninstalls, i)
			}
		}
		if len(installs) != 2 || len(uninstalls) != 2 {
			t.Fatalf("[%s] %d installs and %d uninstalls over two runs, want 2 and 2", c.side, len(installs), len(uninstalls))
		}
		for k := range installs {
			if uninstalls[k] > installs[k] || (k > 0 && uninstalls[k] < installs[k-1]) {
				t.Errorf("[%s] run %d: uninstall at line %d, install at %d: the previous release must go first", c.side, k+1, uninstalls[k], installs[k])
			}
			ns := indexOf(lines[:installs[k]], "kubectl --context "+cx+" create namespace kmt")
			if ns < 0 {
				t.Errorf("[%s] namespace kmt not created before the install", c.side)
			}
		}
	}
	if len(runs) != 2 || runs[0] == runs[1] {
		t.Errorf("run ids %v: want two different ones", runs)
	}
	// Source first, target right after: each Workflow's clock starts at its
	// install, so both are within seconds of the load's start.
	if tgt, src := indexOf(lines, "install kmt-wan-latency", "role=target"), indexOf(lines, "install kmt-wan-latency", "role=source"); src > tgt {
		t.Errorf("target installed (line %d) before source (line %d): its Workflow's clock would run ahead of the load", tgt, src)
	}
	if strings.Contains(strings.Join(lines, "\n"), "dependency build") {
		t.Errorf("run.sh runs helm dependency build: the scenario charts carry kmt-lib in one form only")
	}
}

// bash32Only are constructs macOS's bash 3.2 lacks, with a why.
var bash32Only = []struct{ re, why string }{
	{`\bwait\s+-n\b`, "wait -n is bash 4.3"},
	{`\b(mapfile|readarray)\b`, "mapfile/readarray are bash 4"},
	{`\b(declare|local|typeset)\s+-[a-zA-Z]*[An]`, "associative arrays and namerefs are bash 4"},
	{`\$\{[A-Za-z_][A-Za-z0-9_]*(\^\^|,,|\^|,)\}`, "case conversion is bash 4"},
	{`\$\{[A-Za-z_][A-Za-z0-9_]*@[QEPAaUuLK]\}`, "${var@op} is bash 4.4"},
	{`&>>`, "&>> is bash 4"},
	{`\|&`, "|& is bash 4"},
	{`\bcoproc\b`, "coproc is bash 4"},
	{`\[\[\s+-v\b`, "[[ -v is bash 4.2"},
	{`\$\{[A-Za-z_][A-Za-z0-9_]*\[-[0-9]+\]\}`, "negative array indices are bash 4.3"},
}

// TestScriptsAvoidBash4 keeps the scripts runnable by macOS's bash 3.2.
func TestScriptsAvoidBash4(t *testing.T) {
	files, _ := filepath.Glob("*.sh")
	if len(files) < 4 {
		t.Fatalf("found %v", files)
	}
	for _, f := range files {
		for i, line := range strings.Split(readFile(t, f), "\n") {
			code := line
			if j := strings.Index(code, "#"); j >= 0 && (j == 0 || code[j-1] == ' ') {
				code = code[:j]
			}
			for _, b := range bash32Only {
				if regexp.MustCompile(b.re).MatchString(code) {
					t.Errorf("%s:%d: %s (%s)", f, i+1, strings.TrimSpace(line), b.why)
				}
			}
		}
	}
	// The check itself catches what it is meant to.
	for _, bad := range []string{"wait -n \"$a\" \"$b\"", "declare -A m", "echo ${x,,}", "mapfile -t a < f"} {
		hit := false
		for _, b := range bash32Only {
			hit = hit || regexp.MustCompile(b.re).MatchString(bad)
		}
		if !hit {
			t.Errorf("the bash 3.2 check misses %q", bad)
		}
	}
}

// TestCheckHelmVersions: Helm 3 from the minimum and Helm 4 pass, others
// are refused with what to do.
func TestCheckHelmVersions(t *testing.T) {
	for _, tc := range []struct {
		v  string
		ok bool
	}{{"v3.14.0", true}, {"v3.19.2", true}, {"v4.0.1", true}, {"v3.13.3", false}, {"v2.17.0", false}} {
		env, _ := standins(t, "STANDIN_HELM_VERSION="+tc.v)
		cmd := exec.Command("bash", "-c", "source ./lib.sh && check_helm")
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if (err == nil) != tc.ok {
			t.Errorf("check_helm with helm %s: err %v, output %q; want ok=%v", tc.v, err, out, tc.ok)
		}
	}
}
