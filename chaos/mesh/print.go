package mesh

import (
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// ToYAML renders one object as a YAML document without the server-owned
// fields (status, creationTimestamp) that a generated manifest must not
// carry.
func ToYAML(obj client.Object) ([]byte, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
	}
	delete(m, "status")
	if md, ok := m["metadata"].(map[string]any); ok {
		delete(md, "creationTimestamp")
	}
	return yaml.Marshal(m)
}

// Print writes every object as a YAML stream, source cluster first. Each
// document starts with a comment naming its cluster, and carries it as the
// kmt.dev/cluster label, so `kmt render x | kubectl apply -l
// kmt.dev/cluster=target -f -` applies one side.
func Print(w io.Writer, objs map[Cluster][]client.Object) error {
	first := true
	for _, c := range Clusters {
		for _, o := range objs[c] {
			if got := o.GetLabels()[LabelCluster]; got != string(c) {
				return fmt.Errorf("object %s is listed under cluster %s but labelled %s=%q", o.GetName(), c, LabelCluster, got)
			}
			b, err := ToYAML(o)
			if err != nil {
				return err
			}
			if !first {
				if _, err := io.WriteString(w, "---\n"); err != nil {
					return err
				}
			}
			first = false
			if _, err := fmt.Fprintf(w, "# cluster: %s\n%s", c, b); err != nil {
				return err
			}
		}
	}
	return nil
}
