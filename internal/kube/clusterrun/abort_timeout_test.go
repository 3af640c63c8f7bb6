package clusterrun

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestAbortNeverClaimsCleanWhenCutShort: an object of the run held by a
// finalizer stays; an abort whose time runs out must say so, also when
// the timeout cuts a sweep short before it listed the object's kind.
// Before, a sweep cut short returned what it had found so far (often
// nothing) as if complete, and abort reported "nothing of the run is
// left" with the object still there (TestRunLifecycleOnRealAPIServer
// failed this way under load). Here the sweep's context has already
// ended: it lists nothing, and the answer must be an error, never nil.
func TestAbortNeverClaimsCleanWhenCutShort(t *testing.T) {
	e := apiServer(t)
	ctx := context.Background()
	ns := namespace(t, e, "abort-cut", true)
	const run = "run-abort-cut"
	held := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "held", Namespace: ns,
		Labels: map[string]string{LabelRun: run, LabelManagedBy: ManagedByKmt}, Finalizers: []string{"kmt.dev/test-hold"}}}
	if err := e.Client.Create(ctx, held); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.Client.Patch(ctx, held, client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`)))
		_ = e.Client.Delete(ctx, held)
	})
	src, _ := sides(e, ns, ns)
	st, err := connect(src)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := Selector(run)
	if err != nil {
		t.Fatal(err)
	}
	a := &aborter{s: st, sel: sel, runID: run, o: AbortOptions{Timeout: 10 * time.Second, Logger: quietLogger()}, res: &AbortResult{}, seen: sets.New[string]()}
	if err := a.discover(); err != nil {
		t.Fatal(err)
	}
	// A whole sweep finds it, deletes it, and it stays (the finalizer):
	// the abort times out naming it. 10 s, not less: at least one whole
	// sweep (a list per served kind) must fit on a loaded machine, or the
	// message could not name the object; the test waits the whole time.
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = a.sweepUntilGone(wctx, quietLogger())
	cancel()
	if err == nil || !strings.Contains(err.Error(), "ConfigMap/held") || !strings.Contains(err.Error(), "held by finalizers") {
		t.Fatalf("abort with a held object: err = %v, want it named with its finalizer", err)
	}
	// A sweep with no time left lists nothing: still an error.
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := a.sweepUntilGone(done, quietLogger()); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("abort cut short before any whole sweep: err = %v, want a timeout error, not 'nothing left'", err)
	}
}
