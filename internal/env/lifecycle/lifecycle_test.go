package lifecycle

import (
	"errors"
	"testing"
	"time"
)

// TestCloseOnceAfterTheChangeInProgress: Close waits for the change that
// holds the lock, runs stop exactly once, and Closed says so from then on.
func TestCloseOnceAfterTheChangeInProgress(t *testing.T) {
	var o Ops
	o.Lock() // a fault in progress
	stops := 0
	done := make(chan error)
	go func() { done <- o.Close(func() error { stops++; return errors.New("stop failed") }) }()
	select {
	case <-done:
		t.Fatal("Close ran while a change held the lock")
	case <-time.After(50 * time.Millisecond):
	}
	if o.Closed() {
		t.Fatal("Closed before Close got the lock")
	}
	o.Unlock()
	if err := <-done; err == nil || err.Error() != "stop failed" {
		t.Fatalf("first Close returned %v, want stop's error", err)
	}
	if err := o.Close(func() error { stops++; return nil }); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if stops != 1 || !o.Closed() {
		t.Fatalf("stop ran %d times, closed %v; want 1, true", stops, o.Closed())
	}
}
