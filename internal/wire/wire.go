// Package wire is the record format kmt writes to the source cluster and
// reads back from the target cluster.
//
// A record value is printable ASCII so that `kcat -C` shows a person which run,
// stream and sequence a record belongs to:
//
//	kmt1 c=1a2b3c4d r=run-42 s=7 q=1234 t=1764049200000000000 n=16|abcdefghijklmnop
//
// Fields, in this fixed order:
//
//	kmt1  magic and format version
//	c=    CRC-32C (Castagnoli), 8 lower-case hex digits, over every byte of
//	      the record except the 8 digits themselves (magic, header, padding)
//	r=    run id ([A-Za-z0-9._-], 1..64 bytes)
//	s=    stream id (decimal uint32); the Kafka key is Key(stream)
//	q=    per-stream sequence number (decimal uint64, from 0)
//	t=    produce timestamp, Unix nanoseconds (signed decimal)
//	n=    padding length in bytes
//	|     end of header; exactly n bytes of padding follow
//
// The padding is a deterministic function of (stream, seq), so a record whose
// checksum is valid but whose padding differs from the expected one carries a
// different payload for the same (stream, seq): the decoder reports that as
// ErrPayloadMismatch without the validator keeping any per-record state.
package wire

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"time"
)

// Version is the format version written in the magic ("kmt1").
const Version = 1

