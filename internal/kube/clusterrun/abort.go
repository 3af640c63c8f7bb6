package clusterrun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// chaosWorkflowLabel is what Chaos Mesh's workflow controller puts on the
// WorkflowNodes and chaos objects a Workflow spawns (they do not inherit
// kmt's labels, so Abort finds them through their Workflow).
const chaosWorkflowLabel = "chaos-mesh.org/workflow"

// AbortOptions tune Abort.
type AbortOptions struct {
	// Timeout bounds the abort in each cluster, waiting for deletions
	// included; default 2m.
	Timeout time.Duration
	// RemoveFinalizers strips the finalizers of objects still there when
	// the wait is over. Only for when Chaos Mesh's controller is gone: it is
	// the controller that recovers a fault and then drops its finalizer, so
	// stripping it while the controller runs can leave a fault injected.
	RemoveFinalizers bool
	Logger           *slog.Logger
}

// AbortResult is what Abort did.
type AbortResult struct {
	// Deleted are the objects Abort asked the API server to delete.
	Deleted []ObjectRef
	// Releases are the Helm releases uninstalled ("source ns/name").
	Releases []string
	// Remaining are objects still present at the end (finalizers).
	Remaining []ObjectRef
	// Notes: what was skipped and why (Chaos Mesh not installed, ...).
	Notes []string
	// FaultsRemoved is when every cluster's Chaos Mesh objects had been
	// deleted (the first phase), and AgentsStopped when the fault agents
	// had (the second); the rest of the run goes after.
	FaultsRemoved, AgentsStopped time.Time
}

// Selector returns the label selector of everything a run created: its run
// label, and managed-by kmt (objects kmt and its workloads make) or Helm
// (Helm overwrites managed-by on every object it installs).
func Selector(run string) (labels.Selector, error) {
	if err := ValidateRunID(run); err != nil {
		return nil, err
	}
	return labels.Parse(fmt.Sprintf("%s=%s,%s in (%s,%s)", LabelRun, run, LabelManagedBy, ManagedByKmt, ManagedByHelm))
}

