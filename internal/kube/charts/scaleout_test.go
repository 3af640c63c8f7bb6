package charts

import (
	"context"
	"slices"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/action"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// TestScaleOutInstallOnRealAPIServer installs baseline with 3 loadgen pods
// (role=source) and 2 validator shards plus the merge (role=target) into a
// real kube-apiserver: the Indexed Jobs, the launch id from the Job's uid
// label and the shard/merge arguments are accepted and stored as rendered.
// With the defaults (1 and 1) there is one loadgen pod, no shards Job and
// no merge.
func TestScaleOutInstallOnRealAPIServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver (built on first use)")
	}
	env, helmIn := helmEnv(t, "src", "dst", "src1", "dst1", "kafka")
	ctx := context.Background()
	job := func(ns, name string) *batchv1.Job {
		t.Helper()
		j := &batchv1.Job{}
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, j); err != nil {
			t.Fatalf("Job %s/%s: %v", ns, name, err)
		}
		return j
	}
	install := func(ns, role, run string, instances, shards int) {
		t.Helper()
		vals := values(role, run)
		vals["loadgen"] = map[string]any{"instances": instances}
		vals["validator"] = map[string]any{"shards": shards}
		in := action.NewInstall(helmIn(ns))
		in.ReleaseName, in.Namespace, in.Timeout = "kmt-baseline", ns, time.Minute
		if _, err := in.Run(loadChart(t, "baseline"), vals); err != nil {
			t.Fatalf("install role=%s with %d loadgens, %d shards: %v", role, instances, shards, err)
		}
	}
	indexed := func(j *batchv1.Job, n int32) {
		t.Helper()
		if j.Spec.CompletionMode == nil || *j.Spec.CompletionMode != batchv1.IndexedCompletion || *j.Spec.Completions != n || *j.Spec.Parallelism != n {
			t.Errorf("Job %s: completion mode %v, completions %v, parallelism %v; want Indexed, %d, %d", j.Name, j.Spec.CompletionMode, *j.Spec.Completions, *j.Spec.Parallelism, n, n)
		}
	}

	install("src", "source", "scale-a", 3, 2)
	lg := job("src", "kmt-baseline-loadgen")
	indexed(lg, 3)
	c := lg.Spec.Template.Spec.Containers[0]
	if i := slices.Index(c.Args, "--instances"); i < 0 || c.Args[i+1] != "3" || !slices.Contains(c.Args, "--launch-id") {
		t.Errorf("loadgen args %v: want --instances 3 and --launch-id", c.Args)
	}
	launch := false
	for _, e := range c.Env {
		if e.Name == "KMT_LAUNCH_ID" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.labels['batch.kubernetes.io/controller-uid']" {
			launch = true
		}
	}
	if !launch {
		t.Errorf("loadgen env %v: want KMT_LAUNCH_ID from the Job's uid label", c.Env)
	}

	install("dst", "target", "scale-a", 3, 2)
	shards := job("dst", "kmt-baseline-validator-shards")
	indexed(shards, 2)
	sa := shards.Spec.Template.Spec.Containers[0].Args
	if i := slices.Index(sa, "--shards"); i < 0 || sa[i+1] != "2" || slices.Contains(sa, "--merge") || slices.Contains(sa, "--report-configmap") {
		t.Errorf("shard args %v: want --shards 2, no merge, no report", sa)
	}
	ma := job("dst", "kmt-baseline-validator").Spec.Template.Spec.Containers[0].Args
	if i := slices.Index(ma, "--shards"); i < 0 || ma[i+1] != "2" || !slices.Contains(ma, "--merge") || !slices.Contains(ma, "--report-configmap") {
		t.Errorf("merge args %v: want --merge --shards 2 and the report ConfigMap", ma)
	}

	install("src1", "source", "scale-b", 1, 1)
	indexed(job("src1", "kmt-baseline-loadgen"), 1)
	install("dst1", "target", "scale-b", 1, 1)
	if a := job("dst1", "kmt-baseline-validator").Spec.Template.Spec.Containers[0].Args; slices.Contains(a, "--merge") {
		t.Errorf("default validator args %v: no merge with one validator", a)
	}
	err := env.Client.Get(ctx, client.ObjectKey{Namespace: "dst1", Name: "kmt-baseline-validator-shards"}, &batchv1.Job{})
	if err == nil {
		t.Error("a shards Job exists with validator.shards 1")
	}
}
