package wait

import (
	"context"
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	ctx := context.Background()
	if !Until(ctx, time.Now().Add(-time.Second)) {
		t.Error("a past time with a live context: false, want true")
	}
	if !Until(ctx, time.Now().Add(10*time.Millisecond)) {
		t.Error("a near time with a live context: false, want true")
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if Until(done, time.Now().Add(-time.Second)) {
		t.Error("a past time with an ended context: true, want false")
	}
	if Until(done, time.Now().Add(time.Hour)) {
		t.Error("a far time with an ended context: true, want false")
	}
}
