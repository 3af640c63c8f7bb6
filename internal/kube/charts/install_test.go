package charts

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/testenv"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// kinds every chart may create, to look for leftovers after uninstall.
var installedKinds = []schema.GroupVersionKind{
	{Version: "v1", Kind: "ConfigMap"},
	{Version: "v1", Kind: "Service"},
	{Version: "v1", Kind: "ServiceAccount"},
	{Version: "v1", Kind: "Pod"},
	{Group: "apps", Version: "v1", Kind: "Deployment"},
	{Group: "batch", Version: "v1", Kind: "Job"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role"},
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"},
	{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"},
	{Group: "monitoring.coreos.com", Version: "v1", Kind: "PrometheusRule"},
	{Group: "chaos-mesh.org", Version: "v1alpha1", Kind: "Workflow"},
}

// TestInstallOnRealAPIServer installs every scenario chart, both roles,
// with the Helm SDK into a real kube-apiserver carrying the Chaos Mesh and
// prometheus-operator CRDs (so CRD schemas validate every object), checks
// each rendered object exists, uninstalls, and checks nothing labelled
// with the run is left.
func TestInstallOnRealAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver (built on first use)")
	}
	// The fault agent's exec Roles land in kind's Kafka namespace.
	env, helmIn := helmEnv(t, "kafka")
	ctx := context.Background()
	for i, name := range scenarios.KubernetesCatalogue() {
		for _, role := range []string{"source", "target"} {
			ns := name + "-" + role
			run := "it" + string(rune('a'+i%26))
			if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				t.Fatal(err)
			}
			cfg := helmIn(ns)
			c := loadChart(t, name)
			vals := values(role, run)
			want, _, err := renderChartIn(c, vals, ns)
			if err != nil {
				t.Fatal(err)
			}
			in := action.NewInstall(cfg)
			in.ReleaseName, in.Namespace, in.Timeout = "kmt-"+name, ns, time.Minute
			if _, err := in.Run(c, vals); err != nil {
				t.Errorf("%s role=%s: helm install rejected: %v", name, role, err)
				continue
			}
			for _, o := range want {
				if o.GetKind() == "Pod" { // the helm test hook is created by `helm test` only
					continue
				}
				got := &unstructured.Unstructured{}
				got.SetGroupVersionKind(o.GroupVersionKind())
				ons := o.GetNamespace() // the agent's exec Roles live in kafka
				if ons == "" {
					ons = ns
				}
				if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ons, Name: o.GetName()}, got); err != nil {
					t.Errorf("%s role=%s: %s %s not found after install: %v", name, role, o.GetKind(), o.GetName(), err)
				}
			}
			un := action.NewUninstall(cfg)
			if _, err := un.Run("kmt-" + name); err != nil {
				t.Errorf("%s role=%s: helm uninstall: %v", name, role, err)
			}
			for _, gvk := range installedKinds {
				l := &unstructured.UnstructuredList{}
				l.SetGroupVersionKind(gvk)
				if err := env.Client.List(ctx, l, client.InNamespace(ns), client.MatchingLabels{"kmt.dev/run": run}); err != nil {
					t.Fatalf("listing %s: %v", gvk.Kind, err)
				}
				for _, it := range l.Items {
					// The run marker stays on purpose: it refuses the run id later.
					if it.GetDeletionTimestamp() == nil && it.GetName() != "kmt-run-"+run {
						t.Errorf("%s role=%s: %s %s left after uninstall", name, role, gvk.Kind, it.GetName())
					}
				}
				for _, lns := range []string{ns, "kafka"} {
					l := &unstructured.UnstructuredList{}
					l.SetGroupVersionKind(schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role"})
					if err := env.Client.List(ctx, l, client.InNamespace(lns), client.MatchingLabels{"kmt.dev/run": run}); err != nil {
						t.Fatal(err)
					}
					if len(l.Items) > 0 {
						t.Errorf("%s role=%s: %d Roles left in %s after uninstall", name, role, len(l.Items), lns)
					}
				}
			}
		}
	}
}

// TestSecondInstallOnRealAPIServer is what a second `make kind-run` of one
// scenario does: uninstall the finished run, install the next with a fresh
// run id (works: nothing of the old release is upgraded in place), and an
// install reusing a run id is refused by the chart itself.
func TestSecondInstallOnRealAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver (built on first use)")
	}
	_, helmIn := helmEnv(t, "kmt", "kafka")
	const scenario = "mirror-pause" // a Job, a kept marker and exec Roles in kafka
	ns := "kmt"
	cfg := helmIn(ns)
	install := func(run string) error {
		in := action.NewInstall(cfg)
		in.ReleaseName, in.Namespace, in.Timeout = "kmt-"+scenario, ns, time.Minute
		_, err := in.Run(loadChart(t, scenario), values("target", run))
		return err
	}
	uninstall := func() {
		if _, err := action.NewUninstall(cfg).Run("kmt-" + scenario); err != nil {
			t.Fatalf("helm uninstall: %v", err)
		}
	}
	if err := install("first-run"); err != nil {
		t.Fatalf("first install: %v", err)
	}
	uninstall()
	if err := install("second-run"); err != nil {
		t.Fatalf("second install of %s with a fresh run id: %v", scenario, err)
	}
	uninstall()
	err := install("first-run")
	if err == nil || !strings.Contains(err.Error(), `run id "first-run" was used before`) {
		t.Fatalf("install reusing run id first-run: err = %v, want the chart's refusal", err)
	}
}

// helmEnv starts a real API server with the CRDs and namespaces nss, and
// returns it with a maker of Helm configurations for one namespace.
func helmEnv(t *testing.T, nss ...string) (*testenv.Env, func(ns string) *action.Configuration) {
	t.Helper()
	env := testenv.Start(t, testenv.Options{CRDs: true})
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.Kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, n := range nss {
		if err := env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil {
			t.Fatal(err)
		}
	}
	return env, func(ns string) *action.Configuration {
		flags := genericclioptions.NewConfigFlags(false)
		flags.KubeConfig = &kubeconfig
		flags.Namespace = &ns
		cfg := new(action.Configuration)
		if err := cfg.Init(flags, ns, "secret", func(string, ...any) {}); err != nil {
			t.Fatal(err)
		}
		return cfg
	}
}
