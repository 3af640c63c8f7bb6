package wire

import (
	"testing"
	"time"
)

// TestFillPadEqualsPadNext: the interleaved generator writes exactly the
// bytes of the one-at-a-time generator, for every length around the lane
// and chunk boundaries, and padMismatch finds the first differing byte.
func TestFillPadEqualsPadNext(t *testing.T) {
	lengths := []int{0, 1, 2, 3, 4, 5, 7, 8, 9, 63, 64, 65, 511, 512, 513, 1000, 1025, 4099}
	for _, n := range lengths {
		for _, id := range []struct {
			stream uint32
			seq    uint64
		}{{0, 0}, {7, 1234}, {1<<32 - 1, 1<<64 - 1}} {
			x := padStart(id.stream, id.seq)
			want := make([]byte, n)
			for i := range want {
				want[i] = padNext(&x)
			}
			got := appendPad([]byte("hdr"), id.stream, id.seq, n)[3:]
			if string(got) != string(want) {
				t.Fatalf("n=%d %v: fillPad differs from padNext", n, id)
			}
			if i := padMismatch(want, id.stream, id.seq); i != -1 {
				t.Fatalf("n=%d %v: padMismatch on equal padding = %d, want -1", n, id, i)
			}
			for _, at := range []int{0, n / 2, n - 1} {
				if n == 0 {
					continue
				}
				bad := append([]byte(nil), want...)
				bad[at] ^= 0x20
				if i := padMismatch(bad, id.stream, id.seq); i != at {
					t.Fatalf("n=%d %v: byte %d damaged, padMismatch = %d", n, id, at, i)
				}
			}
		}
	}
}

func TestLaneConstants(t *testing.T) {
	if a, c := lcgJump(padLanes); a != laneMul || c != laneInc {
		t.Fatalf("lcgJump(%d) = %d, %d; the constants say %d, %d", padLanes, a, c, uint64(laneMul), uint64(laneInc))
	}
}

// BenchmarkPadding1000 times the one-byte and the interleaved generators on
// 1000-byte paddings, 20000 of each per iteration (so even -benchtime 1x
// measures something), and reports ns per byte of each and their ratio.
func BenchmarkPadding1000(b *testing.B) {
	const n, size = 20000, 1000
	buf := make([]byte, size)
	timeIt := func(fill func(x uint64)) float64 {
		start := time.Now()
		for i := range n {
			fill(padStart(3, uint64(i)))
		}
		return float64(time.Since(start).Nanoseconds()) / (n * size)
	}
	var one, lanes float64
	for range b.N {
		one = timeIt(func(x uint64) {
			for j := range buf {
				buf[j] = padNext(&x)
			}
		})
		lanes = timeIt(func(x uint64) { fillPad(buf, x) })
	}
	b.ReportMetric(one, "padNext_ns/byte")
	b.ReportMetric(lanes, "fillPad_ns/byte")
	b.ReportMetric(lanes/one, "fillPad/padNext")
}
