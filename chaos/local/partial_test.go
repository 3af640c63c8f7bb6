package local

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// halfPauser pauses brokers one by one and fails on node 2, as a backend
// whose second SIGSTOP fails would: node 1 is frozen when the error comes.
type halfPauser struct {
	mu     sync.Mutex
	paused map[int32]bool
}

func (h *halfPauser) Nodes() []int32                  { return []int32{1, 2, 3} }
func (h *halfPauser) LeaderNodes(string, int) []int32 { return []int32{1, 2} }
func (h *halfPauser) PauseBrokers(nodes []int32) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range nodes {
		if n == 2 {
			return errors.New("node 2: no such process")
		}
		h.paused[n] = true
	}
	return nil
}
func (h *halfPauser) ResumeBrokers(nodes []int32) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, n := range nodes {
		delete(h.paused, n)
	}
	return nil
}

// A fault that got half way (one broker paused, then an error) is still
// reverted when its window ends: nothing stays frozen for the rest of the
// run, and the record says the fault did not take effect.
func TestHalfDoneFaultIsStillReverted(t *testing.T) {
	h := &halfPauser{paused: map[int32]bool{}}
	f := fault("freeze", scenarios.BrokerPause, 0, 200*time.Millisecond, scenarios.FaultParams{Cluster: "source", Nodes: []int32{1, 2}})
	n := New(Env{Source: h, DefaultTopic: "orders"}, []scenarios.Fault{f})
	n.Run(context.Background(), time.Now())
	if len(h.paused) != 0 {
		t.Fatalf("brokers %v still paused after the window", h.paused)
	}
	rec := n.Records()[0]
	if !strings.Contains(rec.Error, "node 2") {
		t.Fatalf("fault record error %q, want the injection error", rec.Error)
	}
}
