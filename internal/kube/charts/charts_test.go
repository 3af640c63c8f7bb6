package charts

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	kubefake "helm.sh/helm/v3/pkg/kube/fake"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	"helm.sh/helm/v3/pkg/storage"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kmt-dev/kafka-mirror-tester/chaos/mesh"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

const root = "../../../charts"

// TestChartsUpToDate fails when the committed charts differ from what the
// generator writes (the stale check).
func TestChartsUpToDate(t *testing.T) {
	lib, err := ReadTree(filepath.Join(root, LibraryName))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range scenarios.KubernetesCatalogue() {
		want, err := ScenarioChart(name, lib)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := ReadTree(filepath.Join(root, name))
		if d := Diff(want, got); len(d) > 0 {
			t.Errorf("charts/%s is stale (run `go run ./internal/kube/charts/cmd/gencharts`): %s", name, strings.Join(d, ", "))
		}
	}
}

func TestDiff(t *testing.T) {
	a := map[string][]byte{"x": []byte("1"), "y": []byte("2")}
	b := map[string][]byte{"x": []byte("1"), "y": []byte("3"), "z": nil}
	if d := Diff(a, b); strings.Join(d, ";") != "changed y;extra z" {
		t.Fatalf("Diff = %v", d)
	}
	if d := Diff(a, map[string][]byte{"x": []byte("1")}); strings.Join(d, ";") != "missing y" {
		t.Fatalf("Diff = %v", d)
	}
}

// testPeer is the far side's address the tests install with.
const testPeer = "192.0.2.1/32"

func values(role, run string) map[string]any {
	return map[string]any{"role": role, "run": run, "chaos": map[string]any{"peerAddresses": []any{testPeer}}}
}

func loadChart(t *testing.T, name string) *chart.Chart {
	t.Helper()
	c, err := loader.Load(filepath.Join(root, name))
	if err != nil {
		t.Fatalf("loading charts/%s: %v", name, err)
	}
	return c
}

// renderChart templates a chart like `helm template` (client only).
func renderChart(c *chart.Chart, vals map[string]any) ([]*unstructured.Unstructured, string, error) {
	return renderChartIn(c, vals, "kmt")
}

