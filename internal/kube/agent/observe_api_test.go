package agent

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/testenv"
)

// TestMeshObserverOnAPIServer: the objects a Chaos Mesh Workflow spawns, as
// the real CRDs store them (a WorkflowNode naming its template, a chaos
// object labelled with the node and the workflow, its status records), are
// found and read back per fault; another workflow's chaos is not.
func TestMeshObserverOnAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("needs a real kube-apiserver (internal/env/testenv)")
	}
	e := testenv.Start(t, testenv.Options{CRDs: true})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kmt"}}); err != nil {
		t.Fatal(err)
	}
	create := func(js string) {
		t.Helper()
		u := &unstructured.Unstructured{}
		if err := json.Unmarshal([]byte(js), &u.Object); err != nil {
			t.Fatal(err)
		}
		if err := e.Client.Create(ctx, u); err != nil {
			t.Fatalf("the API server rejected %s/%s: %v", u.GetKind(), u.GetName(), err)
		}
	}
	for _, wf := range []string{"kmt-wan-latency-target", "other-workflow"} {
		create(`{"apiVersion":"chaos-mesh.org/v1alpha1","kind":"WorkflowNode","metadata":{"name":"` + wf + `-fault-lat-abc","namespace":"kmt"},
			"spec":{"startTime":"2026-11-30T01:00:00Z","templateName":"fault-lat","type":"NetworkChaos","workflowName":"` + wf + `"}}`)
		create(`{"apiVersion":"chaos-mesh.org/v1alpha1","kind":"NetworkChaos","metadata":{"name":"` + wf + `-lat-1","namespace":"kmt",
			"labels":{"chaos-mesh.org/workflow":"` + wf + `","chaos-mesh.org/controlled-by":"` + wf + `-fault-lat-abc"}},
			"spec":{"action":"delay","mode":"all","selector":{"namespaces":["kafka"]},"delay":{"latency":"40ms"},"direction":"to","externalTargets":["192.0.2.1/32"]},
			"status":{"experiment":{"desiredPhase":"Run","containerRecords":[{"id":"kafka/mirror-0","selectorKey":".","phase":"Injected","injectedCount":1,"recoveredCount":0,
				"events":[{"type":"Succeeded","operation":"Apply","timestamp":"2026-11-30T01:00:10Z"}]}]}}}`)
	}
	obs, err := NewMeshObserver(e.Client, "kmt", "kmt-wan-latency-target").Observe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o := obs["fault-lat"]
	if len(obs) != 1 || o == nil {
		t.Fatalf("observed %v, want fault-lat only", obs)
	}
	if len(o.Selected) != 1 || o.Selected[0] != "kafka/mirror-0" || o.Start.Format(time.RFC3339) != "2026-11-30T01:00:10Z" || !o.End.IsZero() || o.Object != "NetworkChaos/kmt-wan-latency-target-lat-1" {
		t.Fatalf("observed %+v", o)
	}
}
