package wire

import "slices"

// The padding generator (padStart, padNext) is a 64-bit LCG: every byte
// depends on the previous state through a multiply, so a byte-at-a-time loop
// waits for each multiply in turn (about 2 ns per byte, the loadgen's largest
// cost at 1000-byte records). An LCG can jump k steps at once
// (x[n+k] = A_k*x[n] + C_k), so fillPad runs padLanes independent chains, each
// jumping padLanes steps, and writes exactly the bytes padNext would: the
// format does not change, only how fast it is produced and checked.

const (
	lcgMul = 6364136223846793005
	lcgInc = 1442695040888963407
)

// padLanes is the number of interleaved chains.
const padLanes = 4

// laneMul and laneInc jump the LCG padLanes steps (lcgJump(padLanes); a
// test checks them). Constants, so the loop keeps them in registers.
const (
	laneMul = 18108194425815612945
	laneInc = 7401132627792533940
)

// lcgJump returns (A, C) such that k steps of padNext's state update equal
// x -> A*x + C (mod 2^64).
func lcgJump(k int) (uint64, uint64) {
	a, c := uint64(1), uint64(0)
	for range k {
		a, c = a*lcgMul, c*lcgMul+lcgInc
	}
	return a, c
}

// x>>33 fits in 31 bits, so a 32-bit modulo gives the same value, cheaper.
func padByte(x uint64) byte { return 'a' + byte(uint32(x>>33)%26) }

// fillPad writes into p the padding bytes that follow generator state x
// (the same bytes as len(p) calls of padNext(&x)).
func fillPad(p []byte, x uint64) {
	// Four chains in plain variables (not an array) so they stay in registers.
	s0 := x*lcgMul + lcgInc
	s1 := s0*lcgMul + lcgInc
	s2 := s1*lcgMul + lcgInc
	s3 := s2*lcgMul + lcgInc
	i := 0
	for ; i+padLanes <= len(p); i += padLanes {
		q := p[i : i+padLanes : i+padLanes]
		q[0], q[1], q[2], q[3] = padByte(s0), padByte(s1), padByte(s2), padByte(s3)
		s0 = s0*laneMul + laneInc
		s1 = s1*laneMul + laneInc
		s2 = s2*laneMul + laneInc
		s3 = s3*laneMul + laneInc
	}
	// s0 is now the state of byte i: finish one step at a time.
	for ; i < len(p); i++ {
		p[i] = padByte(s0)
		s0 = s0*lcgMul + lcgInc
	}
}

// appendPad appends n padding bytes of (stream, seq) to dst.
func appendPad(dst []byte, stream uint32, seq uint64, n int) []byte {
	start := len(dst)
	// Grow without clearing: fillPad writes every byte.
	dst = slices.Grow(dst, n)[:start+n]
	fillPad(dst[start:], padStart(stream, seq))
	return dst
}

// padMismatch returns the index of the first byte of pad that differs from
// the padding of (stream, seq), or -1 when all match.
func padMismatch(pad []byte, stream uint32, seq uint64) int {
	var buf [512]byte
	x := padStart(stream, seq)
	for off := 0; off < len(pad); off += len(buf) {
		n := min(len(buf), len(pad)-off)
		fillPad(buf[:n], x)
		for i := range n {
			if buf[i] != pad[off+i] {
				return off + i
			}
		}
		if off+n < len(pad) {
			// Advance x past this chunk: n steps (only when another follows:
			// the jump costs n multiplies).
			a, c := lcgJump(n)
			x = a*x + c
		}
	}
	return -1
}
