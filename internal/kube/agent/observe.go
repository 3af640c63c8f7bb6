package agent

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/chaos/mesh"
)

// observeSlack is how long after the last planned fault end the agent keeps
// reading Chaos Mesh (the Workflow's clock starts at install, a few seconds
// from the load's; recovery takes a moment).
const observeSlack = mesh.ContainerSlack + 90*time.Second

// observe reads, until every Chaos Mesh fault of idx has ended or the
// timeline is long over, what this cluster's Workflow injected; one record
// per index.
func (cfg Config) observe(ctx context.Context, duties []duty, idx []int, start time.Time, g *gauges, log *slog.Logger) map[int]Record {
	var last time.Duration
	for _, i := range idx {
		last = max(last, duties[i].f.End())
	}
	deadline := start.Add(last + observeSlack)
	seen := map[string]*Observed{}
	var readErr error
	for {
		if cfg.Kube != nil {
			obs, err := NewMeshObserver(cfg.Kube, cfg.Namespace, cfg.Workflow).Observe(ctx)
			readErr = err
			for tpl, o := range obs {
				seen[tpl] = o // objects vanish after recovery: keep the last view
			}
		}
		done := true
		for _, i := range idx {
			o := seen["fault-"+duties[i].f.Name]
			g.active(duties[i].f, o != nil && !o.Start.IsZero() && o.End.IsZero())
			done = done && o != nil && !o.End.IsZero()
		}
		if done || time.Now().After(deadline) || !until(ctx, time.Now().Add(cfg.Poll)) {
			break
		}
	}
	out := map[int]Record{}
	for _, i := range idx {
		f := duties[i].f
		g.active(f, false)
		out[i] = meshRecord(seen["fault-"+f.Name], cfg, readErr)
		log.Info("chaos observed", "fault", f.Name, "start", out[i].Start, "end", out[i].End, "error", out[i].Error)
	}
	return out
}

// meshRecord turns what was seen of one step into its record: a step that
// selected nothing, never injected, or failed says so.
func meshRecord(o *Observed, cfg Config, readErr error) Record {
	var r Record
	switch {
	case cfg.Kube == nil:
		r.Error = "the agent could not read Chaos Mesh objects (no Kubernetes access)"
	case o == nil && readErr != nil:
		r.Error = "reading Chaos Mesh objects: " + readErr.Error()
	case o == nil:
		r.Error = fmt.Sprintf("Chaos Mesh created no chaos object for it: is Workflow %s in namespace %s, and Chaos Mesh running?", cfg.Workflow, cfg.Namespace)
	default:
		r.Start, r.End, r.Targets = o.Start, o.End, o.Selected
		r.Actions = []string{fmt.Sprintf("%s injected into %d target(s)", o.Object, len(o.Selected))}
		switch {
		case len(o.Selected) == 0:
			r.Error = fmt.Sprintf("%s selected no pod (%s): the fault hit nothing; check the chart's targets values", o.Object, o.Reason)
		case o.Start.IsZero():
			r.Error = fmt.Sprintf("%s selected %s but never injected: %s", o.Object, strings.Join(o.Selected, ", "), strings.Join(o.Failures, "; "))
		case len(o.Failures) > 0:
			r.Error = "Chaos Mesh reported failures: " + strings.Join(o.Failures, "; ")
		case o.End.IsZero():
			// Recovered when the object was removed after the step's deadline.
			r.End = time.Now()
			r.Actions = append(r.Actions, "recovery not seen in the status (object removed); end is when the agent stopped watching")
		}
	}
	return r
}
