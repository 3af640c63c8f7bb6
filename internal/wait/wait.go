// Package wait holds the one way kmt waits for a point in time under a
// context (fault windows, failover drill steps).
package wait

import (
	"context"
	"time"
)

// Until waits for t; false if ctx ended first (or had already ended when t
// is past).
func Until(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}
