package agent

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Chaos Mesh labels on the chaos objects a Workflow spawns (Chaos Mesh 2.8,
// api/v1alpha1/workflownode_types.go and the chaos node reconciler).
const (
	labelWorkflow     = "chaos-mesh.org/workflow"
	labelControlledBy = "chaos-mesh.org/controlled-by"
	chaosGroup        = "chaos-mesh.org"
	chaosVersion      = "v1alpha1"
)

// chaosKinds are the kinds kmt's Workflows spawn (chaos/mesh).
var chaosKinds = []string{"PodChaos", "NetworkChaos", "StressChaos", "TimeChaos"}

// Observed is what Chaos Mesh did for one workflow step, from the chaos
// object's status: which targets it selected and when injection and
// recovery succeeded (status.experiment.containerRecords[].events).
type Observed struct {
	Template string // the Workflow template, "fault-<name>"
	Object   string // kind/name of the chaos object
	Selected []string
	Start    time.Time // first successful Apply
	End      time.Time // last successful Recover
	Failures []string  // failed Apply/Recover messages
	Reason   string    // a condition that is False, with its reason
}

// MeshObserver reads the chaos objects of one Workflow.
type MeshObserver struct {
	c         client.Client
	namespace string
	workflow  string
}

// NewMeshObserver observes workflow in namespace through c.
func NewMeshObserver(c client.Client, namespace, workflow string) *MeshObserver {
	return &MeshObserver{c: c, namespace: namespace, workflow: workflow}
}

// Observe returns what each of the Workflow's chaos objects did so far,
// by template name.
func (m *MeshObserver) Observe(ctx context.Context) (map[string]*Observed, error) {
	out := map[string]*Observed{}
	for _, kind := range chaosKinds {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(schema.GroupVersionKind{Group: chaosGroup, Version: chaosVersion, Kind: kind + "List"})
		if err := m.c.List(ctx, l, client.InNamespace(m.namespace), client.MatchingLabels{labelWorkflow: m.workflow}); err != nil {
			return nil, fmt.Errorf("listing %s of Workflow %s in %s: %w", kind, m.workflow, m.namespace, err)
		}
		for i := range l.Items {
			o := &l.Items[i]
			tpl, err := m.template(ctx, o.GetLabels()[labelControlledBy])
			if err != nil {
				return nil, err
			}
			out[tpl] = merge(out[tpl], readStatus(o, tpl))
		}
	}
	return out, nil
}

// template finds the Workflow template a WorkflowNode runs.
func (m *MeshObserver) template(ctx context.Context, node string) (string, error) {
	wn := &unstructured.Unstructured{}
	wn.SetGroupVersionKind(schema.GroupVersionKind{Group: chaosGroup, Version: chaosVersion, Kind: "WorkflowNode"})
	if err := m.c.Get(ctx, client.ObjectKey{Namespace: m.namespace, Name: node}, wn); err != nil {
		return "", fmt.Errorf("reading WorkflowNode %s/%s: %w", m.namespace, node, err)
	}
	t, _, _ := unstructured.NestedString(wn.Object, "spec", "templateName")
	return t, nil
}

// readStatus reads one chaos object's status.
func readStatus(o *unstructured.Unstructured, tpl string) *Observed {
	ob := &Observed{Template: tpl, Object: o.GetKind() + "/" + o.GetName()}
	conds, _, _ := unstructured.NestedSlice(o.Object, "status", "conditions")
	for _, c := range conds {
		c, _ := c.(map[string]any)
		if c["type"] == "Selected" && c["status"] == "False" {
			ob.Reason = fmt.Sprintf("Selected=False %v", c["reason"])
		}
	}
	recs, _, _ := unstructured.NestedSlice(o.Object, "status", "experiment", "containerRecords")
	for _, r := range recs {
		r, _ := r.(map[string]any)
		if id, ok := r["id"].(string); ok {
			ob.Selected = append(ob.Selected, id)
		}
		evs, _ := r["events"].([]any)
		for _, e := range evs {
			e, _ := e.(map[string]any)
			ts, _ := time.Parse(time.RFC3339, fmt.Sprint(e["timestamp"]))
			switch {
			case e["type"] == "Failed":
				ob.Failures = append(ob.Failures, fmt.Sprintf("%v %v: %v", e["operation"], r["id"], e["message"]))
			case e["operation"] == "Apply" && !ts.IsZero() && (ob.Start.IsZero() || ts.Before(ob.Start)):
				ob.Start = ts
			case e["operation"] == "Recover" && ts.After(ob.End):
				ob.End = ts
			}
		}
	}
	sort.Strings(ob.Selected)
	return ob
}

func merge(a, b *Observed) *Observed {
	if a == nil {
		return b
	}
	a.Object += "," + b.Object
	a.Selected = append(a.Selected, b.Selected...)
	if !b.Start.IsZero() && (a.Start.IsZero() || b.Start.Before(a.Start)) {
		a.Start = b.Start
	}
	if b.End.After(a.End) {
		a.End = b.End
	}
	a.Failures = append(a.Failures, b.Failures...)
	if a.Reason == "" {
		a.Reason = b.Reason
	}
	return a
}

// FaultName is the scenario fault a template injects ("fault-<name>").
func FaultName(template string) (string, bool) {
	return strings.CutPrefix(template, "fault-")
}