// renderChartIn is renderChart into namespace ns.
func renderChartIn(c *chart.Chart, vals map[string]any, ns string) ([]*unstructured.Unstructured, string, error) {
	cfg := &action.Configuration{
		KubeClient:   &kubefake.PrintingKubeClient{Out: &bytes.Buffer{}},
		Releases:     storage.Init(driver.NewMemory()),
		Capabilities: chartutil.DefaultCapabilities,
		Log:          func(string, ...any) {},
	}
	in := action.NewInstall(cfg)
	in.DryRun, in.ClientOnly, in.ReleaseName, in.Namespace = true, true, "kmt-test", ns
	in.IncludeCRDs = true
	rel, err := in.Run(c, vals)
	if err != nil {
		return nil, "", err
	}
	var objs []*unstructured.Unstructured
	manifests := rel.Manifest
	for _, h := range rel.Hooks {
		manifests += "\n---\n" + h.Manifest
	}
	for _, doc := range releaseutil.SplitManifests(manifests) {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
			return nil, "", fmt.Errorf("manifest does not parse: %v\n%s", err, doc)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
	return objs, rel.Info.Notes, nil
}

// TestLintAndTemplate lints and templates every chart for both roles and
// checks what each side gets.
func TestLintAndTemplate(t *testing.T) {
	for _, name := range scenarios.KubernetesCatalogue() {
		s, err := scenarios.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		mp := mesh.DefaultParams()
		mp.PeerAddresses, mp.MirrorAddresses = []string{testPeer}, []string{testPeer}
		wfs, omitted, err := mesh.RenderPartial(s, mp)
		if err != nil {
			t.Fatal(err)
		}
		// Sides where the agent pauses a process get pod exec in kafka.
		execIn := map[string]int{}
		for _, f := range s.Spec.Timeline {
			switch f.Kind {
			case scenarios.BrokerPause:
				execIn[f.Params.Cluster] = 1
			case scenarios.MirrorPause, scenarios.TopicPurge:
				execIn["target"] = 1
			}
		}
		for _, role := range []string{"source", "target"} {
			t.Run(name+"/"+role, func(t *testing.T) {
				vals := values(role, "r1")
				l := lint.All(filepath.Join(root, name), vals, "kmt", false)
				for _, m := range l.Messages {
					if m.Severity >= support.WarningSev {
						t.Errorf("lint: %s", m)
					}
				}
				objs, notes, err := renderChart(loadChart(t, name), vals)
				if err != nil {
					t.Fatal(err)
				}
				kinds := map[string]int{}
				for _, o := range objs {
					kinds[o.GetKind()]++
					if o.GetLabels()["kmt.dev/run"] != "r1" || o.GetLabels()["kmt.dev/scenario"] != name {
						t.Errorf("%s %s lacks kmt.dev/run=r1 / kmt.dev/scenario labels: %v", o.GetKind(), o.GetName(), o.GetLabels())
					}
					checkPodSecurity(t, o)
				}
				// Both sides: run marker, scenario and dashboard ConfigMaps; the
				// fault agent (SA, Role, RoleBinding, Job, Service, monitor);
				// the side's workload. No Deployment: nothing restarts the load.
				wantKinds := map[string]int{"ConfigMap": 3, "ServiceMonitor": 2, "Service": 2, "ServiceAccount": 2, "Job": 2, "Role": 1 + execIn[role], "RoleBinding": 1 + execIn[role]}
				if role == "target" {
					wantKinds["Role"]++
					wantKinds["RoleBinding"]++
					wantKinds["Pod"], wantKinds["PrometheusRule"] = 1, 1
				}
				if len(wfs[mesh.Cluster(role)]) > 0 {
					wantKinds["Workflow"] = 1
				}
				for k, n := range wantKinds {
					if kinds[k] != n {
						t.Errorf("%d %s, want %d (all: %v)", kinds[k], k, n, kinds)
					}
				}
				for k := range kinds {
					if _, ok := wantKinds[k]; !ok {
						t.Errorf("unexpected %d %s", kinds[k], k)
					}
				}
				if len(omitted) > 0 && !strings.Contains(notes, "NOTE:") {
					t.Errorf("NOTES do not mention the omitted faults %v:\n%s", omitted, notes)
				}
			})
		}
	}
}

// checkPodSecurity: every pod spec runs non-root with a read-only root.
func checkPodSecurity(t *testing.T, o *unstructured.Unstructured) {
	t.Helper()
	var path []string
	switch o.GetKind() {
	case "Deployment", "Job":
		path = []string{"spec", "template", "spec"}
	case "Pod":
		path = []string{"spec"}
	default:
		return
	}
	spec, _, _ := unstructured.NestedMap(o.Object, path...)
	if nonRoot, _, _ := unstructured.NestedBool(spec, "securityContext", "runAsNonRoot"); !nonRoot {
		t.Errorf("%s %s: pod not runAsNonRoot", o.GetKind(), o.GetName())
	}
	cs, _, _ := unstructured.NestedSlice(spec, "containers")
	for _, c := range cs {
		ro, _, _ := unstructured.NestedBool(c.(map[string]any), "securityContext", "readOnlyRootFilesystem")
		esc, found, _ := unstructured.NestedBool(c.(map[string]any), "securityContext", "allowPrivilegeEscalation")
		if !ro || !found || esc {
			t.Errorf("%s %s: container without readOnlyRootFilesystem / with privilege escalation", o.GetKind(), o.GetName())
		}
	}
}

// TestValidatorRBACIsLimited: the validator may only create ConfigMaps and
// read/update its own report ConfigMap, which is the one its args name.
func TestValidatorRBACIsLimited(t *testing.T) {
	objs, _, err := renderChart(loadChart(t, "baseline"), values("target", "r7"))
	if err != nil {
		t.Fatal(err)
	}
	var role, job *unstructured.Unstructured
	for _, o := range objs {
		if !strings.HasSuffix(o.GetName(), "-validator") {
			continue
		}
		switch o.GetKind() {
		case "Role":
			role = o
		case "Job":
			job = o
		}
	}
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	report := "kmt-baseline-report-r7"
	for _, r := range rules {
		r := r.(map[string]any)
		verbs := fmt.Sprint(r["verbs"])
		names := fmt.Sprint(r["resourceNames"])
		if fmt.Sprint(r["resources"]) != "[configmaps]" {
			t.Errorf("rule on %v: the validator needs ConfigMaps only", r["resources"])
		}
		if verbs != "[create]" && names != "["+report+"]" {
			t.Errorf("rule %v is not limited to the report ConfigMap %s", r, report)
		}
	}
	cs, _, _ := unstructured.NestedSlice(job.Object, "spec", "template", "spec", "containers")
	args := fmt.Sprint(cs[0].(map[string]any)["args"])
	if !strings.Contains(args, "--report-configmap "+report) || !strings.Contains(args, "validate --scenario /etc/kmt/scenario.yaml") {
		t.Errorf("validator args %s do not name the report ConfigMap %s", args, report)
	}
}

// TestValuesSchemaRejects: the values schema catches bad input.
func TestValuesSchemaRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"bad role", values("middle", "r1"), "role"},
		{"run with spaces", values("source", "my run"), "run"},
		{"no peers for a WAN fault", map[string]any{"role": "target", "run": "r1", "chaos": map[string]any{"peerAddresses": []any{}}}, "chaos.peerAddresses is empty"},
		{"no run id", map[string]any{"role": "target", "run": ""}, "run is empty"},
		{"selector not key=value", map[string]any{"role": "source", "run": "r1", "chaos": map[string]any{"peerAddresses": []any{testPeer}}, "targets": map[string]any{"source": map[string]any{"brokerSelector": "app in (kafka)"}}}, "brokerSelector"},
		{"typo key", map[string]any{"role": "target", "run": "r1", "chaoss": true}, "chaoss"},
		// bad-day's mirror-kill is a container-kill: without the container's
		// name the install is refused, naming the value (no graceful pod-kill
		// in its place).
		{"no mirror container", map[string]any{"role": "target", "run": "r1", "chaos": map[string]any{"peerAddresses": []any{testPeer}}, "targets": map[string]any{"mirror": map[string]any{"container": ""}}}, "/targets/mirror/container"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := renderChart(loadChart(t, "bad-day"), tc.vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a schema error about %s", err, tc.want)
			}
		})
	}
}

