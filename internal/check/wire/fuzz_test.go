package wire

import (
	"errors"
	"testing"
	"time"
)

// FuzzDecode: Decode never panics on any input (v3, v2, v1, damaged framing
// or anything else), the fast header parser reads what parseHeader reads
// whenever it accepts a header, a Decoder decodes it as Decode does after
// any record (its header cache changes nothing), always returns a *DecodeError when it fails, a record it
// accepts re-encodes (as v3) to a record that decodes to the same values, and
// a record built from the fuzzed fields (topic and epoch included)
// round-trips through Encode and Decode, and fails its checksum under any
// other stream's key.
//
//	go test -fuzz FuzzDecode ./internal/check/wire
func FuzzDecode(f *testing.F) {
	f.Add(Encode(Record{RunID: "run-42", Topic: "orders", Epoch: 3, Stream: 7, Seq: 1234, ProducedAt: time.Unix(0, 1764049200000000000), Padding: 16}), "r", "t", uint32(0), uint32(0), uint64(0), int64(0), uint16(0))
	f.Add([]byte("kmt1 c=00000000 r=x s=1 q=2 t=3 n=0|"), "run", "", uint32(9), uint32(1<<32-1), uint64(1<<64-1), int64(-1), uint16(300))
	f.Add([]byte("kmu2 c=00000000 r=x e=1 o=a s=1 q=2 t=3 n=0|"), "run", "a.b", uint32(1<<32-1), uint32(1), uint64(1), int64(-1), uint16(3))
	f.Add([]byte{}, "", "", uint32(0), uint32(5), uint64(5), int64(1<<62), uint16(1))
	f.Add([]byte("kmt1 c=ffffffff r=a s=99999999999999999999 q=1 t=1 n=99999999999|"), "a.b", "x", uint32(1), uint32(2), uint64(3), int64(-1<<63), uint16(65535))
	f.Add(encodeV2(Record{RunID: "old", Topic: "t", Epoch: 1, Stream: 2, Seq: 3, Padding: 40}), "r", "t", uint32(0), uint32(0), uint64(0), int64(0), uint16(17))
	f.Fuzz(func(t *testing.T, data []byte, run, topic string, epoch, stream uint32, seq uint64, ts int64, pad uint16) {
		scanAgrees(t, data)
		if len(data) > crcEnd {
			scanAgrees(t, data[crcEnd+1:])
		}
		if !ValidRunID(run) {
			run = "r"
		}
		if !ValidTopic(topic) {
			topic = "t"
		}
		in := Record{RunID: run, Topic: topic, Epoch: epoch, Stream: stream, Seq: seq, ProducedAt: time.Unix(0, ts), Padding: int(pad)}
		b := Encode(in)
		// The Decoder's header cache changes no result, whatever it holds.
		decodeAgrees(t, b, data)
		decodeAgrees(t, data, data)
		decodeAgrees(t, data, b)
		r, err := Decode(data)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode error %T is not a *DecodeError: %v", err, err)
			}
			if !errors.Is(err, ErrForeign) && !errors.Is(err, ErrChecksum) && !errors.Is(err, ErrPayloadMismatch) {
				t.Fatalf("Decode error wraps none of the sentinels: %v", err)
			}
		} else {
			again, err := Decode(Encode(r))
			if err != nil || !sameRecord(again, r) {
				t.Fatalf("accepted %q as %+v, but its re-encoding decodes to %+v, %v", data, r, again, err)
			}
		}

		got, err := Decode(b)
		if err != nil || !sameRecord(got, in) {
			t.Fatalf("Encode(%+v) = %q decodes to %+v, %v", in, b, got, err)
		}
		if checksum(2, stream+1, b) == checksum(2, stream, b) {
			t.Fatalf("checksum of %q does not depend on the key", b)
		}
		if HeaderSize(in)+in.Padding != len(b) {
			t.Fatalf("HeaderSize(%+v) = %d, encoded %d", in, HeaderSize(in), len(b))
		}
	})
}
