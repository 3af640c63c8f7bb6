package clusterrun

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestValidateRunID(t *testing.T) {
	for _, tc := range []struct {
		run string
		ok  bool
	}{
		{"20261125-050000-abcdef", true},
		{"r1", true},
		{"", false},
		{"Upper", false},
		{"a,b", false},                   // would inject into a selector
		{"x in (y)", false},              // ditto
		{"-lead", false},                 // label values cannot start with -
		{strings.Repeat("a", 41), false}, // release names must stay short
	} {
		err := ValidateRunID(tc.run)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateRunID(%q) = %v, want ok=%v", tc.run, err, tc.ok)
		}
	}
	if err := ValidateRunID(NewRunID()); err != nil {
		t.Errorf("NewRunID is not valid: %v", err)
	}
}

func TestReleaseName(t *testing.T) {
	for _, tc := range []struct{ scenario, run, want string }{
		{"baseline", "r1", "kmt-baseline-r1"},
		{"WAN_latency", "r1", "kmt-wan-latency-r1"},
		{strings.Repeat("s", 60), "r1", "kmt-" + strings.Repeat("s", 49)},
		{strings.Repeat("s", 48), "r1", "kmt-" + strings.Repeat("s", 48)}, // cut at '-', trailing '-' trimmed
	} {
		got := releaseName(tc.scenario, tc.run)
		if got != tc.want || len(got) > 53 {
			t.Errorf("releaseName(%q, %q) = %q (%d chars), want %q", tc.scenario, tc.run, got, len(got), tc.want)
		}
	}
}

func labelled(u *unstructured.Unstructured, k, v string) *unstructured.Unstructured {
	u.SetAPIVersion("rbac.authorization.k8s.io/v1")
	u.SetLabels(map[string]string{k: v})
	return u
}

func TestChaosNamespaces(t *testing.T) {
	obj := func(kind string, ns string, spec map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
		u.SetAPIVersion("chaos-mesh.org/v1alpha1")
		if kind == "ConfigMap" {
			u.SetAPIVersion("v1")
		}
		u.SetKind(kind)
		u.SetName("x")
		u.SetNamespace(ns)
		return u
	}
	for _, tc := range []struct {
		name string
		objs []*unstructured.Unstructured
		want []string
	}{
		{"no chaos", []*unstructured.Unstructured{obj("ConfigMap", "a", map[string]any{"selector": map[string]any{"namespaces": []any{"z"}}})}, nil},
		{"own namespace, default", []*unstructured.Unstructured{obj("PodChaos", "", map[string]any{"selector": map[string]any{}})}, []string{"def"}},
		{"own namespace and selector", []*unstructured.Unstructured{obj("PodChaos", "a", map[string]any{"selector": map[string]any{"namespaces": []any{"kafka"}}})}, []string{"a", "kafka"}},
		{"networkchaos target selector", []*unstructured.Unstructured{obj("NetworkChaos", "a", map[string]any{
			"selector": map[string]any{"namespaces": []any{"a"}},
			"target":   map[string]any{"selector": map[string]any{"namespaces": []any{"peer"}}},
		})}, []string{"a", "peer"}},
		{"workflow templates", []*unstructured.Unstructured{obj("Workflow", "w", map[string]any{
			"templates": []any{map[string]any{"podChaos": map[string]any{"selector": map[string]any{"namespaces": []any{"deep"}}}}},
		})}, []string{"deep", "w"}},
		{"namespaces outside a selector do not count", []*unstructured.Unstructured{obj("PodChaos", "a", map[string]any{"namespaces": []any{"nope"}})}, []string{"a"}},
		// The fault agent's pod exec (process pause) aims at its Role's
		// namespace; other Roles do not.
		{"fault agent exec role", []*unstructured.Unstructured{labelled(obj("Role", "kafka", nil), LabelFaultAgent, "exec"), labelled(obj("Role", "other", nil), "app", "x")}, []string{"kafka"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for ns := range chaosNamespaces(tc.objs, "def") {
				got = append(got, ns)
			}
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Fatalf("chaosNamespaces = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestLoadSide(t *testing.T) {
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := `apiVersion: v1
kind: Config
clusters:
- name: a
  cluster: {server: "https://127.0.0.1:6443"}
- name: b
  cluster: {server: "https://127.0.0.1:7443"}
users:
- name: u
  user: {token: t}
contexts:
- name: kind-kmt-source
  context: {cluster: a, user: u, namespace: kmt}
- name: kind-kmt-target
  context: {cluster: b, user: u}
current-context: kind-kmt-source
`
	if err := os.WriteFile(kc, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, context, ns string
		role              Role
		wantHost, wantNS  string
		wantErr           string
	}{
		{"current context and its namespace", "", "", RoleSource, "https://127.0.0.1:6443", "kmt", ""},
		{"named context", "kind-kmt-target", "", RoleTarget, "https://127.0.0.1:7443", "default", ""},
		{"explicit namespace wins", "kind-kmt-target", "other", RoleTarget, "https://127.0.0.1:7443", "other", ""},
		{"unknown context lists known ones", "kind-nope", "", RoleTarget, "", "", "known contexts: kind-kmt-source, kind-kmt-target"},
		{"bad role", "", "", Role("middle"), "", "", "must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := LoadSide(kc, tc.context, tc.ns, tc.role)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Config.Host != tc.wantHost || s.Namespace != tc.wantNS || s.Role != tc.role {
				t.Fatalf("side = host %s ns %s role %s; want %s %s %s", s.Config.Host, s.Namespace, s.Role, tc.wantHost, tc.wantNS, tc.role)
			}
		})
	}
}

func TestLoadChartResolvesFileDependencies(t *testing.T) {
	ch, err := LoadChart("testdata/charts/scenario")
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Dependencies()) != 1 || ch.Dependencies()[0].Name() != "kmt-lib-test" {
		t.Fatalf("dependencies = %v, want kmt-lib-test loaded from file://../kmt-lib-test", ch.Dependencies())
	}
	// A file:// dependency that does not exist is an error naming it.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Chart.yaml"), []byte("apiVersion: v2\nname: x\nversion: 0.1.0\ndependencies:\n- name: gone\n  version: 0.1.0\n  repository: file://../gone\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadChart(dir); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Fatalf("LoadChart with a missing dependency: err = %v", err)
	}
}

func TestProgressLine(t *testing.T) {
	p := Progress{Phase: "fault:wan", Counts: map[string]float64{"received": 10, "lost": 0},
		Chaos: []ChaosState{{Cluster: RoleTarget, Kind: "NetworkChaos", Name: "n", Active: true}, {Cluster: RoleSource, Kind: "PodChaos", Name: "p"}}}
	got := p.Line()
	for _, want := range []string{"phase=fault:wan", "lost=0 received=10", "faults=1(target:NetworkChaos/n)"} {
		if !strings.Contains(got, want) {
			t.Errorf("Line() = %q, missing %q", got, want)
		}
	}
}