// TestChaosValuesReachTheWorkflow: peers, namespaces, selector labels, pod
// names and the mirror container come from values, so a real cluster's
// names (not kind's) are what the faults select.
func TestChaosValuesReachTheWorkflow(t *testing.T) {
	for _, tc := range []struct {
		scenario, role string
		want           []string
	}{
		{"wan-partition", "target", []string{"- 10.1.2.3\n", "- 10.9.0.0/16\n", "- kafka-x\n", "app: my-mirror\n"}},
		{"wan-bandwidth", "source", []string{"- 10.1.2.3\n", "- kafka-src\n", "app: my-brokers\n"}},
		{"source-broker-kill", "source", []string{"- kafka-src\n", "app: my-brokers\n"}},
		{"bad-day", "target", []string{"- kafka-x\n", "app: my-mirror\n"}},
		// mirror-kill: a SIGKILL of the named container, not a pod-kill.
		{"mirror-hard-kill", "target", []string{"- kafka-x\n", "app: my-mirror\n", "action: container-kill\n", "- replicator\n"}},
	} {
		vals := values(tc.role, "r1")
		vals["chaos"] = map[string]any{"peerAddresses": []any{"10.1.2.3", "10.9.0.0/16"}}
		vals["targets"] = map[string]any{
			"source": map[string]any{"namespace": "kafka-src", "brokerSelector": "app=my-brokers", "brokerPodPrefix": "src-kafka-"},
			"mirror": map[string]any{"namespace": "kafka-x", "selector": "app=my-mirror", "container": "replicator"},
		}
		objs, _, err := renderChart(loadChart(t, tc.scenario), vals)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, o := range objs {
			if o.GetKind() != "Workflow" {
				continue
			}
			found = true
			b, _ := yaml.Marshal(o.Object)
			for _, w := range tc.want {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s role=%s: workflow lacks %q:\n%s", tc.scenario, tc.role, w, b)
				}
			}
			for _, kindDefault := range []string{"strimzi.io/", "172.18.", "- kafka\n"} {
				if strings.Contains(string(b), kindDefault) {
					t.Errorf("%s role=%s: workflow still holds kind's default %q although values override it", tc.scenario, tc.role, kindDefault)
				}
			}
		}
		if !found {
			t.Errorf("no Workflow rendered for %s role=%s", tc.scenario, tc.role)
		}
	}
}

