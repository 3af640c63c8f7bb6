package wire

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

func sameRecord(a, b Record) bool {
	return a.RunID == b.RunID && a.Topic == b.Topic && a.Epoch == b.Epoch && a.Stream == b.Stream && a.Seq == b.Seq &&
		a.ProducedAt.UnixNano() == b.ProducedAt.UnixNano() && a.Padding == b.Padding
}

func TestRoundTrip(t *testing.T) {
	cases := []Record{
		{RunID: "r", Stream: 0, Seq: 0, ProducedAt: time.Unix(0, 0), Padding: 0},
		{RunID: "run-42", Stream: 7, Seq: 1234, ProducedAt: time.Unix(1764049200, 123456789), Padding: 16},
		{RunID: strings.Repeat("a", MaxRunIDLen), Stream: 1<<32 - 1, Seq: 1<<64 - 1, ProducedAt: time.Unix(0, 1<<63-1), Padding: 1000},
		{RunID: "A.b_c-9", Stream: 1, Seq: 1, ProducedAt: time.Unix(-10, 0), Padding: 1}, // before 1970
		{RunID: "neg", ProducedAt: time.Unix(0, -1<<63)},
		{RunID: "big", Stream: 3, Seq: 9, ProducedAt: time.Unix(5, 0), Padding: 1 << 16},
		{RunID: "v2", Topic: "orders", Epoch: 7, Stream: 3, Seq: 9, ProducedAt: time.Unix(5, 0), Padding: 10},
		{RunID: "v2max", Topic: strings.Repeat("t", MaxTopicLen), Epoch: 1<<32 - 1, Stream: 1, Seq: 2, Padding: 3},
	}
	for _, r := range cases {
		t.Run(fmt.Sprintf("%s/%d/%d/%d", r.RunID, r.Stream, r.Seq, r.Padding), func(t *testing.T) {
			b := Encode(r)
			for i, c := range b {
				if c < 0x20 || c > 0x7e {
					t.Fatalf("byte %d (%#x) is not printable ASCII: %q", i, c, b)
				}
			}
			if HeaderSize(r)+r.Padding != len(b) {
				t.Fatalf("HeaderSize %d + padding %d != encoded %d", HeaderSize(r), r.Padding, len(b))
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(%q): %v", b, err)
			}
			if !sameRecord(got, r) {
				t.Fatalf("round trip: got %+v, want %+v", got, r)
			}
			// Append to a non-empty slice: only the new bytes are the record.
			pre := []byte("prefix")
			b2 := Append(pre, r)
			if !bytes.Equal(b2[len(pre):], b) || string(b2[:len(pre)]) != "prefix" {
				t.Fatalf("Append to a prefix changed the encoding")
			}
		})
	}
}

func TestExampleFromDocIsReadable(t *testing.T) {
	r := Record{RunID: "run-42", Topic: "orders", Epoch: 3, Stream: 7, Seq: 1234, ProducedAt: time.Unix(0, 1764049200000000000), Padding: 16}
	b := string(Encode(r))
	want := "r=run-42 e=3 o=orders s=7 q=1234 t=1764049200000000000 n=16|"
	if !strings.HasPrefix(b, "kmt3 c=") || !strings.Contains(b, want) || len(b) != strings.Index(b, "|")+1+16 {
		t.Fatalf("encoding %q does not match the documented layout %q", b, want)
	}
}

// resum rewrites the checksum digits so a test can build records whose
// checksum holds but whose content is wrong (stream 3, the test records').
func resum(b []byte) []byte {
	b = append([]byte(nil), b...)
	v := 3
	if bytes.HasPrefix(b, []byte(magicV1)) {
		v = 1
	}
	sum := checksum(v, 3, b)
	copy(b[crcStart:crcEnd], fmt.Sprintf("%08x", sum))
	return b
}

