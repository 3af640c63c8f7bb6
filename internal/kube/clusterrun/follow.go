package clusterrun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
)

// ErrNoReport: the validator has not written its report yet.
var ErrNoReport = errors.New("no report yet: the validator has not written its report ConfigMap")

// Report is the validator's verdict as found in a cluster.
type Report struct {
	Cluster Role
	// ConfigMap is namespace/name of the ConfigMap it was read from.
	ConfigMap string
	// Raw is report.json exactly as the validator wrote it.
	Raw []byte
	// Report is Raw decoded (internal/report's schema).
	Report *report.Report
}

// Verdict is pass, fail or incomplete.
func (r *Report) Verdict() string { return r.Report.Verdict }

// ChaosState is one Chaos Mesh object seen while following.
type ChaosState struct {
	Cluster   Role
	Kind      string
	Namespace string
	Name      string
	// Phase: Chaos Mesh's desired phase (Run, Stop), or Accomplished for a
	// finished Workflow, or Pending before the controller saw it.
	Phase  string
	Active bool
}

// JobState is one kmt Job (loadgen, validator) seen while following.
type JobState struct {
	Cluster                   Role
	Name                      string
	Active, Succeeded, Failed int32
	// FailedReason is the Job's Failed condition message, if any.
	FailedReason string
}

// Progress is one look at a running scenario.
type Progress struct {
	Elapsed time.Duration
	// Phase is the validator's current phase (warmup, steady, fault:<n>,
	// recovery, drain), "" before it reports one.
	Phase string
	// Counts are the live numbers of the progress ConfigMap (received,
	// lost, duplicate, ...), by name.
	Counts map[string]float64
	Chaos  []ChaosState
	Jobs   []JobState
	// Done is set once the report exists.
	Done bool
}

// Line formats the progress as one line for a terminal.
func (p Progress) Line() string {
	var b strings.Builder
	fmt.Fprintf(&b, "[%6s] phase=%s", p.Elapsed.Round(time.Second), orDash(p.Phase))
	for _, k := range slices.Sorted(maps.Keys(p.Counts)) {
		fmt.Fprintf(&b, " %s=%g", k, p.Counts[k])
	}
	var active []string
	for _, c := range p.Chaos {
		if c.Active {
			active = append(active, fmt.Sprintf("%s:%s/%s", c.Cluster, c.Kind, c.Name))
		}
	}
	fmt.Fprintf(&b, " faults=%d", len(active))
	if len(active) > 0 {
		fmt.Fprintf(&b, "(%s)", strings.Join(active, ","))
	}
	for _, j := range p.Jobs {
		fmt.Fprintf(&b, " job %s:%s active=%d ok=%d failed=%d", j.Cluster, j.Name, j.Active, j.Succeeded, j.Failed)
	}
	if p.Done {
		b.WriteString(" done")
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// JobFailedError: a kmt Job of the run failed, so no verdict will come.
type JobFailedError struct {
	Side Side
	Job  JobState
}

func (e *JobFailedError) Error() string {
	return fmt.Sprintf("%s cluster: Job %s of the run failed (%s); its logs: kubectl%s -n %s logs job/%s",
		e.Side.Name(), e.Job.Name, orDash(e.Job.FailedReason), contextFlag(e.Side.Context), e.Side.Namespace, e.Job.Name)
}

func (r *Runner) runSelector() labels.Selector {
	sel, _ := Selector(r.o.RunID) // validated in New
	return sel
}

// configMaps lists the run's ConfigMaps in a side's namespace.
func (r *Runner) configMaps(ctx context.Context, s *sideState) ([]corev1.ConfigMap, error) {
	var l corev1.ConfigMapList
	if err := s.c.List(ctx, &l, client.InNamespace(s.Namespace), client.MatchingLabelsSelector{Selector: r.runSelector()}); err != nil {
		return nil, fmt.Errorf("%s cluster: listing ConfigMaps of run %s in %s: %w", s.Name(), r.o.RunID, s.Namespace, err)
	}
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Name < l.Items[j].Name })
	return l.Items, nil
}

// Fetch returns the report the validator wrote (a ConfigMap of the run
// with the key report.json, target cluster first), or ErrNoReport.
func (r *Runner) Fetch(ctx context.Context) (*Report, error) {
	for _, s := range []*sideState{r.sides[1], r.sides[0]} {
		cms, err := r.configMaps(ctx, s)
		if err != nil {
			return nil, err
		}
		for _, cm := range cms {
			raw, ok := cm.Data[DataReport]
			if !ok {
				if b, ok2 := cm.BinaryData[DataReport]; ok2 {
					raw, ok = string(b), true
				}
			}
			if !ok {
				continue
			}
			var rep report.Report
			if err := json.Unmarshal([]byte(raw), &rep); err != nil {
				return nil, fmt.Errorf("%s cluster: ConfigMap %s/%s key %s is not a kmt report: %w", s.Name(), cm.Namespace, cm.Name, DataReport, err)
			}
			switch rep.Verdict {
			case report.Pass, report.Fail, report.Incomplete:
			default:
				return nil, fmt.Errorf("%s cluster: ConfigMap %s/%s: report verdict %q is not one of %s, %s, %s", s.Name(), cm.Namespace, cm.Name, rep.Verdict, report.Pass, report.Fail, report.Incomplete)
			}
			if rep.Run != "" && rep.Run != r.o.RunID {
				return nil, fmt.Errorf("%s cluster: ConfigMap %s/%s is labelled run %s but its report is of run %s", s.Name(), cm.Namespace, cm.Name, r.o.RunID, rep.Run)
			}
			return &Report{Cluster: s.Role, ConfigMap: cm.Namespace + "/" + cm.Name, Raw: []byte(raw), Report: &rep}, nil
		}
	}
	return nil, ErrNoReport
}

