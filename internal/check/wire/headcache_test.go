package wire

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

// decodeAgrees: a Decoder that first decoded prime (whatever it was: its
// head may now be cached) decodes b exactly as a fresh Decode does: the
// same record, or the same error with the same partial header, run token
// and reason. The header cache must never change a result.
func decodeAgrees(t *testing.T, prime, b []byte) {
	t.Helper()
	var d Decoder
	_, _ = d.Decode(prime)
	got, gerr := d.Decode(b)
	want, werr := Decode(b)
	if !sameRecord(got, want) || !sameDecodeErr(gerr, werr) {
		t.Fatalf("after %q, Decoder.Decode(%q) = %+v, %v; Decode says %+v, %v", prime, b, got, gerr, want, werr)
	}
	// DecodeInto overwrites a record that held another one entirely.
	into := Record{RunID: "stale", Topic: "stale", Epoch: 9, Stream: 9, Seq: 9, ProducedAt: time.Unix(9, 9), Padding: 9}
	if ierr := d.DecodeInto(b, &into); !sameRecord(into, want) || !sameDecodeErr(ierr, werr) {
		t.Fatalf("DecodeInto(%q) over a stale record = %+v, %v; Decode says %+v, %v", b, into, ierr, want, werr)
	}
}

func sameDecodeErr(a, b error) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	var x, y *DecodeError
	if !errors.As(a, &x) || !errors.As(b, &y) {
		return false
	}
	return errors.Is(x.Err, y.Err) && x.Reason == y.Reason && sameRecord(x.Partial, y.Partial) && x.HeaderOK == y.HeaderOK && x.RunToken == y.RunToken
}

// TestHeadCacheAgrees: the Decoder's header cache (headCache) and
// checksum cache (v3Start; streams sharing a slot included) against a
// fresh Decode, after a record of the same run, epoch and topic (the cache
// hit) and after other records: on intact records of v2 and v3, on every
// one-byte change, insertion and deletion in the header, and on random
// records from small alphabets (run ids and topics that are prefixes of
// each other, epochs that differ in one digit). It also checks that the
// common case does hit the cache.
func TestHeadCacheAgrees(t *testing.T) {
	base := Record{RunID: "run-42", Topic: "orders", Epoch: 3, Stream: 7, Seq: 1234, ProducedAt: time.Unix(0, 1764049200000000000), Padding: 40}
	next := base
	next.Stream, next.Seq, next.ProducedAt = 8, 99999, time.Unix(0, 1764049200000012345)
	others := []Record{
		{RunID: "run-4", Topic: "orders", Epoch: 3, Stream: 8, Seq: 1, Padding: 20},
		{RunID: "run-42", Topic: "orders", Epoch: 33, Stream: 8, Seq: 1, Padding: 20},
		{RunID: "run-42", Topic: "order", Epoch: 3, Stream: 8, Seq: 1, Padding: 20},
		{RunID: "run-42", Topic: "orders.x", Epoch: 3, Stream: 8, Seq: 1, Padding: 20},
		{RunID: "run-42", Epoch: 3, Stream: 8, Seq: 1, Padding: 20},
	}

	var d Decoder
	if _, err := d.Decode(Encode(base)); err != nil {
		t.Fatal(err)
	}
	if !d.sameHead(Encode(next)[crcEnd+1:]) {
		t.Fatalf("a record of the same run, epoch and topic misses the header cache %q", d.head.b)
	}

	for _, prime := range [][]byte{Encode(base), encodeV2(base), encodeV1(base), Encode(others[0]), []byte("junk")} {
		for _, enc := range [][]byte{Encode(next), encodeV2(next), encodeV1(next)} {
			decodeAgrees(t, prime, enc)
			for at := crcEnd + 1; at < min(len(enc), crcEnd+80); at++ {
				for _, c := range []byte{' ', '|', '-', '+', '0', '9', 'a', 's', '=', '.', 0x80} {
					bad := bytes.Clone(enc)
					bad[at] = c
					decodeAgrees(t, prime, bad)
					decodeAgrees(t, prime, Reseal(bytes.Clone(bad))) // the checksum holding
					ins := append(append(bytes.Clone(enc[:at]), c), enc[at:]...)
					decodeAgrees(t, prime, Reseal(ins))
				}
				del := append(bytes.Clone(enc[:at]), enc[at+1:]...)
				decodeAgrees(t, prime, del)
				decodeAgrees(t, prime, Reseal(del))
			}
		}
		for _, o := range others {
			decodeAgrees(t, prime, Encode(o))
			decodeAgrees(t, Encode(o), prime)
		}
	}

	rng := rand.New(rand.NewPCG(5, 6))
	pick := func(alts ...string) string { return alts[rng.IntN(len(alts))] }
	random := func() []byte {
		r := Record{RunID: pick("a", "ab", "a.b", "b"), Topic: pick("", "t", "tt", "t1"), Epoch: uint32(rng.IntN(3) * 10),
			Stream: []uint32{0, 1, 2, 3, 7, 9, 11, 64, 65, 129, 1<<32 - 1}[rng.IntN(11)], Seq: rng.Uint64() >> rng.IntN(64), ProducedAt: time.Unix(0, rng.Int64()-rng.Int64()), Padding: rng.IntN(40)}
		b := Encode(r)
		if rng.IntN(3) == 0 {
			b = encodeV2(r)
		}
		if rng.IntN(4) == 0 { // one damaged byte, resealed or not
			b[rng.IntN(len(b))] = pick(" ", "|", "0", "a", "=")[0]
			if rng.IntN(2) == 0 {
				b = Reseal(b)
			}
		}
		return b
	}
	for range 200000 {
		decodeAgrees(t, random(), random())
	}
}
