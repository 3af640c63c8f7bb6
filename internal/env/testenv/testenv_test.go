package testenv

import (
	"context"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestStagingModules(t *testing.T) {
	mod := `module k8s.io/kubernetes

require (
	k8s.io/api v0.0.0
	github.com/x/y v1.0.0
)

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go
	github.com/x/y => github.com/x/y v1.0.1
)
`
	got := stagingModules([]byte(mod))
	want := []string{"k8s.io/api", "k8s.io/client-go"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("stagingModules = %v, want %v", got, want)
	}
}

func TestThrowawayGoMod(t *testing.T) {
	for _, tc := range []struct {
		version, want, wantErr string
	}{
		{"v1.37.2", "k8s.io/api => k8s.io/api v0.37.2", ""},
		{"v1.9.0", "k8s.io/api => k8s.io/api v0.9.0", ""},
		{"v2.0.0", "", "not of the form"},
		{"1.37", "", "not of the form"},
	} {
		got, err := throwawayGoMod(tc.version, []string{"k8s.io/api"})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want %q", tc.version, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !strings.Contains(got, tc.want) || !strings.Contains(got, "require k8s.io/kubernetes "+tc.version) {
			t.Errorf("%s: go.mod =\n%s\nerr %v; want it to contain %q", tc.version, got, err, tc.want)
		}
	}
}

func TestAssetsDirHonoursOverride(t *testing.T) {
	d := t.TempDir()
	t.Setenv(EnvCacheDir, d)
	got, err := AssetsDir()
	if err != nil || got != d+"/k8s-"+KubernetesVersion {
		t.Fatalf("AssetsDir = %q, %v", got, err)
	}
}

// TestAPIServerEnforcesCRDSchemas starts the real API server with the CRDs
// and checks that it is the CRD schema, not kmt, that rejects a bad enum.
func TestAPIServerEnforcesCRDSchemas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver (and builds it on first use)")
	}
	e := Start(t, Options{CRDs: true})
	ctx := context.Background()
	if len(e.CRDs) < 20 {
		t.Fatalf("installed %d CRDs, want the Chaos Mesh and prometheus-operator sets", len(e.CRDs))
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kmt-testenv"}}
	if err := e.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	podChaos := func(action string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "chaos-mesh.org/v1alpha1",
			"kind":       "PodChaos",
			"metadata":   map[string]any{"name": "pc-" + action, "namespace": ns.Name},
			"spec": map[string]any{
				"action":   action,
				"mode":     "one",
				"selector": map[string]any{"namespaces": []any{"kafka"}},
			},
		}}
		return u
	}
	if err := e.Client.Create(ctx, podChaos("pod-kill")); err != nil {
		t.Fatalf("a valid PodChaos was rejected: %v", err)
	}
	err := e.Client.Create(ctx, podChaos("explode"))
	if err == nil || !strings.Contains(err.Error(), "action") {
		t.Fatalf("a PodChaos with action explode was accepted (err %v): CRD schema validation is not in force", err)
	}
	if _, err := os.Stat(e.AssetsDir + "/" + APIServerBinary); err != nil {
		t.Fatal(err)
	}
}
