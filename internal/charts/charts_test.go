package charts

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kmt-dev/kafka-mirror-tester/chaos/mesh"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
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
)

const root = "../../charts"

// TestChartsUpToDate fails when the committed charts differ from what the
// generator writes (the stale check).
func TestChartsUpToDate(t *testing.T) {
	lib, err := ReadTree(filepath.Join(root, LibraryName))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range scenarios.Catalogue() {
		want, err := ScenarioChart(name, lib)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := ReadTree(filepath.Join(root, name))
		if d := Diff(want, got); len(d) > 0 {
			t.Errorf("charts/%s is stale (run `go run ./internal/charts/cmd/gencharts`): %s", name, strings.Join(d, ", "))
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

func values(role, run string) map[string]any {
	return map[string]any{"role": role, "run": run}
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
	cfg := &action.Configuration{
		KubeClient:   &kubefake.PrintingKubeClient{Out: &bytes.Buffer{}},
		Releases:     storage.Init(driver.NewMemory()),
		Capabilities: chartutil.DefaultCapabilities,
		Log:          func(string, ...any) {},
	}
	in := action.NewInstall(cfg)
	in.DryRun, in.ClientOnly, in.ReleaseName, in.Namespace = true, true, "kmt-test", "kmt"
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
	for _, name := range scenarios.Catalogue() {
		s, err := scenarios.Read(name)
		if err != nil {
			t.Fatal(err)
		}
		_, omitted, err := mesh.RenderPartial(s, mesh.DefaultParams())
		if err != nil {
			t.Fatal(err)
		}
		faultsIn := map[string]bool{}
		for _, f := range s.Spec.Timeline {
			if !f.Kind.Supports(scenarios.BackendKubernetes) {
				continue
			}
			c := "target"
			if (f.Kind == scenarios.BrokerKill || f.Kind == scenarios.ClusterRestart) && f.Params.Cluster == "source" {
				c = "source"
			}
			faultsIn[c] = true
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
				wantKinds := map[string]int{"ConfigMap": 2, "ServiceMonitor": 1, "Service": 1, "ServiceAccount": 1}
				if role == "source" {
					wantKinds["Deployment"] = 1
				} else {
					wantKinds["Job"], wantKinds["Role"], wantKinds["RoleBinding"], wantKinds["Pod"], wantKinds["PrometheusRule"] = 1, 1, 1, 1, 1
				}
				if faultsIn[role] {
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
		{"no peers", map[string]any{"role": "target", "run": "r1", "chaos": map[string]any{"peerAddresses": []any{}}}, "peerAddresses"},
		{"typo key", map[string]any{"role": "target", "run": "r1", "chaoss": true}, "chaoss"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := renderChart(loadChart(t, "bad-day"), tc.vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want a schema error about %s", err, tc.want)
			}
		})
	}
}

// TestChaosValuesReachTheWorkflow: peers and namespace come from values.
func TestChaosValuesReachTheWorkflow(t *testing.T) {
	vals := values("target", "r1")
	vals["chaos"] = map[string]any{"peerAddresses": []any{"10.1.2.3", "10.9.0.0/16"}, "kafkaNamespace": "kafka-x"}
	objs, _, err := renderChart(loadChart(t, "wan-partition"), vals)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "Workflow" {
			continue
		}
		b, _ := yaml.Marshal(o.Object)
		for _, want := range []string{"- 10.1.2.3\n", "- 10.9.0.0/16\n", "- kafka-x\n"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("workflow lacks %q:\n%s", want, b)
			}
		}
		return
	}
	t.Fatal("no Workflow rendered for wan-partition role=target")
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
