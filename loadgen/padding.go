package loadgen

import "github.com/kmt-dev/kafka-mirror-tester/internal/check/wire"

// Padding returns the padding that makes the encoded record r exactly size
// bytes. The "n=" field holds the padding length, so a few sizes just above
// a power of ten of padding cannot be hit exactly; those get the largest
// padding that stays below size (one byte short). Sizes below the header
// give 0.
func Padding(size int, r wire.Record) int {
	base := headerLenWithoutN(r)
	for d := 1; d <= 9; d++ {
		p := size - base - d
		if p < 0 {
			break
		}
		// The first d with digits(p) <= d: exact when equal; when p has
		// fewer digits the record comes out d-digits(p) (one) byte short.
		if digits(uint64(p)) <= d {
			return p
		}
	}
	return 0
}

// headerLenWithoutN is the encoded header length of r (see wire's format)
// without the digits of the "n=" value.
func headerLenWithoutN(r wire.Record) int {
	const fixed = len("kmt3 c=00000000 r=") + len(" e=") + len(" o=") + len(" s=") + len(" q=") + len(" t=") + len(" n=") + len("|")
	ts := r.ProducedAt.UnixNano()
	tl := 0
	if ts < 0 {
		tl = 1
		ts = -ts
	}
	return fixed + len(r.RunID) + digits(uint64(r.Epoch)) + len(r.Topic) + digits(uint64(r.Stream)) + digits(r.Seq) + tl + digits(uint64(ts))
}

func digits(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}
