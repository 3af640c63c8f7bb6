package clusterrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/testenv"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// One real kube-apiserver (with the Chaos Mesh and prometheus-operator
// CRDs) for the package; two namespaces stand in for the two clusters.
var api = &testenv.Shared{Options: testenv.Options{CRDs: true, Logger: quietLogger()}}

func TestMain(m *testing.M) { api.Main(m) }

func apiServer(t *testing.T) *testenv.Env { t.Helper(); return api.Get(t) }

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// namespace creates a fresh namespace, opted in to chaos or not.
func namespace(t *testing.T, e *testenv.Env, prefix string, chaosAllowed bool) string {
	t.Helper()
	var labels map[string]string
	if chaosAllowed {
		labels = map[string]string{LabelChaos: ChaosAllowed}
	}
	return e.Namespace(t, prefix, labels)
}

func sides(e *testenv.Env, srcNS, tgtNS string) (Side, Side) {
	return Side{Role: RoleSource, Context: "kind-kmt-source", Namespace: srcNS, Config: e.Config},
		Side{Role: RoleTarget, Context: "kind-kmt-target", Namespace: tgtNS, Config: e.Config}
}

func newRunner(t *testing.T, e *testenv.Env, srcNS, tgtNS, run string, values map[string]any) *Runner {
	t.Helper()
	src, tgt := sides(e, srcNS, tgtNS)
	r, err := New(Options{Source: src, Target: tgt, Chart: "testdata/charts/scenario", Scenario: "baseline", RunID: run,
		Values: values, PollInterval: 50 * time.Millisecond, Timeout: time.Minute, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func getU(ctx context.Context, c client.Client, ref ObjectRef) error {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(ref.APIVersion)
	u.SetKind(ref.Kind)
	return c.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, u)
}

// writeConfigMap plays the validator: a ConfigMap of the run with one key.
func writeConfigMap(t *testing.T, c client.Client, ns, name, run, key, value string) {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{
		LabelManagedBy: ManagedByKmt, LabelRun: run, LabelScenario: "baseline", LabelCluster: "target"}},
		Data: map[string]string{key: value}}
	ctx := context.Background()
	if err := c.Create(ctx, cm); apierrors.IsAlreadyExists(err) {
		err = c.Update(ctx, cm)
		if err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
}

func TestRunLifecycleOnRealAPIServer(t *testing.T) {
	e := apiServer(t)
	ctx := context.Background()
	srcNS := namespace(t, e, "src", true)
	tgtNS := namespace(t, e, "tgt", true)
	const run = "run-lifecycle"
	r := newRunner(t, e, srcNS, tgtNS, run, nil)

	// Plan: exactly the chart's objects per side, nothing written yet.
	p, err := r.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.Err() != nil {
		t.Fatalf("plan refused in opted-in namespaces: %v", p.Err())
	}
	var out strings.Builder
	p.Write(&out)
	rel := r.Release()
	want := map[Role][]string{
		RoleSource: {"ConfigMap/" + rel + "-scenario", "ServiceAccount/" + rel, "Deployment/" + rel + "-loadgen", "PodChaos/" + rel + "-broker-kill"},
		RoleTarget: {"ConfigMap/" + rel + "-scenario", "ServiceAccount/" + rel, "Job/" + rel + "-validator", "Service/" + rel + "-metrics", "Workflow/" + rel + "-timeline"},
	}
	for _, sp := range p.Sides {
		var got []string
		for _, c := range sp.Create {
			got = append(got, c.Kind+"/"+c.Name)
			if err := getU(ctx, e.Client, c); !apierrors.IsNotFound(err) {
				t.Errorf("Plan wrote %s (get: %v)", c, err)
			}
		}
		sort.Strings(got) // Helm orders by install order, not by file
		w := append([]string(nil), want[sp.Side.Role]...)
		sort.Strings(w)
		if strings.Join(got, ",") != strings.Join(w, ",") {
			t.Errorf("%s plan creates %v, want %v", sp.Side.Role, got, want[sp.Side.Role])
		}
		if len(sp.Chaos) != 1 {
			t.Errorf("%s plan chaos = %v, want 1 object", sp.Side.Role, sp.Chaos)
		}
	}
	for _, s := range []string{"[FAULT]", "sh.helm.release.v1." + rel + ".v1", "kmt abort --run " + run, "touch   source Namespace/" + srcNS} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("printed plan lacks %q:\n%s", s, out.String())
		}
	}

	if err := r.Install(ctx); err != nil {
		t.Fatal(err)
	}
	// Everything in the plan exists now, with the run label.
	for _, sp := range p.Sides {
		for _, c := range sp.Create {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion(c.APIVersion)
			u.SetKind(c.Kind)
			if err := e.Client.Get(ctx, client.ObjectKey{Namespace: c.Namespace, Name: c.Name}, u); err != nil {
				t.Fatalf("after Install, %s: %v", c, err)
			}
			if u.GetLabels()[LabelRun] != run {
				t.Errorf("%s labels %v lack %s=%s", c, u.GetLabels(), LabelRun, run)
			}
		}
	}
	if _, err := r.Fetch(ctx); !errors.Is(err, ErrNoReport) {
		t.Fatalf("Fetch before the validator wrote = %v, want ErrNoReport", err)
	}

	// Mid-fault: the PodChaos is injected (as Chaos Mesh records it) and
	// the Workflow has spawned a child without kmt's labels.
	pc := &unstructured.Unstructured{}
	pc.SetGroupVersionKind(schema.GroupVersionKind{Group: ChaosGroup, Version: "v1alpha1", Kind: "PodChaos"})
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: srcNS, Name: rel + "-broker-kill"}, pc); err != nil {
		t.Fatal(err)
	}
	_ = unstructured.SetNestedField(pc.Object, "Run", "status", "experiment", "desiredPhase")
	// Chaos Mesh's CRDs have no status subresource: status is written
	// with the object, as the controller does.
	if err := e.Client.Update(ctx, pc); err != nil {
		t.Fatalf("setting PodChaos status: %v", err)
	}
	child := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos",
		"metadata": map[string]any{"name": "wan-latency-x1", "namespace": tgtNS,
			"labels": map[string]any{chaosWorkflowLabel: rel + "-timeline"}},
		"spec": map[string]any{"action": "delay", "mode": "all", "selector": map[string]any{"namespaces": []any{tgtNS}}, "delay": map[string]any{"latency": "80ms"}},
	}}
	if err := e.Client.Create(ctx, child); err != nil {
		t.Fatalf("creating a workflow child: %v", err)
	}
	// Something that is not ours, in the same namespace, must survive.
	bystander := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "bystander", Namespace: tgtNS, Labels: map[string]string{LabelRun: "other-run", LabelManagedBy: ManagedByKmt}}}
	if err := e.Client.Create(ctx, bystander); err != nil {
		t.Fatal(err)
	}

	look, err := r.Look(ctx)
	if err != nil {
		t.Fatal(err)
	}
	active := 0
	for _, c := range look.Chaos {
		if c.Active {
			active++
		}
	}
	if active != 2 || look.Done { // PodChaos Run + Workflow not accomplished
		t.Fatalf("Look = %+v, want 2 active faults and not done", look)
	}

	// Follow: phases from the progress ConfigMap, then the verdict.
	var mu sync.Mutex
	var phases []string
	followCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	type result struct {
		rep *Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := r.Follow(followCtx, func(p Progress) {
			mu.Lock()
			phases = append(phases, p.Phase)
			mu.Unlock()
		})
		done <- result{rep, err}
	}()
	waitFor := func(phase string) {
		t.Helper()
		for {
			mu.Lock()
			seen := len(phases) > 0 && phases[len(phases)-1] == phase
			mu.Unlock()
			if seen {
				return
			}
			select {
			case <-followCtx.Done():
				t.Fatalf("Follow never reported phase %s (saw %v)", phase, phases)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	writeConfigMap(t, e.Client, tgtNS, "kmt-progress", run, DataProgress, `{"phase":"steady","counts":{"received":10,"lost":0}}`)
	waitFor("steady")
	writeConfigMap(t, e.Client, tgtNS, "kmt-progress", run, DataProgress, `{"phase":"fault:broker-kill","counts":{"received":20,"lost":0}}`)
	waitFor("fault:broker-kill")
	rep := report.Report{SchemaVersion: report.SchemaVersion, Verdict: report.Fail, Reasons: []string{"lost 3"}, Scenario: "baseline", Run: run, Counts: report.Counts{Lost: 3, Received: 97}}
	raw, _ := json.Marshal(rep)
	writeConfigMap(t, e.Client, tgtNS, "kmt-report", run, DataReport, string(raw))
	res := <-done
	if res.err != nil {
		t.Fatalf("Follow: %v", res.err)
	}
	if res.rep.Verdict() != report.Fail || res.rep.Report.Counts.Lost != 3 || res.rep.Cluster != RoleTarget || res.rep.ConfigMap != tgtNS+"/kmt-report" {
		t.Fatalf("Follow report = %+v %+v", res.rep, res.rep.Report)
	}
	fetched, err := r.Fetch(ctx)
	if err != nil || string(fetched.Raw) != string(raw) {
		t.Fatalf("Fetch = %v, %v; want the raw report", fetched, err)
	}

	// Abort while a fault is held by Chaos Mesh's finalizer: it must not
	// strip it on its own, and must say how.
	pc2 := &unstructured.Unstructured{}
	pc2.SetGroupVersionKind(pc.GroupVersionKind())
	if err := e.Client.Get(ctx, client.ObjectKeyFromObject(pc), pc2); err != nil {
		t.Fatal(err)
	}
	pc2.SetFinalizers([]string{"chaos-mesh/records"})
	if err := e.Client.Update(ctx, pc2); err != nil {
		t.Fatal(err)
	}
	src, tgt := sides(e, srcNS, tgtNS)
	ar, err := Abort(ctx, []Side{src, tgt}, run, AbortOptions{Timeout: 3 * time.Second, Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), "PodChaos/"+rel+"-broker-kill") || !strings.Contains(err.Error(), `patch podchaos `+rel+`-broker-kill --type merge -p '{"metadata":{"finalizers":null}}'`) {
		t.Fatalf("Abort with a held fault: err = %v, want one naming the PodChaos and the patch command", err)
	}
	// Both "clusters" are one API server here, and Abort searches all
	// namespaces, so each side may report the held PodChaos.
	for _, left := range ar.Remaining {
		if left.Kind != "PodChaos" || left.Name != rel+"-broker-kill" {
			t.Fatalf("Remaining = %v, want just the PodChaos", ar.Remaining)
		}
	}
	if len(ar.Remaining) == 0 {
		t.Fatal("Remaining is empty though the PodChaos is held")
	}
	// Chaos Mesh's controller recovers and drops its finalizer.
	if err := e.Client.Get(ctx, client.ObjectKeyFromObject(pc), pc2); err != nil {
		t.Fatal(err)
	}
	pc2.SetFinalizers(nil)
	if err := e.Client.Update(ctx, pc2); err != nil {
		t.Fatal(err)
	}
	ar, err = Abort(ctx, []Side{src, tgt}, run, AbortOptions{Timeout: 30 * time.Second, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("second Abort: %v", err)
	}

	// Nothing of the run is left: every planned object, the release
	// records, the validator's ConfigMaps, the workflow's child.
	var leftovers []string
	check := func(ref ObjectRef) {
		if err := getU(ctx, e.Client, ref); !apierrors.IsNotFound(err) {
			leftovers = append(leftovers, fmt.Sprintf("%s (%v)", ref, err))
		}
	}
	for _, sp := range p.Sides {
		for _, c := range sp.Create {
			check(c)
		}
		check(ObjectRef{APIVersion: "v1", Kind: "Secret", Namespace: sp.Side.Namespace, Name: sp.ReleaseSecret})
	}
	check(ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: tgtNS, Name: "kmt-report"})
	check(ObjectRef{APIVersion: "v1", Kind: "ConfigMap", Namespace: tgtNS, Name: "kmt-progress"})
	check(ObjectRef{APIVersion: "chaos-mesh.org/v1alpha1", Kind: "NetworkChaos", Namespace: tgtNS, Name: "wan-latency-x1"})
	if len(leftovers) > 0 {
		t.Fatalf("left after Abort: %v (result %+v)", leftovers, ar)
	}
	if err := e.Client.Get(ctx, client.ObjectKeyFromObject(bystander), &corev1.ConfigMap{}); err != nil {
		t.Fatalf("Abort removed another run's ConfigMap: %v", err)
	}
	// And the release is really gone from Helm's point of view: a fresh
	// install of the same run works.
	if err := r.Install(ctx); err != nil {
		t.Fatalf("reinstall after abort: %v", err)
	}
	if _, err := r.Uninstall(ctx); err != nil {
		t.Fatalf("Uninstall: %v", err)
	}
	for _, sp := range p.Sides {
		for _, c := range sp.Create {
			check(c)
		}
	}
	if len(leftovers) > 0 {
		t.Fatalf("left after Uninstall: %v", leftovers)
	}
}

func TestChaosOptInIsEnforced(t *testing.T) {
	e := apiServer(t)
	ctx := context.Background()
	for i, tc := range []struct {
		name                   string
		srcAllowed, tgtAllowed bool
		extraAllowed           *bool // a namespace the faults also aim at
		chaos                  bool
		refusedNS              string // "" = allowed
	}{
		{"both opted in", true, true, nil, true, ""},
		{"source not opted in", false, true, nil, true, "src"},
		{"target not opted in", true, false, nil, true, "tgt"},
		{"no chaos needs no opt-in", false, false, nil, false, ""},
		{"aimed at a namespace without opt-in", true, true, ptr(false), true, "extra"},
		{"aimed at an opted-in namespace", true, true, ptr(true), true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := namespace(t, e, "src", tc.srcAllowed)
			tgt := namespace(t, e, "tgt", tc.tgtAllowed)
			values := map[string]any{"chaos": map[string]any{"enabled": tc.chaos, "targetNamespaces": []any{}}}
			nsName := map[string]string{"src": src, "tgt": tgt}
			if tc.extraAllowed != nil {
				extra := namespace(t, e, "extra", *tc.extraAllowed)
				nsName["extra"] = extra
				values["chaos"].(map[string]any)["targetNamespaces"] = []any{extra}
			}
			run := fmt.Sprintf("optin-%d", i)
			r := newRunner(t, e, src, tgt, run, values)
			err := r.Install(ctx)
			t.Cleanup(func() {
				srcS, tgtS := sides(e, src, tgt)
				if _, err := Abort(context.Background(), []Side{srcS, tgtS}, run, AbortOptions{Timeout: 20 * time.Second, Logger: quietLogger()}); err != nil {
					t.Errorf("cleanup abort: %v", err)
				}
			})
			if tc.refusedNS == "" {
				if err != nil {
					t.Fatalf("Install = %v, want success", err)
				}
				return
			}
			var refused *ChaosRefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("Install = %v, want a ChaosRefusedError", err)
			}
			ns := nsName[tc.refusedNS]
			ctxName := "kind-kmt-source"
			if refused.Side.Role == RoleTarget {
				ctxName = "kind-kmt-target"
			}
			wantCmd := fmt.Sprintf("kubectl --context %s label namespace %s kmt.dev/chaos=allowed", ctxName, ns)
			if !strings.Contains(err.Error(), fmt.Sprintf("namespace %q is not labelled", ns)) || !strings.Contains(err.Error(), wantCmd) {
				t.Fatalf("refusal %q does not name namespace %s and the command %q", err, ns, wantCmd)
			}
			// Refused before anything was written, in either cluster.
			var secrets corev1.SecretList
			for _, n := range []string{src, tgt} {
				if err := e.Client.List(ctx, &secrets, client.InNamespace(n), client.MatchingLabels{LabelRun: run}); err != nil {
					t.Fatal(err)
				}
				if len(secrets.Items) > 0 {
					t.Fatalf("a refused install left release records in %s: %v", n, secrets.Items[0].Name)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestFollowStopsOnFailedJob(t *testing.T) {
	e := apiServer(t)
	ctx := context.Background()
	src := namespace(t, e, "src", true)
	tgt := namespace(t, e, "tgt", true)
	const run = "run-jobfail"
	r := newRunner(t, e, src, tgt, run, nil)
	if err := r.Install(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = r.Abort(context.Background(), AbortOptions{Timeout: 20 * time.Second}) })
	// Play the Job controller: the validator Job failed.
	job := &unstructured.Unstructured{}
	job.SetAPIVersion("batch/v1")
	job.SetKind("Job")
	if err := e.Client.Get(ctx, client.ObjectKey{Namespace: tgt, Name: r.Release() + "-validator"}, job); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now().UTC().Format(time.RFC3339)
	cond := func(typ string) map[string]any {
		return map[string]any{"type": typ, "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit", "lastProbeTime": now, "lastTransitionTime": now}
	}
	job.Object["status"] = map[string]any{"failed": int64(1), "startTime": now,
		"conditions": []any{cond("FailureTarget"), cond("Failed")}}
	if err := e.Client.Status().Update(ctx, job); err != nil {
		t.Fatalf("marking the Job failed: %v", err)
	}
	fctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err := r.Follow(fctx, nil)
	var jf *JobFailedError
	if !errors.As(err, &jf) || jf.Job.Name != r.Release()+"-validator" || !strings.Contains(err.Error(), "logs job/"+r.Release()+"-validator") {
		t.Fatalf("Follow = %v, want a JobFailedError for the validator with the logs command", err)
	}
}