// encodeV1 writes the legacy version-1 layout (no epoch, no topic, checksum
// over the value only), to prove the decoder still reads it.
func encodeV1(r Record) []byte {
	b := append([]byte(magicV1+crcPrefix+"00000000 r="), r.RunID...)
	b = appendTail(b, r, 1)
	putSum(b, checksum(1, r.Stream, b))
	return b
}

// encodeV2 writes the version-2 layout (v3's header, the LCG padding), as
// loadgens before version 3 did.
func encodeV2(r Record) []byte {
	b := append([]byte(magicV2+crcPrefix+"00000000 r="), r.RunID...)
	b = append(append(strconv.AppendUint(append(b, " e="...), uint64(r.Epoch), 10), " o="...), r.Topic...)
	b = appendTail(b, r, 2)
	putSum(b, checksum(2, r.Stream, b))
	return b
}

// Version 2 records (written by earlier loadgens) still decode, and their
// padding is still checked against v2's generator.
func TestDecodesVersion2(t *testing.T) {
	in := Record{RunID: "old", Topic: "orders", Epoch: 2, Stream: 4, Seq: 12, ProducedAt: time.Unix(9, 9), Padding: 40}
	b := encodeV2(in)
	if !strings.HasPrefix(string(b), "kmt2 c=") || !strings.Contains(string(b), " r=old e=2 o=orders s=4 q=12 ") {
		t.Fatalf("v2 fixture %q does not have the v2 layout", b)
	}
	got, err := Decode(b)
	if err != nil || !sameRecord(got, in) {
		t.Fatalf("Decode(v2 %q) = %+v, %v; want %+v", b, got, err, in)
	}
	if bytes.Equal(b[len(b)-40:], Encode(in)[len(Encode(in))-40:]) {
		t.Fatal("v2 and v3 paddings are the same: the v2 fixture does not test v2's generator")
	}
	bad := bytes.Clone(b)
	bad[len(bad)-1] = 'a' + (bad[len(bad)-1]-'a'+1)%26
	putSum(bad, checksum(2, 4, bad))
	if _, err := Decode(bad); !errors.Is(err, ErrPayloadMismatch) {
		t.Fatalf("v2 record with another padding byte, checksum recomputed: %v, want ErrPayloadMismatch", err)
	}
	b[len(b)-1] ^= 1
	if _, err := Decode(b); !errors.Is(err, ErrChecksum) {
		t.Fatalf("damaged v2 record: %v, want ErrChecksum", err)
	}
}

func TestDecodesVersion1(t *testing.T) {
	in := Record{RunID: "old", Stream: 4, Seq: 12, ProducedAt: time.Unix(9, 9), Padding: 5}
	b := encodeV1(in)
	if !strings.HasPrefix(string(b), "kmt1 c=") || !strings.Contains(string(b), " r=old s=4 q=12 ") {
		t.Fatalf("v1 fixture %q does not have the v1 layout", b)
	}
	got, err := Decode(b)
	if err != nil || !sameRecord(got, in) {
		t.Fatalf("Decode(v1 %q) = %+v, %v; want %+v", b, got, err, in)
	}
	b[len(b)-1] ^= 1
	if _, err := Decode(b); !errors.Is(err, ErrChecksum) {
		t.Fatalf("damaged v1 record: %v, want ErrChecksum", err)
	}
}