// TestAgentRBACIsLimited: the fault agent reads Chaos Mesh objects in its
// own namespace, and may exec into pods only in the namespace of what its
// scenario pauses (none for a scenario that pauses nothing).
func TestAgentRBACIsLimited(t *testing.T) {
	for _, tc := range []struct {
		scenario, role string
		execNS         []string
	}{
		{"baseline", "target", nil},
		{"baseline", "source", nil},
		{"mirror-pause", "target", []string{"kafka"}},
		{"mirror-pause", "source", nil},
		{"source-broker-pause", "source", []string{"kafka"}},
		{"retention-purge", "target", []string{"kafka"}},
		{"source-partitions-added", "source", nil},
	} {
		objs, _, err := renderChart(loadChart(t, tc.scenario), values(tc.role, "r1"))
		if err != nil {
			t.Fatal(err)
		}
		var exec []string
		for _, o := range objs {
			if o.GetKind() != "Role" {
				continue
			}
			rules, _, _ := unstructured.NestedSlice(o.Object, "rules")
			for _, r := range rules {
				r := r.(map[string]any)
				verbs, res := fmt.Sprint(r["verbs"]), fmt.Sprint(r["resources"])
				switch {
				case strings.HasSuffix(o.GetName(), "-agent"):
					if verbs != "[get list watch]" || fmt.Sprint(r["apiGroups"]) != "[chaos-mesh.org]" {
						t.Errorf("%s/%s: agent rule %v is more than reading Chaos Mesh objects", tc.scenario, tc.role, r)
					}
				case o.GetLabels()["kmt.dev/fault-agent"] == "exec":
					if res == "[pods/exec]" && verbs == "[create]" {
						exec = append(exec, o.GetNamespace())
					} else if res != "[pods]" || verbs != "[get list]" {
						t.Errorf("%s/%s: exec role rule %v", tc.scenario, tc.role, r)
					}
				}
			}
		}
		if fmt.Sprint(exec) != fmt.Sprint(tc.execNS) {
			t.Errorf("%s role=%s: pod exec granted in %v, want %v", tc.scenario, tc.role, exec, tc.execNS)
		}
	}
}

// TestJobDeadlinesCoverTheValidator: the validator and agent Jobs outlive
// the validator's worst case (the load never finishing), so a report is
// always written; the loadgen is a Job that never retries.
func TestJobDeadlinesCoverTheValidator(t *testing.T) {
	for _, name := range scenarios.KubernetesCatalogue() {
		s, err := scenarios.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		worst := kube.ValidatorWorstCase(s)
		for _, role := range []string{"source", "target"} {
			objs, _, err := renderChart(loadChart(t, name), values(role, "r1"))
			if err != nil {
				t.Fatal(err)
			}
			for _, o := range objs {
				if o.GetKind() != "Job" {
					continue
				}
				dv, _, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "activeDeadlineSeconds")
				d := int64(-1)
				switch n := dv.(type) {
				case int64:
					d = n
				case float64:
					d = int64(n)
				}
				if time.Duration(d)*time.Second <= worst {
					t.Errorf("%s %s: activeDeadlineSeconds %d <= the validator's worst case %s", name, o.GetName(), d, worst)
				}
				if b, _, _ := unstructured.NestedFieldNoCopy(o.Object, "spec", "backoffLimit"); fmt.Sprint(b) != "0" {
					t.Errorf("%s %s: backoffLimit %v: a retried pod would redo its work from the start", name, o.GetName(), b)
				}
			}
		}
	}
}

// The validator Job reaches a Prometheus behind auth: token file, CA from a
// Secret, insecure flag; and none of them when unset.
func TestPrometheusAuthValuesReachTheValidator(t *testing.T) {
	jobText := func(prom map[string]any) string {
		vals := values("target", "r1")
		vals["prometheus"] = prom
		objs, _, err := renderChart(loadChart(t, "baseline"), vals)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if o.GetKind() == "Job" && strings.HasSuffix(o.GetName(), "-validator") {
				b, _ := yaml.Marshal(o.Object)
				return string(b)
			}
		}
		t.Fatal("no validator Job rendered for baseline role=target")
		return ""
	}
	plain := jobText(map[string]any{"url": "http://p:9090"})
	for _, absent := range []string{"--prometheus-token-file", "--prometheus-ca-file", "--prometheus-insecure", "prometheus-ca"} {
		if strings.Contains(plain, absent) {
			t.Errorf("validator Job has %q although no auth value is set", absent)
		}
	}
	auth := jobText(map[string]any{"url": "https://p:9091", "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token", "caSecret": "prom-ca", "insecureSkipVerify": true})
	for _, want := range []string{"- --prometheus-token-file\n", "- /var/run/secrets/kubernetes.io/serviceaccount/token\n", "- --prometheus-ca-file\n", "- /etc/kmt-prometheus-ca/ca.crt\n", "- --prometheus-insecure\n", "secretName: prom-ca\n", "mountPath: /etc/kmt-prometheus-ca\n"} {
		if !strings.Contains(auth, want) {
			t.Errorf("validator Job lacks %q:\n%s", want, auth)
		}
	}
}
