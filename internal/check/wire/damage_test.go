package wire

import (
	"bytes"
	"errors"
	"hash/crc32"
	"testing"
	"time"
)

// TestV3DetectsDamage: the damage classes a mirror can do to a v3 record,
// at every byte and every length, for records of 100 and 1000 bytes and one
// with padding shorter than a block:
//   - any single byte changed (header, checksum digits or padding): never
//     accepted (ErrChecksum; the checksum covers every byte but its digits,
//     which are then wrong themselves);
//   - any truncation: never accepted;
//   - a padding byte changed and the checksum recomputed (a mirror that
//     re-encodes what it changed): ErrPayloadMismatch naming that byte;
//   - the value under another stream's key: the checksum over Key(stream)
//     and the value fails for that stream.
func TestV3DetectsDamage(t *testing.T) {
	for _, pad := range []int{5, 25, 925} {
		r := Record{RunID: "run-1", Topic: "orders", Epoch: 1, Stream: 3, Seq: 77, ProducedAt: time.Unix(0, 1764049200000000000), Padding: pad}
		good := Encode(r)
		accepted := 0
		for at := range good {
			for _, flip := range []byte{0x01, 0x20} {
				bad := bytes.Clone(good)
				bad[at] ^= flip
				if _, err := Decode(bad); err == nil {
					accepted++
				}
			}
		}
		for n := range len(good) {
			if _, err := Decode(good[:n]); err == nil {
				accepted++
			}
		}
		if accepted != 0 {
			t.Fatalf("padding %d: %d damaged or truncated records accepted", pad, accepted)
		}
		body := len(good) - pad
		missed := 0
		for at := range pad {
			bad := bytes.Clone(good)
			bad[body+at] = 'a' + (bad[body+at]-'a'+1)%16
			putSum(bad, checksum(Version, r.Stream, bad))
			var de *DecodeError
			if _, err := Decode(bad); !errors.Is(err, ErrPayloadMismatch) || !errors.As(err, &de) || !de.HeaderOK || de.Partial.Seq != 77 {
				missed++
			}
		}
		if missed != 0 {
			t.Fatalf("padding %d: %d of %d resealed padding changes not reported as ErrPayloadMismatch", pad, missed, pad)
		}
		for other := uint32(0); other < 40; other++ {
			if other != r.Stream && checksum(Version, other, good) == checksum(Version, r.Stream, good) {
				t.Fatalf("padding %d: the checksum holds under stream %d's key too", pad, other)
			}
		}
	}
	// Two records of different streams, each resealed with the other's
	// padding: the padding says whose it is.
	a := Encode(Record{RunID: "r", Stream: 1, Seq: 5, Padding: 64})
	b := Encode(Record{RunID: "r", Stream: 2, Seq: 5, Padding: 64})
	copy(a[len(a)-64:], b[len(b)-64:])
	putSum(a, checksum(Version, 1, a))
	if _, err := Decode(a); !errors.Is(err, ErrPayloadMismatch) {
		t.Fatalf("stream 1 record carrying stream 2's padding: %v, want ErrPayloadMismatch", err)
	}
}

// keyChecksum is the CRC-32C of Key(stream).
func TestKeyChecksum(t *testing.T) {
	for _, s := range []uint32{0, 1, 9, 10, 99, 12345, 1<<32 - 1} {
		if got, want := keyChecksum(s), crc32.Checksum(Key(s), castagnoli); got != want {
			t.Fatalf("keyChecksum(%d) = %08x, crc32 of %q = %08x", s, got, Key(s), want)
		}
	}
}

// scanAgrees fails t when scanHeader accepts b but parseHeader reads it
// differently (scanHeader may only decline, never disagree).
func scanAgrees(t *testing.T, b []byte) {
	t.Helper()
	for version := 1; version <= 3; version++ {
		var fast Record
		fpad, ok := scanHeader(b, version, nil, &fast)
		if !ok {
			continue
		}
		slow, spad, err := parseHeader(b, version, nil)
		if err != nil || !sameRecord(fast, slow) || !bytes.Equal(fpad, spad) {
			t.Fatalf("v%d header %q: scanHeader %+v pad %q, parseHeader %+v pad %q err %v", version, b, fast, fpad, slow, spad, err)
		}
	}
}

// TestScanHeaderAgrees: the fast header parser reads exactly what
// parseHeader reads, on intact headers of every version and on each
// one-byte change of them; and it takes the common case.
func TestScanHeaderAgrees(t *testing.T) {
	recs := []Record{
		{RunID: "run-42", Topic: "orders", Epoch: 3, Stream: 7, Seq: 1234, ProducedAt: time.Unix(0, 1764049200000000000), Padding: 16},
		{RunID: "r", Stream: 1<<32 - 1, Seq: 1<<64 - 1, ProducedAt: time.Unix(0, -1<<63), Padding: 0},
		{RunID: "x", Topic: "t", Epoch: 1<<32 - 1, ProducedAt: time.Unix(0, 1<<63-1), Padding: 3},
		{RunID: "neg", ProducedAt: time.Unix(-5, 0), Padding: 1},
	}
	for k, r := range recs {
		for _, enc := range [][]byte{Encode(r), encodeV2(r), encodeV1(r)} {
			hdr := enc[crcEnd+1:]
			version := int(enc[3] - '0')
			// The loadgen's records (the first) take the fast path; 20-digit
			// numbers may go to parseHeader.
			if _, ok := scanHeader(hdr, version, nil, new(Record)); !ok && k != 1 {
				t.Fatalf("scanHeader declined the intact v%d header %q", version, hdr)
			}
			scanAgrees(t, hdr)
			for at := range hdr {
				for _, c := range []byte{' ', '|', '-', '+', '0', '9', 'a', '=', '*', 0x80} {
					bad := bytes.Clone(hdr)
					bad[at] = c
					scanAgrees(t, bad)
				}
				scanAgrees(t, hdr[:at])
			}
		}
	}
	for _, h := range []string{"r=a e=1 o=t s=1 q=99999999999999999999 t=1 n=0|", "r=a e=4294967296 o=t s=1 q=1 t=1 n=0|", "r=a e=1 o=t s=4294967296 q=1 t=1 n=0|",
		"r=a e=1 o=t s=1 q=1 t=-9223372036854775809 n=0|", "r=a e=1 o=t s=1 q=1 t=9223372036854775808 n=0|", "r=a e=1 o=t s=1 q=1 t=+5 n=0|"} {
		scanAgrees(t, []byte(h))
	}
}
