package wire

import (
	"bytes"
	"encoding/binary"
	"slices"
)

// Version 3 padding (written today): the 16 letters of padBlock, repeated.
// Producing it is a 16-byte write and a few doubling copies, checking it one
// 16-byte comparison and one memcmp of the padding against itself shifted by
// 16 (pad[i] == pad[i-16] for every i >= 16, and the first 16 bytes are the
// block, so every byte equals block[i%16]). Like v2's, it is a deterministic
// function of (stream, seq): any byte differing from what (stream, seq) must
// carry is found, at its index. The block spells the 64-bit padStart value
// in nibbles, so two (stream, seq) pairs with different padStart values
// (all pairs with seq < 2^32: padStart is a bijection of seq^stream<<32)
// never share a padding of 16 bytes or more.

// padBlockLen is the period of v3 padding.
const padBlockLen = 16

// padBlock returns the v3 block of (stream, seq): nibble i of padStart as
// the letter 'a'+nibble (a..p, printable and readable in kcat).
func padBlock(stream uint32, seq uint64) [padBlockLen]byte {
	x := padStart(stream, seq)
	// Spread the 16 nibbles over 16 bytes (two 8-byte halves), then add 'a'
	// to every byte at once (no carry: each byte is at most 15).
	var out [padBlockLen]byte
	binary.LittleEndian.PutUint64(out[:8], spreadNibbles(uint32(x))+0x6161616161616161)
	binary.LittleEndian.PutUint64(out[8:], spreadNibbles(uint32(x>>32))+0x6161616161616161)
	return out
}

// spreadNibbles puts nibble i of v (from the low end) in byte i.
func spreadNibbles(v uint32) uint64 {
	x := uint64(v)
	x = (x | x<<16) & 0x0000FFFF0000FFFF
	x = (x | x<<8) & 0x00FF00FF00FF00FF
	return (x | x<<4) & 0x0F0F0F0F0F0F0F0F
}

// appendPadV3 appends n bytes of v3 padding of (stream, seq) to dst.
func appendPadV3(dst []byte, stream uint32, seq uint64, n int) []byte {
	start := len(dst)
	dst = slices.Grow(dst, n)[:start+n]
	p := dst[start:]
	blk := padBlock(stream, seq)
	done := copy(p, blk[:])
	for done < n {
		done += copy(p[done:], p[:done]) // doubles the repeated prefix
	}
	return dst
}

// padMismatchV3 returns the index of the first byte of pad that differs
// from the v3 padding of (stream, seq), or -1 when all match.
func padMismatchV3(pad []byte, stream uint32, seq uint64) int {
	blk := padBlock(stream, seq)
	head := min(len(pad), padBlockLen)
	if bytes.Equal(pad[:head], blk[:head]) && (len(pad) <= padBlockLen || bytes.Equal(pad[padBlockLen:], pad[:len(pad)-padBlockLen])) {
		return -1
	}
	for i, c := range pad { // the slow path, for the evidence only
		if c != blk[i%padBlockLen] {
			return i
		}
	}
	return -1 // not reached: one of the comparisons above failed
}

// The version 1 and 2 padding generator (padStart, padNext) is a 64-bit LCG: every byte
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