// The checksum covers the key the record must carry: the same value under
// another stream's key does not verify as that stream, and KeyMatches tells
// the validator whether the key really carried is the right one.
func TestChecksumCoversKey(t *testing.T) {
	r := Record{RunID: "run", Topic: "t", Stream: 3, Seq: 1, Padding: 4}
	b := Encode(r)
	if checksum(2, 3, b) == checksum(2, 4, b) {
		t.Fatal("checksum does not depend on the key")
	}
	if !KeyMatches([]byte("s3"), 3) || KeyMatches([]byte("s4"), 3) || KeyMatches(nil, 3) || KeyMatches([]byte("s30"), 3) {
		t.Fatal("KeyMatches does not compare the key with Key(stream)")
	}
	// A v2 value whose s= was rewritten with the checksum left alone fails.
	if _, err := Decode([]byte(strings.Replace(string(b), " s=3 ", " s=4 ", 1))); !errors.Is(err, ErrChecksum) {
		t.Fatalf("stream rewrite: %v, want ErrChecksum", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	good := Encode(Record{RunID: "run", Topic: "orders", Epoch: 2, Stream: 3, Seq: 77, ProducedAt: time.Unix(100, 0), Padding: 20})
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	replace := func(old, new string) []byte {
		return []byte(strings.Replace(string(good), old, new, 1))
	}
	cases := []struct {
		name     string
		in       []byte
		want     error
		headerOK bool
	}{
		{"empty", nil, ErrForeign, false},
		{"json", []byte(`{"hello":"world"}`), ErrForeign, false},
		{"three framing bytes damaged", replace("kmt3 c", "jnu3 c"), ErrForeign, false},
		{"truncated in checksum", good[:crcEnd-2], ErrForeign, false},
		{"upper-case checksum", mut(func(b []byte) []byte { copy(b[crcStart:], "ABCDEFAB"); return b }), ErrChecksum, true},
		{"no space after checksum", mut(func(b []byte) []byte { b[crcEnd] = 'x'; return b }), ErrChecksum, true},
		{"damaged magic byte", replace("kmt3", "kmu3"), ErrChecksum, true},
		{"two damaged magic bytes", replace("kmt3", "jmt4"), ErrChecksum, true},
		{"damaged magic, checksum recomputed", resum(replace("kmt3", "Kmt3")), ErrChecksum, true},
		{"flipped epoch digit", replace("e=2", "e=3"), ErrChecksum, true},
		{"other topic", replace("o=orders", "o=ordert"), ErrChecksum, true},
		{"flipped padding byte", mut(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), ErrChecksum, true},
		{"flipped seq digit", replace("q=77", "q=78"), ErrChecksum, true},
		{"truncated padding", good[:len(good)-1], ErrChecksum, false},
		{"other padding, checksum recomputed", resum(mut(func(b []byte) []byte {
			b[len(b)-3] = 'a' + (b[len(b)-3]-'a'+1)%26
			return b
		})), ErrPayloadMismatch, true},
		{"other seq, checksum recomputed", resum(replace("q=77", "q=78")), ErrPayloadMismatch, true},
		{"padding length lie, checksum recomputed", resum(replace("n=20", "n=21")), ErrForeign, false},
		{"bad run id, checksum recomputed", resum(replace("r=run", "r=r*n")), ErrForeign, false},
		{"bad topic, checksum recomputed", resum(replace("o=orders", "o=ord*rs")), ErrForeign, false},
		// v2's checksum covers Key(stream): without a readable stream it
		// cannot be verified, and kmt framing makes it a damaged record.
		{"stream out of range, checksum recomputed", resum(replace("s=3", "s=4294967296")), ErrChecksum, false},
		{"missing field, checksum recomputed", resum(replace(" q=77", "")), ErrForeign, false},
		{"negative seq, checksum recomputed", resum(replace("q=77", "q=-7")), ErrForeign, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.in)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode(%q) = %v, want %v", tc.in, err, tc.want)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T is not a *DecodeError", err)
			}
			if de.HeaderOK != tc.headerOK {
				t.Fatalf("HeaderOK = %v, want %v (%v)", de.HeaderOK, tc.headerOK, err)
			}
			if de.HeaderOK && (de.Partial.RunID != "run" || de.Partial.Stream != 3) {
				t.Fatalf("partial header %+v lost the identity", de.Partial)
			}
			if de.Reason == "" || !strings.Contains(err.Error(), de.Reason) {
				t.Fatalf("error %q does not carry its reason", err)
			}
		})
	}
}

