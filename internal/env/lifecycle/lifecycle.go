// Package lifecycle is what the clusters kmt starts (internal/env/embedded,
// internal/env/apachekafka) share about their own life: one fault or
// lifecycle change (Stop, Restart, Close) at a time, and Close happens once.
package lifecycle

import (
	"sync"
	"sync/atomic"
)

// Ops serialises a cluster's faults and lifecycle changes and remembers
// that it was closed. The zero value is ready.
type Ops struct {
	mu     sync.Mutex
	closed atomic.Bool
}

// Lock waits for the fault or change in progress to end; Unlock ends this
// one.
func (o *Ops) Lock()   { o.mu.Lock() }
func (o *Ops) Unlock() { o.mu.Unlock() }

// Closed reports whether Close ran (or is running).
func (o *Ops) Closed() bool { return o.closed.Load() }

// Close marks the cluster closed and runs stop, once: after the fault or
// change in progress ended, with the lock held. Later calls return nil.
func (o *Ops) Close(stop func() error) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed.Swap(true) {
		return nil
	}
	return stop()
}
