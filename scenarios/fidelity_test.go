package scenarios_test

import (
	"testing"

	"github.com/kmt-dev/kafka-mirror-tester/scenarios"
)

// TestLargeAndTombstoneAreDisjoint: a sequence both rules pick is a
// tombstone (null value) and never counted as a large record, so the
// fidelity report's large records are records that really carried
// largeBytes. Exact counts over the first 490 sequences with tombstoneEvery
// 10 and largeEvery 49: 49 tombstones, 10 sequences picked by largeEvery of
// which one (489) is a tombstone, so 9 large.
func TestLargeAndTombstoneAreDisjoint(t *testing.T) {
	f := &scenarios.Fidelity{TombstoneEvery: 10, LargeEvery: 49, LargeBytes: 1024}
	var tombs, large, both int
	for q := uint64(0); q < 490; q++ {
		tb, lg := f.IsTombstone(q), f.IsLarge(q)
		if tb {
			tombs++
		}
		if lg {
			large++
		}
		if tb && lg {
			both++
		}
	}
	if tombs != 49 || large != 9 || both != 0 {
		t.Fatalf("tombstones %d, large %d, both %d; want 49, 9, 0", tombs, large, both)
	}
}