const (
	magic     = "kmt1 "
	crcPrefix = "c="
	crcDigits = 8
	// crcStart/crcEnd delimit the checksum digits inside the record.
	crcStart = len(magic) + len(crcPrefix)
	crcEnd   = crcStart + crcDigits
	// MaxRunIDLen bounds the run id so a header stays small.
	MaxRunIDLen = 64
	// MaxPadding bounds the padding a decoder accepts (16 MiB).
	MaxPadding = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record is one decoded (or to-be-encoded) kmt message.
type Record struct {
	RunID      string
	Stream     uint32
	Seq        uint64
	ProducedAt time.Time // nanosecond precision is kept
	Padding    int       // bytes of padding after the header
}

// Errors returned by Decode. Use errors.Is.
var (
	// ErrForeign: the bytes are not a kmt record (wrong magic or a header
	// that does not parse although its checksum holds).
	ErrForeign = errors.New("not a kmt record")
	// ErrChecksum: a kmt record whose checksum does not match its bytes.
	ErrChecksum = errors.New("kmt record checksum mismatch")
	// ErrPayloadMismatch: checksum holds but the padding is not the one
	// (stream, seq) must carry: a different payload under the same identity.
	ErrPayloadMismatch = errors.New("kmt record payload differs from the one produced for its stream and sequence")
)

// DecodeError carries what could be read of a bad record, so the validator
// can name the stream and sequence in its evidence when the header survived.
type DecodeError struct {
	Err    error  // one of ErrForeign, ErrChecksum, ErrPayloadMismatch
	Reason string // human detail
	// Partial is the best-effort header; HeaderOK says whether it parsed.
	Partial  Record
	HeaderOK bool
}

func (e *DecodeError) Error() string { return e.Err.Error() + ": " + e.Reason }
func (e *DecodeError) Unwrap() error { return e.Err }

// Key returns the Kafka message key for a stream. Streams are keys because
// Kafka promises order per key.
func Key(stream uint32) []byte {
	return strconv.AppendUint([]byte("s"), uint64(stream), 10)
}

// ValidRunID reports whether id may be used as a run id.
func ValidRunID(id string) bool {
	if len(id) == 0 || len(id) > MaxRunIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// padStart seeds the padding of (stream, seq) with a SplitMix64 finaliser,
// so that different (stream, seq) pairs get different paddings. (A linear
// function of stream and seq modulo 26 would give only 26 distinct
// paddings: seq and seq+26 would carry the same payload.)
func padStart(stream uint32, seq uint64) uint64 {
	x := seq ^ uint64(stream)<<32 ^ 0x9E3779B97F4A7C15
	x = (x ^ x>>30) * 0xBF58476D1CE4E5B9
	x = (x ^ x>>27) * 0x94D049BB133111EB
	return x ^ x>>31
}

// padNext advances the padding generator (a 64-bit LCG) and returns the next
// byte: printable lower-case letters so kcat output stays readable.
func padNext(x *uint64) byte {
	*x = *x*6364136223846793005 + 1442695040888963407
	return 'a' + byte((*x>>33)%26)
}

// Append encodes r and appends it to dst. It panics on an invalid run id or a
// negative padding, which are programming errors (callers validate config).
func Append(dst []byte, r Record) []byte {
	if !ValidRunID(r.RunID) {
		panic(fmt.Sprintf("wire: invalid run id %q", r.RunID))
	}
	if r.Padding < 0 || r.Padding > MaxPadding {
		panic(fmt.Sprintf("wire: padding %d out of range", r.Padding))
	}
	start := len(dst)
	dst = append(dst, magic...)
	dst = append(dst, crcPrefix...)
	dst = append(dst, "00000000 r="...)
	dst = append(dst, r.RunID...)
	dst = append(dst, " s="...)
	dst = strconv.AppendUint(dst, uint64(r.Stream), 10)
	dst = append(dst, " q="...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, " t="...)
	dst = strconv.AppendInt(dst, r.ProducedAt.UnixNano(), 10)
	dst = append(dst, " n="...)
	dst = strconv.AppendInt(dst, int64(r.Padding), 10)
	dst = append(dst, '|')
	x := padStart(r.Stream, r.Seq)
	for i := 0; i < r.Padding; i++ {
		dst = append(dst, padNext(&x))
	}
	rec := dst[start:]
	sum := checksum(rec)
	const hexd = "0123456789abcdef"
	for i := crcDigits - 1; i >= 0; i-- {
		rec[crcStart+i] = hexd[sum&0xf]
		sum >>= 4
	}
	return dst
}

// Encode returns r encoded in a new slice.
func Encode(r Record) []byte { return Append(nil, r) }

// checksum is CRC-32C over rec without the checksum digits.
func checksum(rec []byte) uint32 {
	s := crc32.Update(0, castagnoli, rec[:crcStart])
	return crc32.Update(s, castagnoli, rec[crcEnd:])
}

// Decode parses b. It never panics; on failure it returns a *DecodeError
// wrapping ErrForeign, ErrChecksum or ErrPayloadMismatch.
func Decode(b []byte) (Record, error) {
	var r Record
	if len(b) < crcEnd+1 || !bytes.HasPrefix(b, []byte(magic)) || string(b[len(magic):crcStart]) != crcPrefix {
		return r, &DecodeError{Err: ErrForeign, Reason: "no kmt1 magic"}
	}
	want, ok := parseHex32(b[crcStart:crcEnd])
	if !ok || b[crcEnd] != ' ' {
		return r, &DecodeError{Err: ErrForeign, Reason: "malformed checksum field"}
	}
	hdr, pad, herr := parseHeader(b[crcEnd+1:])
	if got := checksum(b); got != want {
		return hdr, &DecodeError{Err: ErrChecksum, Reason: fmt.Sprintf("checksum %08x, record says %08x", got, want), Partial: hdr, HeaderOK: herr == nil}
	}
	if herr != nil {
		return r, &DecodeError{Err: ErrForeign, Reason: herr.Error()}
	}
	x := padStart(hdr.Stream, hdr.Seq)
	for i := 0; i < len(pad); i++ {
		if pad[i] != padNext(&x) {
			return hdr, &DecodeError{Err: ErrPayloadMismatch, Reason: fmt.Sprintf("padding byte %d differs", i), Partial: hdr, HeaderOK: true}
		}
	}
	return hdr, nil
}

// parseHeader parses "r=.. s=.. q=.. t=.. n=..|padding".
func parseHeader(b []byte) (Record, []byte, error) {
	var r Record
	field := func(name string) ([]byte, error) {
		if !bytes.HasPrefix(b, []byte(name)) {
			return nil, fmt.Errorf("expected field %q", name)
		}
		b = b[len(name):]
		end := bytes.IndexAny(b, " |")
		if end < 0 {
			return nil, fmt.Errorf("field %q not terminated", name)
		}
		v := b[:end]
		b = b[end:]
		return v, nil
	}
	skipSpace := func() error {
		if len(b) == 0 || b[0] != ' ' {
			return errors.New("expected space between fields")
		}
		b = b[1:]
		return nil
	}
	run, err := field("r=")
	if err != nil {
		return r, nil, err
	}
	if !ValidRunID(string(run)) {
		return r, nil, fmt.Errorf("invalid run id %q", run)
	}
	r.RunID = string(run)
	nums := [4]uint64{}
	var ts int64
	for i, name := range []string{"s=", "q=", "t=", "n="} {
		if err := skipSpace(); err != nil {
			return r, nil, err
		}
		v, err := field(name)
		if err != nil {
			return r, nil, err
		}
		if name == "t=" {
			// Signed: Append writes UnixNano with AppendInt, which is
			// negative for times before 1970 (and for the zero time.Time).
			ts, err = strconv.ParseInt(string(v), 10, 64)
		} else {
			nums[i], err = strconv.ParseUint(string(v), 10, 64)
		}
		if err != nil {
			return r, nil, fmt.Errorf("field %s%s: %v", name, v, err)
		}
	}
	if nums[0] > 1<<32-1 {
		return r, nil, fmt.Errorf("stream %d out of range", nums[0])
	}
	r.Stream = uint32(nums[0])
	r.Seq = nums[1]
	r.ProducedAt = time.Unix(0, ts)
	if len(b) == 0 || b[0] != '|' {
		return r, nil, errors.New("expected '|' after header")
	}
	b = b[1:]
	if nums[3] > MaxPadding || uint64(len(b)) != nums[3] {
		return r, nil, fmt.Errorf("padding length %d, header says %d", len(b), nums[3])
	}
	r.Padding = int(nums[3])
	return r, b, nil
}

func parseHex32(b []byte) (uint32, bool) {
	var v uint32
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint32(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint32(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// HeaderSize returns the encoded size of r without its padding bytes: the
// record is HeaderSize(r) + r.Padding bytes long. The header includes the
// decimal padding length ("n="), so it grows by one byte when r.Padding
// gains a digit; with r.Padding == 0 it is the smallest record r can be.
func HeaderSize(r Record) int {
	p := r.Padding
	r.Padding = 0
	return len(Encode(r)) - 1 + len(strconv.Itoa(p))
}