// progressDoc is the validator's progress.json: a phase and numbers. Other
// keys are ignored; numeric top-level keys count as counts too.
type progressDoc struct {
	Phase  string             `json:"phase"`
	Counts map[string]float64 `json:"counts"`
}

// Look takes one look at both clusters: phase and counts from the progress
// ConfigMap, the run's Chaos Mesh objects and Jobs, whether the report is
// there. A failed Job is returned as a *JobFailedError next to the progress.
func (r *Runner) Look(ctx context.Context) (Progress, error) {
	var p Progress
	var failed error
	for _, s := range r.sides {
		cms, err := r.configMaps(ctx, s)
		if err != nil {
			return p, err
		}
		for _, cm := range cms {
			if _, ok := cm.Data[DataReport]; ok {
				p.Done = true
			}
			raw, ok := cm.Data[DataProgress]
			if !ok {
				continue
			}
			var doc progressDoc
			if err := json.Unmarshal([]byte(raw), &doc); err != nil {
				r.o.Logger.Warn("progress ConfigMap is not JSON; ignored", "cluster", s.Role, "configmap", cm.Name, "err", err)
				continue
			}
			var flat map[string]any
			_ = json.Unmarshal([]byte(raw), &flat)
			if doc.Phase != "" {
				p.Phase = doc.Phase
			}
			if p.Counts == nil {
				p.Counts = map[string]float64{}
			}
			for k, v := range doc.Counts {
				p.Counts[k] = v
			}
			for k, v := range flat {
				if f, ok := v.(float64); ok {
					p.Counts[k] = f
				}
			}
		}
		chaos, err := r.chaosStates(ctx, s)
		if err != nil {
			return p, err
		}
		p.Chaos = append(p.Chaos, chaos...)
		var jobs batchv1.JobList
		if err := s.c.List(ctx, &jobs, client.InNamespace(s.Namespace), client.MatchingLabelsSelector{Selector: r.runSelector()}); err != nil {
			return p, fmt.Errorf("%s cluster: listing Jobs of run %s: %w", s.Name(), r.o.RunID, err)
		}
		for _, j := range jobs.Items {
			js := JobState{Cluster: s.Role, Name: j.Name, Active: j.Status.Active, Succeeded: j.Status.Succeeded, Failed: j.Status.Failed}
			for _, c := range j.Status.Conditions {
				if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
					js.FailedReason = strings.TrimSpace(c.Reason + ": " + c.Message)
					if failed == nil {
						failed = &JobFailedError{Side: s.Side, Job: js}
					}
				}
			}
			p.Jobs = append(p.Jobs, js)
		}
	}
	return p, failed
}

func (r *Runner) chaosStates(ctx context.Context, s *sideState) ([]ChaosState, error) {
	var out []ChaosState
	for _, kind := range ChaosKinds {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(schema.GroupVersionKind{Group: ChaosGroup, Version: "v1alpha1", Kind: kind + "List"})
		err := s.c.List(ctx, l, client.InNamespace(s.Namespace), client.MatchingLabelsSelector{Selector: r.runSelector()})
		if err != nil {
			if isNoKind(err) {
				continue
			}
			return nil, fmt.Errorf("%s cluster: listing %s of run %s: %w", s.Name(), kind, r.o.RunID, err)
		}
		for _, u := range l.Items {
			st := ChaosState{Cluster: s.Role, Kind: kind, Namespace: u.GetNamespace(), Name: u.GetName()}
			st.Phase, st.Active = chaosPhase(&u)
			out = append(out, st)
		}
	}
	return out, nil
}

// chaosPhase reads where a Chaos Mesh object is: single faults report
// status.experiment.desiredPhase (Run while injected), Workflows a
// condition Accomplished once done.
func chaosPhase(u *unstructured.Unstructured) (string, bool) {
	if u.GetDeletionTimestamp() != nil {
		return "Deleting", true // still recovering the fault
	}
	if u.GetKind() == "Workflow" {
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Accomplished" && m["status"] == "True" {
				return "Accomplished", false
			}
		}
		return "Running", true
	}
	if u.GetKind() == "Schedule" {
		return "Scheduled", true
	}
	ph, found, _ := unstructured.NestedString(u.Object, "status", "experiment", "desiredPhase")
	if !found || ph == "" {
		return "Pending", true
	}
	return ph, ph == "Run"
}

// Follow polls both clusters every PollInterval, calls progress with each
// look whose line changed, and returns the report once the validator wrote
// it. It stops early with a *JobFailedError when a Job of the run failed,
// or with ctx's error.
func (r *Runner) Follow(ctx context.Context, progress func(Progress)) (*Report, error) {
	start := time.Now()
	last := ""
	t := time.NewTicker(r.o.PollInterval)
	defer t.Stop()
	for {
		p, err := r.Look(ctx)
		p.Elapsed = time.Since(start)
		var jf *JobFailedError
		if err != nil && !errors.As(err, &jf) {
			return nil, err
		}
		if progress != nil {
			if line := lineWithoutElapsed(p); line != last {
				last = line
				progress(p)
			}
		}
		if p.Done {
			return r.Fetch(ctx)
		}
		if jf != nil {
			return nil, jf
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("following run %s: %w (the run goes on in the clusters; `kmt abort --run %s` stops it)", r.o.RunID, ctx.Err(), r.o.RunID)
		case <-t.C:
		}
	}
}

func lineWithoutElapsed(p Progress) string {
	p.Elapsed = 0
	return p.Line()
}
