package wire

import (
	"fmt"
	"hash/crc32"
	"math/bits"
	"strconv"
	"time"
)

// Encoder writes the version-3 records of one stream: the same bytes as
// Append (TestEncoderMatchesAppend), at a fraction of the cost. A stream's
// run id, epoch, topic and stream number never change, so the header up to
// "q=" and the checksum over it (with the key in front) are computed once,
// in NewEncoder; a record then costs its sequence, timestamp and padding
// digits, its padding, and the checksum over those bytes. The loadgen
// builds every record it sends with one, because at 100-byte records
// Append's per-record validation, field formatting and full checksum were
// about half of its send path (docs/bench.md).
//
// An Encoder caches the digits of the last timestamp's second, so it is
// not safe for concurrent use: one per stream and goroutine.
type Encoder struct {
	stream uint32
	// sec is the Unix second whose decimal digits secDigits holds: every
	// record of the same second shares the timestamp's first ten digits,
	// and only the nine digits of its nanoseconds are formatted.
	sec       int64
	secDigits []byte
	// head is "kmt3 c=00000000 r=<run> e=<epoch> o=<topic> s=<stream> q=".
	head []byte
	// headSum is the CRC-32C over Key(stream), head[:crcStart] and
	// head[crcEnd:]: the checksum's state before the sequence digits.
	headSum uint32
}

// NewEncoder returns the Encoder of one stream. It panics on an invalid run
// id or topic, as Append does (callers validate their configuration).
func NewEncoder(runID, topic string, epoch, stream uint32) *Encoder {
	if !ValidRunID(runID) {
		panic(fmt.Sprintf("wire: invalid run id %q", runID))
	}
	if !ValidTopic(topic) {
		panic(fmt.Sprintf("wire: invalid topic %q", topic))
	}
	h := append([]byte(magic+crcPrefix), "00000000 r="...)
	h = append(h, runID...)
	h = append(h, " e="...)
	h = strconv.AppendUint(h, uint64(epoch), 10)
	h = append(h, " o="...)
	h = append(h, topic...)
	h = append(h, " s="...)
	h = strconv.AppendUint(h, uint64(stream), 10)
	h = append(h, " q="...)
	s := crc32.Update(keyChecksum(stream), castagnoli, h[:crcStart])
	return &Encoder{stream: stream, head: h, headSum: crc32.Update(s, castagnoli, h[crcEnd:])}
}

// Append appends record seq of the stream, produced at at, with padding
// bytes of padding. It panics on a padding out of range, as Append does.
func (e *Encoder) Append(dst []byte, seq uint64, at time.Time, padding int) []byte {
	if padding < 0 || padding > MaxPadding {
		panic(fmt.Sprintf("wire: padding %d out of range", padding))
	}
	start := len(dst)
	dst = append(dst, e.head...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, " t="...)
	dst = e.appendTime(dst, at.UnixNano())
	dst = append(dst, " n="...)
	dst = strconv.AppendUint(dst, uint64(padding), 10)
	dst = append(dst, '|')
	dst = appendPadV3(dst, e.stream, seq, padding)
	rec := dst[start:]
	putSum(rec, crc32.Update(e.headSum, castagnoli, rec[len(e.head):]))
	return dst
}

// appendTime appends ns in decimal (strconv.AppendInt's bytes): the
// cached digits of its second, then its nanoseconds as nine digits. Times
// before 1970-01-01T00:00:01Z take strconv's path.
func (e *Encoder) appendTime(dst []byte, ns int64) []byte {
	const nsPerSec = int64(time.Second)
	if ns < nsPerSec {
		return strconv.AppendInt(dst, ns, 10)
	}
	if sec := ns / nsPerSec; sec != e.sec || e.secDigits == nil {
		e.sec, e.secDigits = sec, strconv.AppendInt(e.secDigits[:0], sec, 10)
	}
	dst = append(dst, e.secDigits...)
	return appendNine(dst, uint32(ns%nsPerSec)) //nolint:gosec // below 1e9
}

// appendNine appends v (below 1e9) as exactly nine decimal digits, two at
// a time.
func appendNine(dst []byte, v uint32) []byte {
	const pairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
		"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
		"8081828384858687888990919293949596979899"
	var b [9]byte
	for i := 7; i > 0; i -= 2 {
		q := v % 100 * 2
		b[i], b[i+1] = pairs[q], pairs[q+1]
		v /= 100
	}
	b[0] = byte('0' + v)
	return append(dst, b[:]...)
}

// AppendSized appends record seq with the padding that makes it size bytes
// long (PaddingFor's rule).
func (e *Encoder) AppendSized(dst []byte, seq uint64, at time.Time, size int) []byte {
	// The header without the padding's digits: head, the sequence, " t=",
	// the timestamp, " n=" and "|".
	base := len(e.head) + decimalLen(seq) + len(" t=") + signedDecimalLen(at.UnixNano()) + len(" n=") + len("|")
	return e.Append(dst, seq, at, PaddingFor(size, base))
}

// PaddingFor returns the padding that makes a record size bytes long when
// its header without the padding's decimal digits is base bytes. The "n="
// field holds the padding length, so a few sizes just above a power of ten
// of padding cannot be hit exactly; those get the largest padding that
// stays below size (one byte short). Sizes below the header give 0.
func PaddingFor(size, base int) int {
	for d := 1; d <= 9; d++ {
		p := size - base - d
		if p < 0 {
			break
		}
		// The first d with decimalLen(p) <= d: exact when equal; when p
		// has fewer digits the record comes out one byte short.
		if decimalLen(uint64(p)) <= d {
			return p
		}
	}
	return 0
}

// powersOf10 holds 10^i for every i a uint64 can reach.
var powersOf10 = [20]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

// decimalLen is the number of decimal digits of v, without a division:
// bits.Len64(v)*1233>>12 is floor(log10(2^bits)), one short of the
// answer or right, and one comparison tells which.
func decimalLen(v uint64) int {
	n := bits.Len64(v) * 1233 >> 12
	if v >= powersOf10[n] {
		n++
	}
	return max(n, 1)
}

// signedDecimalLen is the length of v in decimal, with its minus sign.
func signedDecimalLen(v int64) int {
	if v < 0 {
		return 1 + decimalLen(uint64(-v)) //nolint:gosec // -MinInt64 wraps to its own magnitude as a uint64, which is right
	}
	return decimalLen(uint64(v))
}
