package local

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/kmt-dev/kafka-mirror-tester/internal/report"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// Family is everything one group of related fault kinds needs, in one file
// (brokers.go, cluster.go, mirror.go, wan.go, topics.go, metadata.go): which kinds it
// performs, which capabilities of a backend it asks for, how it injects a
// fault and how it recovers from it.
type Family struct {
	Name  string
	Kinds []scenarios.FaultKind
	// Plan resolves the capabilities f needs from env and acts on nothing:
	// a missing one is a *scenarios.UnsupportedError. It runs before the
	// run starts (Check) and again when the fault's window opens.
	Plan func(env Env, f scenarios.Fault) (Inject, error)
}

// Inject performs the start of a fault and returns how to recover from it.
// It may return a Recover together with an error when it got half way (the
// mirror stopped but the purge failed): the Recover still runs at the end
// of the window and is the fault's cleanup.
type Inject func(ctx context.Context, a *Act) (Recover, error)

// Recover ends a fault. It runs when the fault's window closes, or at once
// when the run is interrupted. nil means the fault needs no recovery (a
// partition count only grows).
type Recover func(ctx context.Context) error

// families is the registry: every fault kind the local nemesis performs
// belongs to exactly one family. Kinds in no family (the Kubernetes-only
// ones) are refused with an *scenarios.UnsupportedError.
var families = []Family{brokerFaults, clusterRestartFaults, mirrorFaults, wanFaults, topicFaults, metadataFaults}

// Families lists the registry, for documentation and tests.
func Families() []Family { return append([]Family(nil), families...) }

// Lookup returns the family that performs kind.
func Lookup(kind scenarios.FaultKind) (Family, bool) {
	for _, fam := range families {
		for _, k := range fam.Kinds {
			if k == kind {
				return fam, true
			}
		}
	}
	return Family{}, false
}

// Plan resolves f against env: how to inject it, or why env cannot.
func Plan(env Env, f scenarios.Fault) (Inject, error) {
	fam, ok := Lookup(f.Kind)
	if !ok {
		return nil, env.refuse(f, "")
	}
	return fam.Plan(env, f)
}

// Check plans every fault without acting: nil when env can perform them
// all, else one error per fault it cannot.
func Check(env Env, faults []scenarios.Fault) error {
	var errs []error
	for _, f := range faults {
		if _, err := Plan(env, f); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Act is what an Inject (and the Recover it returns) may use of the
// nemesis running it: the action log of its fault and the mirror lock.
type Act struct {
	n     *Nemesis
	fault scenarios.Fault
}

// Did records an action of the fault (in the report and the log).
func (a *Act) Did(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	a.n.env.Logger.Info("fault action", "fault", a.fault.Name, "action", msg)
	a.n.note(a.fault.Name, func(r *report.Fault) { r.Actions = append(r.Actions, msg) })
}

// LockMirror serialises mirror state changes of overlapping faults; call
// the returned function to unlock.
func (a *Act) LockMirror() (unlock func()) {
	a.n.mirrorMu.Lock()
	return a.n.mirrorMu.Unlock
}

// Topic is the source topic a topic or broker fault acts on: the one its
// params name, else the run's first topic.
func (a *Act) Topic() string {
	if a.fault.Params.Topic != "" {
		return a.fault.Params.Topic
	}
	return a.n.env.DefaultTopic
}

// counter is a total shared between a fault's goroutines.
type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) add(k int) {
	c.mu.Lock()
	c.n += k
	c.mu.Unlock()
}

func (c *counter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}
