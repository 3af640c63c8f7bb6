package local

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/kmt-dev/kafka-mirror-tester/internal/env/embedded"
	"github.com/kmt-dev/kafka-mirror-tester/internal/env/wan"
	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// env is a real embedded source cluster behind a real WAN link, plus an
// echo server behind the same link to observe the WAN from outside.
type env struct {
	src  *embedded.Cluster
	link *wan.Link
	echo string // front address of the echo server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	link := wan.NewLink(log, nil)
	t.Cleanup(func() { link.Close() })
	ctx := context.Background()
	src, err := embedded.Start(ctx, embedded.Options{Name: "source", Brokers: 3, DataDir: t.TempDir(), Front: link.Front, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	if err := src.CreateTopic(ctx, "orders", 6); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	front, err := link.Front(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return &env{src: src, link: link, echo: front}
}

// wanAnswers reports whether a byte sent through the WAN comes back within d.
func (e *env) wanAnswers(t *testing.T, d time.Duration) bool {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.echo, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte{'x'}); err != nil {
		return false
	}
	var b [1]byte
	_, err = io.ReadFull(c, b[:])
	return err == nil
}

func (e *env) nemesis(faults []scenarios.Fault) *Nemesis {
	return New(Env{Source: e.src, WAN: e.link, DefaultTopic: "orders", Logger: slog.New(slog.DiscardHandler)}, faults)
}

func fault(name string, kind scenarios.FaultKind, at, dur time.Duration, p scenarios.FaultParams) scenarios.Fault {
	return scenarios.Fault{Name: name, Kind: kind, At: scenarios.Duration(at), Duration: scenarios.Duration(dur), Params: p}
}

// Faults really happen during their window and end by themselves on their
// timer: a killed broker is gone then back, a partitioned WAN carries
// nothing then heals.
func TestFaultsHappenAndEndOnTheirTimer(t *testing.T) {
	e := newEnv(t)
	if !e.wanAnswers(t, 2*time.Second) {
		t.Fatal("the WAN does not carry bytes before any fault")
	}
	n := e.nemesis([]scenarios.Fault{
		fault("kill", scenarios.BrokerKill, 100*time.Millisecond, 1500*time.Millisecond, scenarios.FaultParams{Cluster: "source", Brokers: 1}),
		fault("cut", scenarios.WANPartition, 100*time.Millisecond, 1500*time.Millisecond, scenarios.FaultParams{}),
	})
	done := make(chan struct{})
	t0 := time.Now()
	go func() { n.Run(context.Background(), t0); close(done) }()

	time.Sleep(600 * time.Millisecond)
	if alive := len(e.src.AliveNodes()); alive != 2 {
		t.Errorf("during broker-kill: %d brokers alive, want 2", alive)
	}
	if e.wanAnswers(t, 500*time.Millisecond) {
		t.Error("during wan-partition: a byte crossed the WAN")
	}
	if a := n.Active(); strings.Join(a, ",") != "cut,kill" {
		t.Errorf("active faults %v, want [cut kill]", a)
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("nemesis did not end 30s after its last window closed")
	}
	if alive := len(e.src.AliveNodes()); alive != 3 {
		t.Errorf("after broker-kill: %d brokers alive, want 3", alive)
	}
	if !e.wanAnswers(t, 2*time.Second) {
		t.Error("after wan-partition: the WAN still carries nothing")
	}
	for _, r := range n.Records() {
		if r.Error != "" || r.Start.IsZero() || r.End.IsZero() || len(r.Actions) != 2 {
			t.Errorf("record %+v: want start, end, two actions, no error", r)
		}
		if got := r.End.Sub(r.Start); got < 1400*time.Millisecond {
			t.Errorf("fault %s lasted %s, want about 1.5s", r.Name, got)
		}
	}
}

// An interrupted run reverts every active fault at once (the window is an
// hour long) and never starts faults that were still ahead.
func TestInterruptRevertsActiveFaults(t *testing.T) {
	e := newEnv(t)
	n := e.nemesis([]scenarios.Fault{
		fault("kill", scenarios.BrokerKill, 0, time.Hour, scenarios.FaultParams{Cluster: "source", Nodes: []int32{1}}),
		fault("pause", scenarios.BrokerPause, 0, time.Hour, scenarios.FaultParams{Cluster: "source", Nodes: []int32{2}}),
		fault("cut", scenarios.WANPartition, 0, time.Hour, scenarios.FaultParams{}),
		fault("later", scenarios.WANLatency, time.Hour, time.Minute, scenarios.FaultParams{Latency: scenarios.Duration(time.Second)}),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx, time.Now()); close(done) }()
	time.Sleep(500 * time.Millisecond)
	if alive := len(e.src.AliveNodes()); alive != 2 {
		t.Fatalf("broker-kill did not happen: %d alive", alive)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("nemesis did not return 30s after the interrupt")
	}
	if alive := len(e.src.AliveNodes()); alive != 3 {
		t.Errorf("after interrupt: %d brokers alive, want 3", alive)
	}
	if !e.wanAnswers(t, 2*time.Second) {
		t.Error("after interrupt: the WAN is still partitioned")
	}
	for _, r := range n.Records() {
		switch r.Name {
		case "later":
			if !r.Start.IsZero() || !strings.Contains(r.Error, "not started") {
				t.Errorf("fault ahead of the interrupt: %+v, want never started", r)
			}
		default:
			if r.End.IsZero() || r.Error != "" {
				t.Errorf("fault %s: %+v, want reverted without error", r.Name, r)
			}
		}
	}
}

// Faults the local backend cannot perform, or that would take the whole
// cluster down, are reported as errors on the fault, never silently skipped.
func TestRefusedFaultsAreReported(t *testing.T) {
	e := newEnv(t)
	n := e.nemesis([]scenarios.Fault{
		fault("k8s-only", scenarios.PodFailure, 0, 100*time.Millisecond, scenarios.FaultParams{}),
		fault("all-brokers", scenarios.BrokerKill, 0, 100*time.Millisecond, scenarios.FaultParams{Cluster: "source", Brokers: 3}),
		fault("no-target", scenarios.BrokerKill, 0, 100*time.Millisecond, scenarios.FaultParams{Cluster: "target", Brokers: 1}),
	})
	n.Run(context.Background(), time.Now())
	want := map[string]string{
		"k8s-only":    "cannot be performed by the local backend",
		"all-brokers": "at least one must stay up",
		"no-target":   "no target cluster under kmt's control",
	}
	for _, r := range n.Records() {
		if !strings.Contains(r.Error, want[r.Name]) {
			t.Errorf("fault %s: error %q, want it to say %q", r.Name, r.Error, want[r.Name])
		}
	}
	if alive := len(e.src.AliveNodes()); alive != 3 {
		t.Errorf("%d brokers alive after refused faults, want 3", alive)
	}
}
