package agent

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/chaos/mesh"
	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Collector gathers the fault records of one run (both clusters' agents)
// for the validator.
type Collector struct {
	mu    sync.Mutex
	recs  map[string]map[string]Record // by fault name, then cluster: the latest
	done  map[string]Record            // by cluster
	purge func(topic string, logStart map[int]int64)
	wake  chan struct{}
}

// NewCollector calls onPurge (may be nil) for each purge record as it
// arrives, so the validator knows which missing records the source itself
// deleted.
func NewCollector(onPurge func(topic string, logStart map[int]int64)) *Collector {
	return &Collector{recs: map[string]map[string]Record{}, done: map[string]Record{}, purge: onPurge, wake: make(chan struct{}, 1)}
}

// Add takes one record (Read's callback).
func (c *Collector) Add(r Record) {
	c.mu.Lock()
	if r.Done {
		c.done[r.Cluster] = r
	} else {
		if c.recs[r.Fault] == nil {
			c.recs[r.Fault] = map[string]Record{}
		}
		c.recs[r.Fault][r.Cluster] = r // a final record follows a live one
	}
	c.mu.Unlock()
	if r.LogStart != nil && c.purge != nil {
		c.purge(r.Topic, r.LogStart)
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Wait waits until both clusters' agents sent their done record, at most
// timeout; it reports which never did.
func (c *Collector) Wait(ctx context.Context, timeout time.Duration) []string {
	deadline := time.After(timeout)
	for {
		if missing := c.missing(); len(missing) == 0 {
			return nil
		}
		select {
		case <-c.wake:
		case <-deadline:
			return c.missing()
		case <-ctx.Done():
			return c.missing()
		}
	}
}

func (c *Collector) missing() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var m []string
	for _, cl := range mesh.Clusters {
		if _, ok := c.done[string(cl)]; !ok {
			m = append(m, string(cl))
		}
	}
	return m
}

// Faults is the report's fault list: one entry per timeline fault, from
// every cluster's record of it. A fault with no record from a cluster it
// acts in, one never in force, one that failed, or one in force only
// outside the load [loadStart, loadEnd] carries an Error, which the
// verdict counts: never a verdict "under fault" for a fault that did not
// happen.
func (c *Collector) Faults(s *scenarios.Scenario, loadStart, loadEnd time.Time) []report.Fault {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []report.Fault
	for _, f := range s.Spec.Timeline {
		rf := report.Fault{Name: f.Name, Kind: string(f.Kind)}
		var errs []string
		var recs []Record
		for _, r := range c.recs[f.Name] {
			recs = append(recs, r)
		}
		sort.Slice(recs, func(i, j int) bool { return recs[i].Cluster < recs[j].Cluster })
		for _, cl := range expectedClusters(f) {
			if !hasCluster(recs, cl) {
				errs = append(errs, fmt.Sprintf("[%s] no record from the %s cluster's fault agent: it did not report this fault (see its Job's logs)", cl, cl))
			}
		}
		for _, r := range recs {
			if _, ok := c.done[r.Cluster]; !ok {
				errs = append(errs, "["+r.Cluster+"] its fault agent did not finish (no done record): what the fault really did is not known")
			}
			for _, a := range r.Actions {
				rf.Actions = append(rf.Actions, "["+r.Cluster+"] "+a)
			}
			switch {
			case r.Error != "":
				errs = append(errs, "["+r.Cluster+"] "+r.Error)
			case r.Start.IsZero():
				errs = append(errs, "["+r.Cluster+"] never in force")
			case !r.End.IsZero() && (r.End.Before(loadStart) || (!loadEnd.IsZero() && r.Start.After(loadEnd))):
				errs = append(errs, fmt.Sprintf("[%s] in force from %s to %s, outside the load (%s to %s)", r.Cluster, r.Start.Format(time.RFC3339), r.End.Format(time.RFC3339), loadStart.Format(time.RFC3339), loadEnd.Format(time.RFC3339)))
			}
			if !r.Start.IsZero() && (rf.Start.IsZero() || r.Start.Before(rf.Start)) {
				rf.Start = r.Start
			}
			if r.End.After(rf.End) {
				rf.End = r.End
			}
		}
		rf.Error = strings.Join(errs, "; ")
		out = append(out, rf)
	}
	return out
}

// expectedClusters are the clusters whose agents answer for f (mirror in
// the target, as the charts place it).
func expectedClusters(f scenarios.Fault) []string {
	if !f.Kind.Supports(scenarios.BackendKubernetes) {
		return []string{string(mesh.Target)}
	}
	cs, err := mesh.Placements(f, mesh.DefaultParams())
	if err != nil {
		return nil
	}
	var out []string
	for _, c := range cs {
		out = append(out, string(c))
	}
	return out
}

func hasCluster(recs []Record, cl string) bool {
	for _, r := range recs {
		if r.Cluster == cl {
			return true
		}
	}
	return false
}
