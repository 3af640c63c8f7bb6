package clusterrun

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ChaosGroup is the API group of every Chaos Mesh kind.
const ChaosGroup = "chaos-mesh.org"

// ChaosKinds are the Chaos Mesh kinds kmt creates or may find mid-fault
// (Workflows and Schedules first: deleting them stops new children).
var ChaosKinds = []string{
	"Workflow", "Schedule", "WorkflowNode",
	"PodChaos", "NetworkChaos", "StressChaos", "TimeChaos",
	"IOChaos", "HTTPChaos", "DNSChaos",
}

// LabelFaultAgent marks the Roles granting kmt's fault agent pod exec
// (value "exec"): like Chaos Mesh objects, they need the namespace's opt-in.
const LabelFaultAgent = "kmt.dev/fault-agent"

// IsChaos reports whether an object is a Chaos Mesh object.
func IsChaos(u *unstructured.Unstructured) bool {
	return u.GroupVersionKind().Group == ChaosGroup
}

// ChaosRefusedError says which namespaces lack the kmt.dev/chaos=allowed
// opt-in, with the commands that grant it.
type ChaosRefusedError struct {
	Side Side
	// Namespaces that chaos would be created in or aimed at, each with the
	// objects that need it.
	Namespaces map[string][]string
}

func (e *ChaosRefusedError) Error() string {
	var nss []string
	for ns := range e.Namespaces {
		nss = append(nss, ns)
	}
	sort.Strings(nss)
	var b strings.Builder
	fmt.Fprintf(&b, "%s cluster: refusing to create Chaos Mesh objects: ", e.Side.Name())
	for i, ns := range nss {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "namespace %q is not labelled %s=%s (needed by %s)", ns, LabelChaos, ChaosAllowed, strings.Join(e.Namespaces[ns], ", "))
	}
	b.WriteString(". kmt only injects faults where you opted in; to allow it run: ")
	for i, ns := range nss {
		if i > 0 {
			b.WriteString(" && ")
		}
		b.WriteString(e.LabelCommand(ns))
	}
	return b.String()
}

// LabelCommand is the kubectl command that opts a namespace in.
func (e *ChaosRefusedError) LabelCommand(ns string) string {
	ctx := ""
	if e.Side.Context != "" {
		ctx = " --context " + e.Side.Context
	}
	return fmt.Sprintf("kubectl%s label namespace %s %s=%s", ctx, ns, LabelChaos, ChaosAllowed)
}

// chaosNamespaces returns, for each Chaos Mesh object, the namespaces it
// lives in and the namespaces its selectors aim at (any "selector" map's
// "namespaces" list, at any depth: Workflow templates and NetworkChaos
// targets nest them). A selector without namespaces means the object's own
// namespace in Chaos Mesh, which is already counted.
func chaosNamespaces(objs []*unstructured.Unstructured, defaultNS string) map[string][]string {
	need := map[string][]string{}
	add := func(ns, who string) {
		for _, w := range need[ns] {
			if w == who {
				return
			}
		}
		need[ns] = append(need[ns], who)
	}
	for _, o := range objs {
		if o.GetLabels()[LabelFaultAgent] == "exec" {
			// The fault agent's pod exec (process pause) aims at its namespace.
			ns := o.GetNamespace()
			if ns == "" {
				ns = defaultNS
			}
			add(ns, o.GetKind()+"/"+o.GetName())
			continue
		}
		if !IsChaos(o) {
			continue
		}
		who := o.GetKind() + "/" + o.GetName()
		ns := o.GetNamespace()
		if ns == "" {
			ns = defaultNS
		}
		add(ns, who)
		walkSelectors(o.Object, false, func(n string) { add(n, who) })
	}
	return need
}

func walkSelectors(v any, inSelector bool, found func(string)) {
	switch t := v.(type) {
	case map[string]any:
		for k, c := range t {
			if inSelector && k == "namespaces" {
				if list, ok := c.([]any); ok {
					for _, n := range list {
						if s, ok := n.(string); ok && s != "" {
							found(s)
						}
					}
				}
				continue
			}
			walkSelectors(c, k == "selector", found)
		}
	case []any:
		for _, c := range t {
			walkSelectors(c, false, found)
		}
	}
}

// CheckChaosAllowed returns a *ChaosRefusedError when any Chaos Mesh object
// in objs would be created in, or aimed at, a namespace of side that is not
// labelled kmt.dev/chaos=allowed (a missing namespace is not labelled).
// Objects without a namespace go to defaultNS.
func CheckChaosAllowed(ctx context.Context, c client.Client, side Side, objs []*unstructured.Unstructured, defaultNS string) error {
	need := chaosNamespaces(objs, defaultNS)
	refused := map[string][]string{}
	for ns, who := range need {
		var n corev1.Namespace
		err := c.Get(ctx, client.ObjectKey{Name: ns}, &n)
		switch {
		case apierrors.IsNotFound(err):
			refused[ns] = who
		case err != nil:
			return fmt.Errorf("%s cluster: reading namespace %s to check the %s opt-in: %w", side.Name(), ns, LabelChaos, err)
		case n.Labels[LabelChaos] != ChaosAllowed:
			refused[ns] = who
		}
	}
	if len(refused) > 0 {
		return &ChaosRefusedError{Side: side, Namespaces: refused}
	}
	return nil
}