// Abort removes every object of run in every side: first the Chaos Mesh
// objects (Workflows and Schedules, what they spawned, then the single
// faults), so faults stop before anything else; then kmt's fault agents
// (waiting a little for their pods to end, so each resumes what it paused
// while its Role still exists); then the Helm releases
// recorded with the run's labels (helm uninstall); then any other object
// of any resource type the API server serves that carries the run's labels
// (found through discovery, so a missing CRD is no error); and it waits
// until they are gone. Side.Namespace is only the fallback when listing
// across all namespaces is forbidden. It works from the run id alone, so
// `kmt abort --run <id>` needs neither the chart nor the scenario.
func Abort(ctx context.Context, sides []Side, run string, o AbortOptions) (*AbortResult, error) {
	sel, err := Selector(run)
	if err != nil {
		return nil, err
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	res := &AbortResult{}
	var errs []error
	var as []*aborter
	for _, s := range sides {
		st, err := connect(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		as = append(as, &aborter{s: st, sel: sel, runID: run, o: o, res: res, seen: sets.New[string]()})
	}
	// Phase by phase across the clusters, so the target's faults do not
	// wait for the source's agents or leftovers. Each cluster gets the
	// whole timeout in each phase: one held fault in the source must not
	// stop the target from being cleaned.
	phases := []func(*aborter, context.Context) error{(*aborter).chaos, (*aborter).agents, (*aborter).rest}
	failed := make([]bool, len(as))
	for p, phase := range phases {
		switch p {
		case 1:
			res.FaultsRemoved = time.Now()
		case 2:
			res.AgentsStopped = time.Now()
		}
		for i, a := range as {
			if failed[i] {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, o.Timeout)
			if err := phase(a, sctx); err != nil {
				errs = append(errs, err)
				failed[i] = true
			}
			cancel()
		}
	}
	return res, errors.Join(errs...)
}

type aborter struct {
	s     *sideState
	sel   labels.Selector
	runID string
	o     AbortOptions
	res   *AbortResult
	seen  sets.Set[string]
	// resources is the discovery answer, fetched once.
	resources []schema.GroupVersionKind
	// clusterWide is false once listing across namespaces was forbidden.
	narrow bool
}

func (a *aborter) log() *slog.Logger {
	return a.o.Logger.With("cluster", a.s.Role, "run", a.runID)
}

// rest is phase 3, after the faults and the agents: the Helm releases of
// the run (their records carry the run labels), then everything else,
// until nothing is left.
func (a *aborter) rest(ctx context.Context) error {
	log := a.log()
	if err := a.releases(ctx, log); err != nil {
		return err
	}
	if err := a.discover(); err != nil {
		return err
	}
	return a.sweepUntilGone(ctx, log)
}

// sweepUntilGone sweeps until a whole sweep finds nothing of the run, or
// ctx ends. Only a whole sweep may say "nothing left": one cut short by
// the timeout saw only the kinds it listed before, so the objects the last
// whole sweep found (a fault held by its finalizer) are reported as left.
func (a *aborter) sweepUntilGone(ctx context.Context, log *slog.Logger) error {
	var last []*unstructured.Unstructured // what the last whole sweep found
	for {
		left, err := a.sweep(ctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				return a.stuck(unionByUID(last, left))
			}
			return err
		}
		if len(left) == 0 {
			log.Info("abort complete: nothing of the run is left")
			return nil
		}
		last = left
		select {
		case <-ctx.Done():
			return a.stuck(left)
		case <-time.After(300 * time.Millisecond):
		}
		if a.o.RemoveFinalizers && remainingTime(ctx) < a.o.Timeout/2 {
			for _, u := range left {
				if u.GetDeletionTimestamp() != nil && len(u.GetFinalizers()) > 0 {
					log.Warn("removing finalizers (RemoveFinalizers)", "kind", u.GetKind(), "namespace", u.GetNamespace(), "name", u.GetName(), "finalizers", u.GetFinalizers())
					patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`))
					if err := a.s.c.Patch(ctx, u, patch); err != nil && !apierrors.IsNotFound(err) {
						return fmt.Errorf("%s cluster: removing finalizers of %s %s/%s: %w", a.s.Name(), u.GetKind(), u.GetNamespace(), u.GetName(), err)
					}
				}
			}
		}
	}
}

func remainingTime(ctx context.Context) time.Duration {
	d, ok := ctx.Deadline()
	if !ok {
		return time.Hour
	}
	return time.Until(d)
}

func (a *aborter) stuck(left []*unstructured.Unstructured) error {
	left = a.recheck(left)
	if len(left) == 0 {
		return fmt.Errorf("%s cluster: abort of run %s timed out after %s before a whole search found nothing of the run; run `kmt abort --run %s` again",
			a.s.Name(), a.runID, a.o.Timeout, a.runID)
	}
	var lines []string
	for _, u := range left {
		ref := refOf(a.s.Role, u, "")
		a.res.Remaining = append(a.res.Remaining, ref)
		why := "still present"
		if u.GetDeletionTimestamp() != nil && len(u.GetFinalizers()) > 0 {
			why = fmt.Sprintf("deleting, held by finalizers %v; if Chaos Mesh's controller is gone, release it with: kubectl%s -n %s patch %s %s --type merge -p '{\"metadata\":{\"finalizers\":null}}'",
				u.GetFinalizers(), contextFlag(a.s.Context), u.GetNamespace(), strings.ToLower(u.GetKind()), u.GetName())
		}
		lines = append(lines, ref.String()+": "+why)
	}
	sort.Strings(lines)
	return fmt.Errorf("%s cluster: abort of run %s timed out after %s with %d object(s) left:\n  %s\nrun `kmt abort --run %s` again once they are released",
		a.s.Name(), a.runID, a.o.Timeout, len(left), strings.Join(lines, "\n  "), a.runID)
}

// recheck reads each object again (the sweep lists what it deletes, and
// an object without finalizers is gone right after) and keeps those still
// there, as they are now (deleting, held by finalizers). A read that fails
// keeps the object as listed: never report less than may be left.
func (a *aborter) recheck(left []*unstructured.Unstructured) []*unstructured.Unstructured {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*unstructured.Unstructured
	for _, u := range left {
		now := &unstructured.Unstructured{}
		now.SetGroupVersionKind(u.GroupVersionKind())
		err := a.s.c.Get(ctx, client.ObjectKeyFromObject(u), now)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			out = append(out, u)
		default:
			out = append(out, now)
		}
	}
	return out
}

func contextFlag(ctx string) string {
	if ctx == "" {
		return ""
	}
	return " --context " + ctx
}

// list lists one kind across all namespaces (or, when that is forbidden,
// in the side's namespace) with a selector. A kind the server does not
// serve yields (nil, false, nil).
func (a *aborter) list(ctx context.Context, gvk schema.GroupVersionKind, sel labels.Selector, ns string) ([]*unstructured.Unstructured, bool, error) {
	l := &unstructured.UnstructuredList{}
	l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
	opts := []client.ListOption{client.MatchingLabelsSelector{Selector: sel}}
	if ns == "" && a.narrow {
		ns = a.s.Namespace
	}
	if ns != "" {
		opts = append(opts, client.InNamespace(ns))
	}
	err := a.s.c.List(ctx, l, opts...)
	if apierrors.IsForbidden(err) && ns == "" {
		a.narrow = true
		a.res.Notes = append(a.res.Notes, fmt.Sprintf("%s: listing across namespaces is forbidden; searched namespace %s only", a.s.Name(), a.s.Namespace))
		return a.list(ctx, gvk, sel, a.s.Namespace)
	}
	if meta.IsNoMatchError(err) || apierrors.IsNotFound(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%s cluster: listing %s with %s: %w", a.s.Name(), gvk.Kind, sel, err)
	}
	out := make([]*unstructured.Unstructured, 0, len(l.Items))
	for i := range l.Items {
		out = append(out, &l.Items[i])
	}
	return out, true, nil
}

func (a *aborter) delete(ctx context.Context, u *unstructured.Unstructured) error {
	if u.GetDeletionTimestamp() != nil {
		return nil
	}
	err := a.s.c.Delete(ctx, u, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("%s cluster: deleting %s %s/%s: %w", a.s.Name(), u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	key := string(u.GetUID())
	if !a.seen.Has(key) {
		a.seen.Insert(key)
		a.res.Deleted = append(a.res.Deleted, refOf(a.s.Role, u, ""))
	}
	return nil
}

func (a *aborter) chaos(ctx context.Context) error {
	served := false
	for _, kind := range ChaosKinds {
		gvk := schema.GroupVersionKind{Group: ChaosGroup, Version: "v1alpha1", Kind: kind}
		objs, ok, err := a.list(ctx, gvk, a.sel, "")
		if err != nil {
			return err
		}
		served = served || ok
		for _, u := range objs {
			if kind == "Workflow" {
				if err := a.workflowChildren(ctx, u); err != nil {
					return err
				}
			}
			if err := a.delete(ctx, u); err != nil {
				return err
			}
		}
	}
	if !served {
		a.res.Notes = append(a.res.Notes, fmt.Sprintf("%s: Chaos Mesh CRDs are not installed, so there were no faults to remove", a.s.Name()))
	}
	return nil
}

// agentComponent is the component label of the fault agents' Jobs and
// pods (charts/kmt-lib).
const agentComponent = "agent"

// agentGrace bounds the wait for the agents' pods to end: the pod's
// termination grace (30 s by default) and a little more.
const agentGrace = 45 * time.Second

// agents deletes the run's fault agent Jobs and waits (up to agentGrace)
// until their pods are gone, so each agent, stopped by SIGTERM, resumes
// what it paused before the Helm uninstall removes the Role it needs for
// that. A pod that outlives the wait is left to the sweep; a paused pod
// resumes itself shortly after its window in any case.
func (a *aborter) agents(ctx context.Context) error {
	log := a.log()
	req, err := labels.NewRequirement("app.kubernetes.io/component", selection.Equals, []string{agentComponent})
	if err != nil {
		return err
	}
	sel := a.sel.Add(*req)
	jobs, _, err := a.list(ctx, schema.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"}, sel, "")
	if err != nil {
		return err
	}
	for _, j := range jobs {
		if err := a.delete(ctx, j); err != nil {
			return err
		}
	}
	if len(jobs) == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, agentGrace)
	defer cancel()
	for {
		pods, _, err := a.list(wctx, schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, sel, "")
		if err != nil || len(pods) == 0 {
			return nil // a failed look is no reason to keep the faults: go on
		}
		select {
		case <-wctx.Done():
			log.Warn("fault agent pods still terminating; removing the rest of the run", "pods", len(pods))
			return nil
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// workflowChildren deletes what a Workflow spawned (labelled with its name
// by Chaos Mesh, not by kmt).
func (a *aborter) workflowChildren(ctx context.Context, wf *unstructured.Unstructured) error {
	sel := labels.SelectorFromSet(labels.Set{chaosWorkflowLabel: wf.GetName()})
	for _, kind := range ChaosKinds {
		if kind == "Workflow" || kind == "Schedule" {
			continue
		}
		gvk := schema.GroupVersionKind{Group: ChaosGroup, Version: "v1alpha1", Kind: kind}
		objs, _, err := a.list(ctx, gvk, sel, wf.GetNamespace())
		if err != nil {
			return err
		}
		for _, u := range objs {
			if err := a.delete(ctx, u); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *aborter) releases(ctx context.Context, log *slog.Logger) error {
	var secrets corev1.SecretList
	sel := labels.SelectorFromSet(labels.Set{"owner": "helm", LabelRun: a.runID})
	opts := []client.ListOption{client.MatchingLabelsSelector{Selector: sel}}
	if a.narrow {
		opts = append(opts, client.InNamespace(a.s.Namespace))
	}
	if err := a.s.c.List(ctx, &secrets, opts...); err != nil {
		if !apierrors.IsForbidden(err) {
			return fmt.Errorf("%s cluster: listing Helm release records of run %s: %w", a.s.Name(), a.runID, err)
		}
		a.narrow = true
		if err := a.s.c.List(ctx, &secrets, append(opts, client.InNamespace(a.s.Namespace))...); err != nil {
			return fmt.Errorf("%s cluster: listing Helm release records of run %s in %s: %w", a.s.Name(), a.runID, a.s.Namespace, err)
		}
	}
	done := sets.New[string]()
	for _, sec := range secrets.Items {
		name := sec.Labels["name"]
		key := sec.Namespace + "/" + name
		if name == "" || done.Has(key) {
			continue
		}
		done.Insert(key)
		side := a.s.Side
		side.Namespace = sec.Namespace
		st, err := connect(side)
		if err != nil {
			return err
		}
		if err := uninstallRelease(st, name, remainingTime(ctx), log); err != nil {
			// The sweep below still removes the objects by label; say why
			// Helm could not.
			a.res.Notes = append(a.res.Notes, err.Error())
			continue
		}
		a.res.Releases = append(a.res.Releases, fmt.Sprintf("%s %s", a.s.Role, key))
	}
	return nil
}

// discover lists every resource type that can be listed and deleted.
func (a *aborter) discover() error {
	lists, err := a.s.getter.disc.ServerPreferredResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return fmt.Errorf("%s cluster: discovering resource types: %w", a.s.Name(), err)
	}
	if err != nil {
		a.res.Notes = append(a.res.Notes, fmt.Sprintf("%s: some API groups could not be discovered (%v); their objects were not searched", a.s.Name(), err))
	}
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || r.Name == "events" {
				continue // subresources; events cannot be ours
			}
			verbs := sets.New[string](r.Verbs...)
			if !verbs.HasAll("list", "delete") {
				continue
			}
			a.resources = append(a.resources, gv.WithKind(r.Kind))
		}
	}
	return nil
}

// isDeadlineWait: client-go's rate limiter refused to wait because the
// request could not be sent before ctx's deadline (golang.org/x/time/rate
// says so in words; it does not wrap context.DeadlineExceeded).
func isDeadlineWait(err error) bool {
	return err != nil && strings.Contains(err.Error(), "would exceed context deadline")
}

// unionByUID is a, then the objects of b not in a.
func unionByUID(a, b []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := append([]*unstructured.Unstructured(nil), a...)
	seen := sets.New[types.UID]()
	for _, u := range a {
		seen.Insert(u.GetUID())
	}
	for _, u := range b {
		if !seen.Has(u.GetUID()) {
			out = append(out, u)
		}
	}
	return out
}

// sweep deletes every object of the run and returns those still present;
// when ctx ends before every kind was listed it returns what it found so
// far with ctx's error.
func (a *aborter) sweep(ctx context.Context) ([]*unstructured.Unstructured, error) {
	var left []*unstructured.Unstructured
	for _, gvk := range a.resources {
		objs, _, err := a.list(ctx, gvk, a.sel, "")
		if err != nil {
			if ctx.Err() != nil || isDeadlineWait(err) {
				// Cut short: the caller must not read this as complete.
				return left, context.DeadlineExceeded
			}
			return nil, err
		}
		for _, u := range objs {
			if err := a.delete(ctx, u); err != nil {
				return nil, err
			}
			left = append(left, u)
		}
	}
	return left, nil
}

// isNoKind: the server does not serve the kind (CRD not installed).
func isNoKind(err error) bool {
	return meta.IsNoMatchError(err) || apierrors.IsNotFound(err)
}