func TestPaddingIsAFunctionOfStreamAndSeq(t *testing.T) {
	pad := func(s uint32, q uint64) string {
		b := Encode(Record{RunID: "r", Stream: s, Seq: q, Padding: 32})
		return string(b[bytes.IndexByte(b, '|')+1:])
	}
	if pad(1, 2) != pad(1, 2) {
		t.Fatal("padding not deterministic")
	}
	seen := map[string]string{}
	for s := uint32(0); s < 20; s++ {
		for q := uint64(0); q < 50; q++ {
			p := pad(s, q)
			if prev, dup := seen[p]; dup {
				t.Fatalf("(%d,%d) and %s share padding %q: a payload swap would go unnoticed", s, q, prev, p)
			}
			seen[p] = fmt.Sprint(s, q)
		}
	}
}

func TestKeyAndRunID(t *testing.T) {
	for _, tc := range []struct {
		s    uint32
		want string
	}{{0, "s0"}, {7, "s7"}, {1<<32 - 1, "s4294967295"}} {
		if got := string(Key(tc.s)); got != tc.want {
			t.Errorf("Key(%d) = %q, want %q", tc.s, got, tc.want)
		}
	}
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"run-1", true}, {"A.b_C-9", true}, {strings.Repeat("x", MaxRunIDLen), true},
		{"", false}, {strings.Repeat("x", MaxRunIDLen+1), false}, {"a b", false}, {"a|b", false}, {"é", false}, {"a=b", false},
	} {
		if got := ValidRunID(tc.id); got != tc.ok {
			t.Errorf("ValidRunID(%q) = %v, want %v", tc.id, got, tc.ok)
		}
	}
}

func TestAppendPanicsOnProgrammingErrors(t *testing.T) {
	for _, r := range []Record{{RunID: "bad id"}, {RunID: "r", Padding: -1}, {RunID: "r", Padding: MaxPadding + 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Append(%+v) did not panic", r)
				}
			}()
			Encode(r)
		}()
	}
}

// A Decoder decodes exactly as Decode does, and reuses the run id and topic
// strings of consecutive records: no allocation per record.
func TestDecoderReusesStrings(t *testing.T) {
	var d Decoder
	a := Encode(Record{RunID: "run", Topic: "orders", Stream: 1, Seq: 1, Padding: 10})
	b := Encode(Record{RunID: "run", Topic: "orders", Stream: 2, Seq: 9, Padding: 10})
	for _, v := range [][]byte{a, b, encodeV1(Record{RunID: "old", Stream: 3, Seq: 4}), []byte("junk")} {
		want, werr := Decode(v)
		got, gerr := d.Decode(v)
		if !sameRecord(got, want) || (werr == nil) != (gerr == nil) {
			t.Fatalf("Decoder.Decode(%q) = %+v, %v; Decode = %+v, %v", v, got, gerr, want, werr)
		}
	}
	d.Decode(a)
	plain := testing.AllocsPerRun(100, func() { _, _ = Decode(b) })
	reuse := testing.AllocsPerRun(100, func() { _, _ = d.Decode(b) })
	if reuse != 0 || plain < 2 {
		t.Fatalf("Decoder.Decode allocates %v times per record, Decode %v: the run id and topic strings are not reused", reuse, plain)
	}
}

func TestKeyMatchesIsKeyEquality(t *testing.T) {
	for _, s := range []uint32{0, 1, 7, 10, 4294967295} {
		for _, k := range [][]byte{Key(s), Key(s + 1), nil, []byte("s"), []byte("s07"), []byte("x7"), []byte("s4294967296"), []byte("s-1"), append(Key(s), '0')} {
			if got, want := KeyMatches(k, s), bytes.Equal(k, Key(s)); got != want {
				t.Errorf("KeyMatches(%q, %d) = %v, want %v", k, s, got, want)
			}
		}
	}
}
