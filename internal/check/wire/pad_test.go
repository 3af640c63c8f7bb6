package wire

import (
	"bytes"
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

// BenchmarkPadding1000 times the one-byte and the interleaved v2 generators
// and v3's fill and check on 1000-byte paddings, 20000 of each per iteration (so even -benchtime 1x
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
	var one, lanes, v3, v3check float64
	for range b.N {
		one = timeIt(func(x uint64) {
			for j := range buf {
				buf[j] = padNext(&x)
			}
		})
		lanes = timeIt(func(x uint64) { fillPad(buf, x) })
		// v3 (written today): the block repeated, and its check.
		v3 = timeIt(func(x uint64) { appendPadV3(buf[:0], 3, x, size) })
		appendPadV3(buf[:0], 3, 7, size)
		v3check = timeIt(func(uint64) {
			if padMismatchV3(buf, 3, 7) != -1 {
				b.Fatal("intact v3 padding reported damaged")
			}
		})
	}
	b.ReportMetric(one, "padNext_ns/byte")
	b.ReportMetric(lanes, "fillPad_ns/byte")
	b.ReportMetric(lanes/one, "fillPad/padNext")
	b.ReportMetric(v3, "v3_fill_ns/byte")
	b.ReportMetric(v3check, "v3_check_ns/byte")
	b.ReportMetric(v3/lanes, "v3_fill/fillPad")
}

// TestPadV3: v3 padding is the (stream, seq) block repeated, and
// padMismatchV3 finds exactly the first byte that differs from it, wherever
// it is (inside the first block, at the period boundary, far beyond).
func TestPadV3(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33, 100, 1000, 4099} {
		for _, id := range []struct {
			stream uint32
			seq    uint64
		}{{0, 0}, {7, 1234}, {1<<32 - 1, 1<<64 - 1}} {
			blk := padBlock(id.stream, id.seq)
			got := appendPadV3([]byte("hdr"), id.stream, id.seq, n)[3:]
			if len(got) != n {
				t.Fatalf("n=%d: %d bytes", n, len(got))
			}
			for i, c := range got {
				if c != blk[i%padBlockLen] || c < 'a' || c > 'p' {
					t.Fatalf("n=%d %v: byte %d is %q, block says %q", n, id, i, c, blk[i%padBlockLen])
				}
			}
			if i := padMismatchV3(got, id.stream, id.seq); i != -1 {
				t.Fatalf("n=%d %v: padMismatchV3 on intact padding = %d", n, id, i)
			}
			missed := 0
			for at := range n {
				bad := bytes.Clone(got)
				bad[at] = 'a' + (bad[at]-'a'+1)%16 // another letter the padding could hold
				if i := padMismatchV3(bad, id.stream, id.seq); i != at {
					missed++
				}
			}
			if missed != 0 {
				t.Fatalf("n=%d %v: %d of %d single-byte changes not found at their index", n, id, missed, n)
			}
		}
	}
}

// The block spells padStart in nibbles: 16 bytes of padding identify the
// 64-bit (stream, seq) hash.
func TestPadBlockSpellsHash(t *testing.T) {
	for _, x := range []struct {
		stream uint32
		seq    uint64
	}{{0, 0}, {3, 9}, {1<<32 - 1, 1<<64 - 1}} {
		h, blk := padStart(x.stream, x.seq), padBlock(x.stream, x.seq)
		for i := range padBlockLen {
			if want := 'a' + byte(h>>(4*i)&15); blk[i] != want {
				t.Fatalf("%v: block byte %d = %q, nibble says %q", x, i, blk[i], want)
			}
		}
	}
}
