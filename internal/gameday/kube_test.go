package gameday

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/testenv"
	"github.com/kmt-dev/kafka-mirror-tester/internal/kube/clusterrun"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// These tests run Kubernetes game days against a real kube-apiserver
// (internal/env/testenv, with the Chaos Mesh and prometheus-operator CRDs) in
// which two namespaces stand in for the two clusters. Nothing runs pods
// here (no kubelet, no Chaos Mesh controller), so the test plays the two
// in-cluster parts whose writes kmt reads: the validator (its progress and
// report ConfigMap, as internal/kube writes them) and Chaos Mesh (a fault
// object in force, a Workflow's child). Everything kmt does itself is
// real: the step's chart generated from the run book, the Helm installs
// into both "clusters", the looks, the halt's removal by label, the abort
// from the control file, the uninstall.

var api = &testenv.Shared{Options: testenv.Options{CRDs: true, Logger: quietLog()}}

func TestMain(m *testing.M) { api.Main(m) }

func kubeAPI(t *testing.T) *testenv.Env { t.Helper(); return api.Get(t) }

// kubeDay makes two namespaces (chaos opted in or not) and a kubeconfig,
// and returns a run book header for them: everything before steps.
func kubeDay(t *testing.T, e *testenv.Env, name string, chaosAllowed bool) (header, srcNS, tgtNS string) {
	t.Helper()
	var labels map[string]string
	if chaosAllowed {
		labels = map[string]string{clusterrun.LabelChaos: clusterrun.ChaosAllowed}
	}
	srcNS, tgtNS = e.Namespace(t, "gd-src", labels), e.Namespace(t, "gd-tgt", labels)
	kc := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kc, e.Kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	raw, err := clientcmd.Load(e.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	charts, _ := filepath.Abs("../../charts")
	header = fmt.Sprintf(`apiVersion: kmt.dev/v1
kind: GameDay
metadata: {name: %s, owner: sre@example.com, abortOwner: oncall@example.com}
clusters:
  backend: kubernetes
  kubeconfig: %q
  charts: %q
  timeout: 1m
  values:
    chaos: {peerAddresses: [192.0.2.10/32]}
    targets:
      source: {namespace: %s}
      target: {namespace: %s}
      mirror: {namespace: %s}
  source: {context: %q, namespace: %s}
  target: {context: %q, namespace: %s}
halt:
  - invariant: nothing-lost
`, name, kc, charts, srcNS, tgtNS, tgtNS, raw.CurrentContext, srcNS, raw.CurrentContext, tgtNS)
	return header, srcNS, tgtNS
}

// A step with a Chaos Mesh fault on each side: a WAN cut (NetworkChaos
// from both clusters) and a broker kill (PodChaos in the source).
const kubeStep = `steps:
  - name: cut-and-kill
    hypothesis: a WAN cut and a dead source broker lose nothing
    scenario: baseline
    short: true
    load: {rate: 100, duration: 120s}
    faults:
      - {name: cut, kind: wan-partition, at: 3s, duration: 60s}
      - {name: kill, kind: broker-kill, at: 3s, duration: 60s, params: {brokers: 1, cluster: source}}
    steadyState:
      - {invariant: lag-below, value: 100000}
`

// runDay runs the game day in the background; the result arrives on the
// channel.
type dayResult struct {
	res *Result
	err error
}

func runDay(t *testing.T, book, dir string) <-chan dayResult {
	t.Helper()
	b := readBook(t, book)
	out := make(chan dayResult, 1)
	go func() {
		res, err := Run(context.Background(), b, Options{Dir: dir, Logger: quietLog(), Tick: 50 * time.Millisecond})
		out <- dayResult{res, err}
	}()
	return out
}

// waitInstalled waits until the step's chart is in both namespaces and
// returns its run id (from the validator Job's label).
func waitInstalled(t *testing.T, e *testenv.Env, srcNS, tgtNS string, done <-chan dayResult) string {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var run string
		n := map[string]int{}
		for _, ns := range []string{srcNS, tgtNS} {
			for _, gvk := range []schema.GroupVersionKind{{Group: "batch", Version: "v1", Kind: "JobList"}, {Group: clusterrun.ChaosGroup, Version: "v1alpha1", Kind: "WorkflowList"}} {
				var l unstructured.UnstructuredList
				l.SetGroupVersionKind(gvk)
				if err := e.Client.List(context.Background(), &l, client.InNamespace(ns)); err != nil {
					t.Fatal(err)
				}
				for _, j := range l.Items {
					n[ns]++
					run = j.GetLabels()[clusterrun.LabelRun]
				}
			}
		}
		// source: loadgen + agent + Workflow; target: validator + agent +
		// Workflow (Helm creates custom resources last).
		if n[srcNS] == 3 && n[tgtNS] == 3 {
			return run
		}
		select {
		case r := <-done:
			t.Fatalf("the game day ended before its step was installed: %+v %v", r.res, r.err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the step's Jobs never appeared (source %d, target %d)", n[srcNS], n[tgtNS])
		}
	}
}

// kinds a step may leave behind.
var runKinds = func() []schema.GroupVersionKind {
	out := []schema.GroupVersionKind{
		{Version: "v1", Kind: "ConfigMap"}, {Version: "v1", Kind: "Secret"}, {Version: "v1", Kind: "Service"},
		{Version: "v1", Kind: "ServiceAccount"}, {Version: "v1", Kind: "Pod"},
		{Group: "batch", Version: "v1", Kind: "Job"}, {Group: "apps", Version: "v1", Kind: "Deployment"},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role"},
		{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"},
		{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"},
		{Group: "monitoring.coreos.com", Version: "v1", Kind: "PrometheusRule"},
	}
	for _, k := range clusterrun.ChaosKinds {
		out = append(out, schema.GroupVersionKind{Group: clusterrun.ChaosGroup, Version: "v1alpha1", Kind: k})
	}
	return out
}()

// objectsOf lists every object (all namespaces) matching the selector.
func objectsOf(t *testing.T, e *testenv.Env, sel client.MatchingLabels, kinds ...string) []string {
	t.Helper()
	var out []string
	for _, gvk := range runKinds {
		if len(kinds) > 0 && !slices.Contains(kinds, gvk.Kind) {
			continue
		}
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := e.Client.List(context.Background(), l, sel); err != nil {
			t.Fatalf("list %s: %v", gvk.Kind, err)
		}
		for _, it := range l.Items {
			out = append(out, fmt.Sprintf("%s %s/%s", gvk.Kind, it.GetNamespace(), it.GetName()))
		}
	}
	return out
}

// playValidator writes the validator's progress (and report, when rep is
// set) into the run's report ConfigMap, as internal/kube does in the pod.
func playValidator(t *testing.T, e *testenv.Env, ns, run, progress string, rep *report.Report) {
	t.Helper()
	data := map[string]string{clusterrun.DataProgress: progress}
	if rep != nil {
		raw, _ := json.Marshal(rep)
		data[clusterrun.DataReport] = string(raw)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kmt-report-" + run, Namespace: ns, Labels: map[string]string{
		clusterrun.LabelManagedBy: clusterrun.ManagedByKmt, clusterrun.LabelRun: run}}, Data: data}
	ctx := context.Background()
	err := e.Client.Create(ctx, cm)
	if apierrors.IsAlreadyExists(err) {
		err = e.Client.Update(ctx, cm)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// playChaosMesh adds, in force, a Workflow child without kmt's labels (what Chaos
// Mesh's workflow controller spawns), returning the child's and the
// Workflow's names.
func playChaosMesh(t *testing.T, e *testenv.Env, ns, run string) (string, string) {
	t.Helper()
	ctx := context.Background()
	var wf unstructured.UnstructuredList
	wf.SetGroupVersionKind(schema.GroupVersionKind{Group: clusterrun.ChaosGroup, Version: "v1alpha1", Kind: "WorkflowList"})
	if err := e.Client.List(ctx, &wf, client.InNamespace(ns), client.MatchingLabels{clusterrun.LabelRun: run}); err != nil || len(wf.Items) != 1 {
		t.Fatalf("want the step's one Workflow in %s: %v %d", ns, err, len(wf.Items))
	}
	child := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "NetworkChaos",
		"metadata": map[string]any{"name": "cut-child", "namespace": ns,
			"labels": map[string]any{"chaos-mesh.org/workflow": wf.Items[0].GetName()}},
		"spec": map[string]any{"action": "partition", "mode": "all", "direction": "to",
			"selector": map[string]any{"namespaces": []any{ns}}, "externalTargets": []any{"192.0.2.10/32"}},
		"status": map[string]any{"experiment": map[string]any{"desiredPhase": "Run"}},
	}}
	if err := e.Client.Create(ctx, child); err != nil {
		t.Fatalf("creating the Workflow's child: %v", err)
	}
	return child.GetName(), wf.Items[0].GetName()
}

// TestKubeGameDayHaltRemovesEveryFault: the step's chart goes into both
// clusters (loadgen and agent in the source, validator and agent in the
// target, a Chaos Mesh Workflow in each); while the faults are in force
// the validator reports 3 lost records, the halt condition nothing-lost
// breaks, and the step's whole run is removed at once: both Workflows,
// the child Chaos Mesh spawned, the agents' Jobs (deleting them ends each
// agent, which resumes what it paused), the release records. Nothing of
// the run is left and the report says why the day stopped.
func TestKubeGameDayHaltRemovesEveryFault(t *testing.T) {
	e := kubeAPI(t)
	header, srcNS, tgtNS := kubeDay(t, e, "kube-halt", true)
	dir := t.TempDir()
	done := runDay(t, header+kubeStep+`  - name: never
    hypothesis: not reached
    scenario: baseline
    short: true
`, dir)
	run := waitInstalled(t, e, srcNS, tgtNS, done)
	sel := client.MatchingLabels{clusterrun.LabelRun: run}
	faults := objectsOf(t, e, sel, clusterrun.ChaosKinds...)
	if len(faults) != 2 {
		t.Fatalf("Chaos Mesh objects of run %s: %v, want a Workflow in each cluster", run, faults)
	}
	child, workflow := playChaosMesh(t, e, tgtNS, run)
	playValidator(t, e, tgtNS, run, `{"phase":"fault:cut","counts":{"acked":900,"received":880,"lost":3,"duplicate":0}}`, nil)

	var r dayResult
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the game day did not stop after the halt condition broke")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	res := r.res
	if res.Outcome != Halted || len(res.Steps) != 2 || res.Steps[0].Status != Halted || res.Steps[1].Status != Skipped {
		t.Fatalf("outcome %s, steps %+v: want halted at step 1, step 2 skipped", res.Outcome, res.Steps)
	}
	st := res.Steps[0]
	h := st.Halt
	if h == nil || !strings.Contains(h.Reason, `halt condition "nothing-lost" broke`) || !strings.Contains(h.Reason, "3 lost so far") {
		t.Fatalf("halt %+v: want nothing-lost broken by 3 lost", h)
	}
	// Every fault object went in the heal, the child too.
	healed := strings.Join(h.Healed, "\n")
	for _, f := range append(faults, "NetworkChaos "+tgtNS+"/"+child) {
		parts := strings.Fields(f) // "Kind ns/name"
		if !strings.Contains(healed, parts[0]+"/"+strings.SplitN(parts[1], "/", 2)[1]) {
			t.Errorf("fault object %s not among the healed:\n%s", f, healed)
		}
	}
	// Order: the fault objects, then the agents (so each resumes what it
	// paused while its Role exists), then the rest of the run.
	rank := func(ref string) int { // "cluster Kind/name -n ns"
		kn := strings.SplitN(strings.Fields(ref)[1], "/", 2)
		switch {
		case slices.Contains(clusterrun.ChaosKinds, kn[0]):
			return 0
		case kn[0] == "Job" && strings.HasSuffix(kn[1], "-agent"):
			return 1
		}
		return 2
	}
	agents, last := 0, 0
	for _, ref := range h.Healed {
		if strings.HasPrefix(ref, "Helm release") {
			continue
		}
		r := rank(ref)
		if r < last {
			t.Errorf("healed in the wrong order: %s after a later kind\n%s", ref, healed)
		}
		last = max(last, r)
		if r == 1 {
			agents++
		}
	}
	if agents != 2 {
		t.Errorf("%d agent Jobs removed before the releases, want 2 (one per cluster):\n%s", agents, healed)
	}
	if strings.Join(h.Active, ",") != "cut" {
		t.Errorf("active at the halt: %v, want the fault whose window the validator was in (cut)", h.Active)
	}
	t.Logf("halt: %s", st.Reason)
	if h.FaultsGoneSeconds <= 0 || h.FaultsGoneSeconds > h.AgentsGoneSeconds || h.AgentsGoneSeconds > h.HealSeconds {
		t.Errorf("heal times: faults %.3fs, agents %.3fs, all %.3fs: want faults first, then agents, then the rest", h.FaultsGoneSeconds, h.AgentsGoneSeconds, h.HealSeconds)
	}
	if st.Cleanup == nil || len(st.Cleanup.Left) != 0 || st.Cleanup.Error != "" {
		t.Errorf("cleanup %+v: want nothing left", st.Cleanup)
	}
	if left := objectsOf(t, e, sel); len(left) > 0 {
		t.Errorf("left in the clusters after the halt: %v", left)
	}
	if left := objectsOf(t, e, client.MatchingLabels{"chaos-mesh.org/workflow": workflow}); len(left) > 0 {
		t.Errorf("Workflow children left: %v", left)
	}
	if !strings.Contains(strings.Join(res.Findings, "\n"), "[cut-and-kill] halted") {
		t.Errorf("findings %q do not say the step halted", res.Findings)
	}
	if _, err := os.Stat(filepath.Join(dir, resultHTML)); err != nil {
		t.Errorf("game-day.html: %v", err)
	}
}

// TestKubeGameDayAbortFromAnotherTerminal: kmt gameday abort (the control
// file) while the step's faults are installed removes the whole run from
// both clusters at once; the day stops as aborted, by whom and why.
func TestKubeGameDayAbortFromAnotherTerminal(t *testing.T) {
	e := kubeAPI(t)
	header, srcNS, tgtNS := kubeDay(t, e, "kube-abort", true)
	dir := t.TempDir()
	done := runDay(t, header+kubeStep, dir)
	run := waitInstalled(t, e, srcNS, tgtNS, done)
	sel := client.MatchingLabels{clusterrun.LabelRun: run}
	before := objectsOf(t, e, sel)
	playValidator(t, e, tgtNS, run, `{"phase":"steady","counts":{"acked":100,"received":100,"lost":0}}`, nil)
	if err := Send(dir, CmdAbort, "oncall", "customer traffic spike"); err != nil {
		t.Fatal(err)
	}
	var r dayResult
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the game day did not stop after kmt gameday abort")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	st := r.res.Steps[0]
	if r.res.Outcome != Aborted || st.Status != Aborted || !strings.Contains(st.Reason, "aborted by oncall (customer traffic spike)") {
		t.Fatalf("outcome %s, step %s %q: want aborted by oncall with the reason", r.res.Outcome, st.Status, st.Reason)
	}
	// Removed: both Workflows and both agents by name, the rest with the
	// two Helm releases and the sweep.
	if st.Halt == nil {
		t.Fatal("no halt recorded for the abort")
	}
	healed := strings.Join(st.Halt.Healed, "\n")
	for _, want := range []string{"Workflow/", "Job/", "Helm release"} {
		if n := strings.Count(healed, want); n != 2 {
			t.Errorf("abort removed %d %s, want 2 (one per cluster):\n%s", n, want, healed)
		}
	}
	if left := objectsOf(t, e, sel); len(left) > 0 {
		t.Errorf("left in the clusters after the abort: %v", left)
	}
	t.Logf("abort: %d objects before; faults gone after %.3fs, agents after %.3fs, all in %.2fs", len(before), st.Halt.FaultsGoneSeconds, st.Halt.AgentsGoneSeconds, st.Halt.HealSeconds)
}

// TestKubeGameDayStepHeldAndUninstalled: the validator reports progress,
// then its verdict; the steady state held before and during, the after
// check reads the report, report.json (as written in the cluster) and
// report.html land in the step's folder, and the step's run is uninstalled
// with nothing left, the run-id guard ConfigMap included.
func TestKubeGameDayStepHeldAndUninstalled(t *testing.T) {
	e := kubeAPI(t)
	header, srcNS, tgtNS := kubeDay(t, e, "kube-held", true)
	dir := t.TempDir()
	done := runDay(t, header+kubeStep, dir)
	run := waitInstalled(t, e, srcNS, tgtNS, done)
	playChaosMesh(t, e, tgtNS, run)
	playValidator(t, e, tgtNS, run, `{"phase":"fault:cut","counts":{"acked":500,"received":450,"lost":0}}`, nil)
	// The steady state is checked just before the first fault is due (3 s
	// after the install), then while faults are in force.
	time.Sleep(4 * time.Second)
	now := time.Now()
	rep := &report.Report{SchemaVersion: report.SchemaVersion, Verdict: report.Pass, Scenario: "baseline", Run: run,
		StartedAt: now.Add(-time.Minute), EndedAt: now, Counts: report.Counts{Produced: 1000, Acked: 1000, Received: 1000},
		Timeline: []report.Second{{T: 0, Arrivals: 1000, Produced: 1000, Acked: 1000}}}
	playValidator(t, e, tgtNS, run, `{"phase":"drain","counts":{"acked":1000,"received":1000,"lost":0}}`, rep)
	var r dayResult
	select {
	case r = <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("the game day did not end after the validator's report")
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	st := r.res.Steps[0]
	if r.res.Outcome != Held || st.Status != Held || st.Verdict != report.Pass {
		t.Fatalf("outcome %s, step %s (%s), verdict %s: want held, pass", r.res.Outcome, st.Status, st.Reason, st.Verdict)
	}
	when := map[string]int{}
	for _, c := range st.Checks {
		when[c.When]++
		if !c.Held {
			t.Errorf("check %+v did not hold", c)
		}
	}
	if when["before"] != 1 || when["during"] != 1 || when["after"] != 1 {
		t.Errorf("checks %+v: want lag-below before, during and after", st.Checks)
	}
	for _, f := range []string{"report.json", "report.html", "scenario.yaml", "kmt.log"} {
		if fi, err := os.Stat(filepath.Join(dir, st.ReportDir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("step folder lacks %s: %v", f, err)
		}
	}
	if st.Cleanup == nil || len(st.Cleanup.Left) != 0 || st.Cleanup.Removed == 0 {
		t.Errorf("cleanup %+v: want the run removed, nothing left", st.Cleanup)
	}
	if left := objectsOf(t, e, client.MatchingLabels{clusterrun.LabelRun: run}); len(left) > 0 {
		t.Errorf("left in the clusters after the step: %v", left)
	}
}

// TestKubeGameDayPreflightRefusesChaos: namespaces that did not opt in to
// chaos stop the day at pre-flight, before anything is created.
func TestKubeGameDayPreflightRefusesChaos(t *testing.T) {
	e := kubeAPI(t)
	header, srcNS, tgtNS := kubeDay(t, e, "kube-refused", false)
	dir := t.TempDir()
	r := <-runDay(t, header+kubeStep, dir)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.res.Outcome != Halted || !strings.HasPrefix(r.res.Reason, "pre-flight: ") || !strings.Contains(r.res.Reason, clusterrun.LabelChaos) {
		t.Fatalf("outcome %s (%s): want halted at pre-flight naming the %s opt-in", r.res.Outcome, r.res.Reason, clusterrun.LabelChaos)
	}
	for _, ns := range []string{srcNS, tgtNS} {
		if left := objectsOf(t, e, client.MatchingLabels{}, "ConfigMap", "Secret", "Job", "Workflow"); len(left) > 0 {
			for _, o := range left {
				if strings.Contains(o, " "+ns+"/") && !strings.Contains(o, "kube-root-ca.crt") {
					t.Errorf("pre-flight created %s", o)
				}
			}
		}
	}
}

// TestKubeActive: a fault is in force when the validator is in its window
// or a single Chaos Mesh object injects; a running Workflow or an object
// Chaos Mesh has not picked up yet is not (it would start the time to
// detect and the "during" checks at the install).
func TestKubeActive(t *testing.T) {
	look := clusterrun.Progress{Phase: "fault:cut", Chaos: []clusterrun.ChaosState{
		{Cluster: clusterrun.RoleTarget, Kind: "Workflow", Name: "kmt-baseline-target", Phase: "Running", Active: true},
		{Cluster: clusterrun.RoleSource, Kind: "PodChaos", Name: "kill", Phase: "Pending", Active: true},
		{Cluster: clusterrun.RoleTarget, Kind: "NetworkChaos", Name: "wan", Phase: "Run", Active: true},
		{Cluster: clusterrun.RoleTarget, Kind: "NetworkChaos", Name: "over", Phase: "Stop"},
	}}
	if got := strings.Join(kubeActive(context.Background(), look, nil, "r1"), ","); got != "cut,target:NetworkChaos/wan" {
		t.Errorf("in force: %s, want cut,target:NetworkChaos/wan", got)
	}
	look.Phase = "steady"
	look.Chaos = look.Chaos[:2]
	if got := kubeActive(context.Background(), look, nil, "r1"); len(got) != 0 {
		t.Errorf("in force before any fault: %v, want none", got)
	}
}
