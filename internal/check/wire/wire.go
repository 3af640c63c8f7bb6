// Package wire is the record format kmt writes to the source cluster and
// reads back from the target cluster.
//
// A record value is printable ASCII so that `kcat -C` shows a person which run,
// stream and sequence a record belongs to. Version 3 (written today):
//
//	kmt3 c=1a2b3c4d r=run-42 e=3 o=orders s=7 q=1234 t=1764049200000000000 n=20|ohgdmnbaclpkfjeiohgd
//
// Fields, in this fixed order:
//
//	kmt3  magic and format version
//	c=    CRC-32C (Castagnoli), 8 lower-case hex digits, over the Kafka key
//	      the record must carry (Key(s)) followed by every byte of the value
//	      except the 8 digits themselves (magic, header, padding): one
//	      checksum over the whole message, key and value together
//	r=    run id ([A-Za-z0-9._-], 1..64 bytes)
//	e=    loadgen instance epoch (decimal uint32): a restarted loadgen
//	      starts a new epoch, so its sequences never collide with the
//	      previous instance's
//	o=    source topic the record was produced to ([A-Za-z0-9._-], 0..249
//	      bytes; empty when the producer did not say)
//	s=    stream id (decimal uint32); the Kafka key is Key(stream)
//	q=    per-stream sequence number (decimal uint64, from 0)
//	t=    produce timestamp, Unix nanoseconds (signed decimal)
//	n=    padding length in bytes
//	|     end of header; exactly n bytes of padding follow
//
// Older versions are still decoded. Version 2 ("kmt2") has the same header
// and checksum; only its padding differs (a byte-at-a-time generator, see
// pad.go, which cost more than the rest of a 1000-byte record). Version 1
// ("kmt1": no e= and o=, checksum over the value only, v2's padding) decodes
// with Epoch 0 and no Topic.
//
// The key is a function of the stream, so the checksum over Key(s) and the
// value proves the value intact; the validator then compares the key the
// record really carries with Key(s) (see KeyMatches): a wrong key is an
// identity mismatch, a wrong value is corruption, and the evidence says which.
//
// The padding is a deterministic function of (stream, seq) (v3: a 16-letter
// block that spells the (stream, seq) hash, repeated; see pad.go), so a
// record whose checksum is valid but whose padding differs from the expected
// one carries a different payload for the same (stream, seq): the decoder
// reports that as ErrPayloadMismatch without the validator keeping any
// per-record state.
package wire

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"strconv"
	"time"
)

// Version is the format version Append writes ("kmt3").
const Version = 3

const (
	magic     = "kmt3 "
	magicV2   = "kmt2 "
	magicV1   = "kmt1 "
	crcPrefix = "c="
	crcDigits = 8
	// crcStart/crcEnd delimit the checksum digits inside the record.
	crcStart = len(magic) + len(crcPrefix)
	crcEnd   = crcStart + crcDigits
	// MaxRunIDLen bounds the run id so a header stays small.
	MaxRunIDLen = 64
	// MaxTopicLen is Kafka's longest topic name.
	MaxTopicLen = 249
	// MaxPadding bounds the padding a decoder accepts (16 MiB).
	MaxPadding = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Record is one decoded (or to-be-encoded) kmt message.
type Record struct {
	RunID      string
	Topic      string // source topic the record was produced to ("" for v1 or when not said)
	Epoch      uint32 // loadgen instance epoch (0 for v1)
	Stream     uint32
	Seq        uint64
	ProducedAt time.Time // nanosecond precision is kept
	Padding    int       // bytes of padding after the header
}

// Errors returned by Decode. Use errors.Is.
var (
	// ErrForeign: the bytes are not a kmt record (no kmt framing, or a
	// header that does not parse although its checksum holds).
	ErrForeign = errors.New("not a kmt record")
	// ErrChecksum: a kmt record (or bytes within a few damaged bytes of
	// kmt's framing) whose checksum does not match its bytes. Its header
	// is untrusted: Partial is evidence, never identity.
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
	// Partial.RunID is set whenever the run id field was readable, even if
	// a later field was not (so a damaged record can be attributed).
	Partial  Record
	HeaderOK bool
	// RunToken is the raw run id field of a damaged record ("" if absent),
	// for attributing records whose run id itself was damaged.
	RunToken string
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
	return len(id) > 0 && len(id) <= MaxRunIDLen && validName(id)
}

// ValidTopic reports whether a topic name can be carried in a record ("" is
// allowed: the producer did not say).
func ValidTopic(t string) bool { return len(t) <= MaxTopicLen && validName(t) }

func validName(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// KeyMatches reports whether key is the Kafka key a record of stream must
// carry (Key(stream)), without allocating.
func KeyMatches(key []byte, stream uint32) bool {
	if len(key) < 2 || len(key) > 11 || key[0] != 's' || key[1] == '0' && len(key) > 2 {
		return false
	}
	var v uint64
	for _, c := range key[1:] {
		if c < '0' || c > '9' {
			return false
		}
		v = v*10 + uint64(c-'0')
	}
	return v == uint64(stream)
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

// Append encodes r (format version 3) and appends it to dst. It panics on an
// invalid run id or topic or a negative padding, which are programming
// errors (callers validate config).
func Append(dst []byte, r Record) []byte {
	if !ValidRunID(r.RunID) {
		panic(fmt.Sprintf("wire: invalid run id %q", r.RunID))
	}
	if !ValidTopic(r.Topic) {
		panic(fmt.Sprintf("wire: invalid topic %q", r.Topic))
	}
	if r.Padding < 0 || r.Padding > MaxPadding {
		panic(fmt.Sprintf("wire: padding %d out of range", r.Padding))
	}
	start := len(dst)
	dst = append(dst, magic...)
	dst = append(dst, crcPrefix...)
	dst = append(dst, "00000000 r="...)
	dst = append(dst, r.RunID...)
	dst = append(dst, " e="...)
	dst = strconv.AppendUint(dst, uint64(r.Epoch), 10)
	dst = append(dst, " o="...)
	dst = append(dst, r.Topic...)
	dst = appendTail(dst, r, Version)
	rec := dst[start:]
	putSum(rec, checksum(Version, r.Stream, rec))
	return dst
}

// appendTail appends the fields every version shares (s= q= t= n=|padding),
// with the padding of version.
func appendTail(dst []byte, r Record, version int) []byte {
	dst = append(dst, " s="...)
	dst = strconv.AppendUint(dst, uint64(r.Stream), 10)
	dst = append(dst, " q="...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, " t="...)
	dst = strconv.AppendInt(dst, r.ProducedAt.UnixNano(), 10)
	dst = append(dst, " n="...)
	dst = strconv.AppendInt(dst, int64(r.Padding), 10)
	dst = append(dst, '|')
	if version >= 3 {
		return appendPadV3(dst, r.Stream, r.Seq, r.Padding) // see pad.go
	}
	return appendPad(dst, r.Stream, r.Seq, r.Padding)
}

func putSum(rec []byte, sum uint32) {
	const hexd = "0123456789abcdef"
	for i := crcDigits - 1; i >= 0; i-- {
		rec[crcStart+i] = hexd[sum&0xf]
		sum >>= 4
	}
}

// Encode returns r encoded in a new slice.
func Encode(r Record) []byte { return Append(nil, r) }

// checksum is CRC-32C over rec without the checksum digits; version 2
// prefixes the key the record must carry.
func checksum(version int, stream uint32, rec []byte) uint32 {
	var s uint32
	if version >= 2 {
		s = keyChecksum(stream)
	}
	s = crc32.Update(s, castagnoli, rec[:crcStart])
	return crc32.Update(s, castagnoli, rec[crcEnd:])
}

// keyChecksum is crc32.Update(0, castagnoli, Key(stream)), computed a byte
// at a time from the table (the key is at most 11 bytes) so that no key
// slice escapes to the heap on the decoder's path.
func keyChecksum(stream uint32) uint32 {
	var digits [10]byte
	i := len(digits)
	for v := stream; ; v /= 10 {
		i--
		digits[i] = '0' + byte(v%10)
		if v < 10 {
			break
		}
	}
	crc := ^uint32(0)
	crc = castagnoli[byte(crc)^'s'] ^ crc>>8
	for _, c := range digits[i:] {
		crc = castagnoli[byte(crc)^c] ^ crc>>8
	}
	return ^crc
}

// Decode parses b (version 3, 2 or 1). It never panics; on failure it returns a
// *DecodeError wrapping ErrForeign, ErrChecksum or ErrPayloadMismatch.
//
// Bytes whose framing is within two damaged bytes of a kmt record's (magic,
// "c=", eight hex digits, " r=") are a damaged kmt record (ErrChecksum),
// never foreign: damage to the magic must not hide a record from judgement.
func Decode(b []byte) (Record, error) {
	var r Record
	err := decode(b, nil, &r)
	return r, err
}

// Decoder decodes like Decode but reuses the run id and topic strings of the
// previous record when they repeat, so decoding a stream of one run's
// records allocates nothing per record. Not safe for concurrent use.
type Decoder struct {
	run, topic string
	head       headCache // scan.go
	// sums caches v3Start by stream id (direct-mapped).
	sums [64]struct {
		stream uint32
		ok     bool
		state  uint32
	}
}

// v3Prefix is what an intact v3 record's checksum covers before its digits.
var v3Prefix = []byte(magic + crcPrefix)

// v3Start is the checksum's state after Key(stream) and v3Prefix, where
// every intact v3 record's checksum of that stream goes on from (CRC-32C
// runs over the bytes in order, so the rest can be added later).
func (d *Decoder) v3Start(stream uint32) uint32 {
	if d == nil {
		return crc32.Update(keyChecksum(stream), castagnoli, v3Prefix)
	}
	e := &d.sums[stream%uint32(len(d.sums))]
	if !e.ok || e.stream != stream {
		e.stream, e.ok, e.state = stream, true, crc32.Update(keyChecksum(stream), castagnoli, v3Prefix)
	}
	return e.state
}

// Decode is Decode with string reuse.
func (d *Decoder) Decode(b []byte) (Record, error) {
	var r Record
	err := decode(b, d, &r)
	return r, err
}

// DecodeInto is Decode into *r, which it overwrites whatever the result:
// the record Decode would return. It spares copying the record (about 80
// bytes) out through every call on the validator's hot path.
func (d *Decoder) DecodeInto(b []byte, r *Record) error { return decode(b, d, r) }

// intern returns b as a string, reusing *slot when it holds the same bytes.
func intern(slot *string, b []byte) string {
	if slot == nil {
		return string(b)
	}
	if *slot != string(b) { // the comparison does not allocate
		*slot = string(b)
	}
	return *slot
}

// decode decodes b into *hdr (the Record Decode returns).
func decode(b []byte, d *Decoder, hdr *Record) error {
	*hdr = Record{}
	// The common case, intact v3 framing, parses the checksum digits once.
	want, framedV3 := framedSum(b)
	version, damaged, hexOK := 3, 0, framedV3
	if !framedV3 {
		if version, damaged = framing(b); version == 0 {
			return &DecodeError{Err: ErrForeign, Reason: "no kmt framing (magic, checksum, run id)"}
		}
		want, hexOK = parseHex32(b[crcStart:crcEnd])
	}
	pad, herr := parseHeaderFast(b[crcEnd+1:], version, d, hdr)
	if damaged > 0 || !hexOK || b[crcEnd] != ' ' {
		de := &DecodeError{Err: ErrChecksum, Reason: fmt.Sprintf("%d byte(s) of the kmt framing damaged", max(damaged, 1)), Partial: *hdr, HeaderOK: herr == nil}
		de.RunToken = runToken(b[crcEnd+1:])
		return de
	}
	var got uint32
	if framedV3 { // b starts with v3Prefix
		got = crc32.Update(d.v3Start(hdr.Stream), castagnoli, b[crcEnd:])
	} else {
		got = checksum(version, hdr.Stream, b)
	}
	if got != want {
		return &DecodeError{Err: ErrChecksum, Reason: fmt.Sprintf("checksum %08x, record says %08x", got, want),
			Partial: *hdr, HeaderOK: herr == nil, RunToken: runToken(b[crcEnd+1:])}
	}
	if herr != nil {
		*hdr = Record{}
		return &DecodeError{Err: ErrForeign, Reason: "checksum holds but " + herr.Error()}
	}
	mismatch := padMismatchV3
	if version < 3 {
		mismatch = padMismatch
	}
	if i := mismatch(pad, hdr.Stream, hdr.Seq); i >= 0 {
		return &DecodeError{Err: ErrPayloadMismatch, Reason: fmt.Sprintf("padding byte %d differs", i), Partial: *hdr, HeaderOK: true}
	}
	return nil
}

// frameTemplate is the fixed framing of a record: magic (the version digit
// checked apart), "c=", 8 hex digits (h), " r=".
const frameTemplate = "kmt? c=hhhhhhhh r="

// framedSum reports whether b starts with intact framing of version 3, the
// common case framing's byte-by-byte comparison is for, and returns the
// checksum its digits say.
func framedSum(b []byte) (uint32, bool) {
	if len(b) < len(frameTemplate) || string(b[:crcStart]) != magic+crcPrefix || string(b[crcEnd:len(frameTemplate)]) != " r=" {
		return 0, false
	}
	return parseHex32(b[crcStart:crcEnd])
}

// framing returns the record's version (0: not kmt framing) and how many
// framing bytes are damaged. An intact "kmt1 "/"kmt2 " magic is a kmt
// record of that version whatever follows; otherwise up to two damaged
// framing bytes are tolerated and the version is guessed from the header.
func framing(b []byte) (version, damaged int) {
	if _, ok := framedSum(b); ok {
		return 3, 0
	}
	if len(b) < len(frameTemplate) {
		return 0, 0
	}
	switch {
	case bytes.HasPrefix(b, []byte(magic)):
		version = 3
	case bytes.HasPrefix(b, []byte(magicV2)):
		version = 2
	case bytes.HasPrefix(b, []byte(magicV1)):
		version = 1
	}
	for i := 0; i < len(frameTemplate); i++ {
		c, want := b[i], frameTemplate[i]
		ok := c == want
		switch want {
		case '?':
			ok = c >= '1' && c <= '3'
		case 'h':
			ok = c >= '0' && c <= '9' || c >= 'a' && c <= 'f'
		}
		if !ok {
			damaged++
		}
	}
	if version != 0 {
		if damaged > 0 {
			return version, damaged
		}
		return version, 0
	}
	if damaged > 2 {
		return 0, damaged
	}
	// Damaged magic: the header layout says which version it was (v2 and
	// v3 share it; the version digit, when intact, tells them apart).
	if bytes.Contains(b[crcEnd:min(len(b), crcEnd+MaxRunIDLen+8)], []byte(" e=")) {
		if b[3] == '2' {
			return 2, damaged
		}
		return 3, damaged
	}
	return 1, damaged
}

// runToken returns the raw run id field of a header ("r=" .. next space).
func runToken(b []byte) string {
	if !bytes.HasPrefix(b, []byte("r=")) {
		return ""
	}
	b = b[2:]
	if i := bytes.IndexAny(b, " |"); i >= 0 {
		b = b[:i]
	}
	if len(b) > MaxRunIDLen+8 {
		b = b[:MaxRunIDLen+8]
	}
	return string(b)
}

// parseHeader parses "r=.. [e=.. o=..] s=.. q=.. t=.. n=..|padding". On
// error the returned record holds the fields read so far. It is the
// precise path behind scanHeader (scan.go): every header scanHeader is not
// sure of, i.e. every damaged or foreign record, comes here.
//
// Kept whole on purpose: split into a header reader with one method per
// field group (tried for issue 10) it took 8% longer per well-formed v3
// header (min of 20 interleaved runs, 460 -> 496 ns/op; median 604 -> 730
// on a loaded 2-core machine), above the 5% a split may cost the decoder.
//
//nolint:funlen // one left-to-right parse of the header fields; splitting it cost 8% (see above)
func parseHeader(b []byte, version int, d *Decoder) (Record, []byte, error) {
	var r Record
	var runSlot, topicSlot *string
	if d != nil {
		runSlot, topicSlot = &d.run, &d.topic
	}
	field := func(name string) ([]byte, error) {
		if !bytes.HasPrefix(b, []byte(name)) {
			return nil, fmt.Errorf("expected field %q", name)
		}
		b = b[len(name):]
		end := 0
		for end < len(b) && b[end] != ' ' && b[end] != '|' {
			end++
		}
		if end == len(b) {
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
	// A bad run id or topic is a value error, not a structural one: keep
	// parsing so the stream (which the v2 checksum needs) is still read.
	var valueErr error
	if ValidRunID(string(run)) {
		r.RunID = intern(runSlot, run)
	} else {
		valueErr = fmt.Errorf("invalid run id %q", run)
	}
	if version >= 2 {
		if err := skipSpace(); err != nil {
			return r, nil, err
		}
		v, err := field("e=")
		if err != nil {
			return r, nil, err
		}
		e, err := strconv.ParseUint(string(v), 10, 32)
		if err != nil {
			return r, nil, fmt.Errorf("field e=%s: %v", v, err)
		}
		r.Epoch = uint32(e)
		if err := skipSpace(); err != nil {
			return r, nil, err
		}
		if v, err = field("o="); err != nil {
			return r, nil, err
		}
		if ValidTopic(string(v)) {
			r.Topic = intern(topicSlot, v)
		} else if valueErr == nil {
			valueErr = fmt.Errorf("invalid topic %q", v)
		}
	}
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
		if i == 0 {
			if nums[0] > 1<<32-1 {
				return r, nil, fmt.Errorf("stream %d out of range", nums[0])
			}
			r.Stream = uint32(nums[0])
		}
	}
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
	return r, b, valueErr
}

// parseHex32 reads the 8 lower-case hex digits of b (ok false: another
// byte among them), through a table, unrolled, without a branch per digit.
func parseHex32(b []byte) (uint32, bool) {
	b = b[:crcDigits:crcDigits]
	h0, h1, h2, h3, h4, h5, h6, h7 := hexVal[b[0]], hexVal[b[1]], hexVal[b[2]], hexVal[b[3]], hexVal[b[4]], hexVal[b[5]], hexVal[b[6]], hexVal[b[7]]
	if h0|h1|h2|h3|h4|h5|h6|h7 > 0xf {
		return 0, false
	}
	return uint32(h0)<<28 | uint32(h1)<<24 | uint32(h2)<<20 | uint32(h3)<<16 | uint32(h4)<<12 | uint32(h5)<<8 | uint32(h6)<<4 | uint32(h7), true
}

// hexVal is the value of a lower-case hex digit, 0xff for any other byte.
var hexVal = func() (t [256]byte) {
	for c := range t {
		switch {
		case c >= '0' && c <= '9':
			t[c] = byte(c - '0')
		case c >= 'a' && c <= 'f':
			t[c] = byte(c - 'a' + 10)
		default:
			t[c] = 0xff
		}
	}
	return t
}()

// HeaderSize returns the encoded size of r without its padding bytes: the
// record is HeaderSize(r) + r.Padding bytes long. The header includes the
// decimal padding length ("n="), so it grows by one byte when r.Padding
// gains a digit; with r.Padding == 0 it is the smallest record r can be.
func HeaderSize(r Record) int {
	p := r.Padding
	r.Padding = 0
	return len(Encode(r)) - 1 + len(strconv.Itoa(p))
}

// Reseal recomputes the checksum of an encoded record in place (from the
// stream its header names) and returns it: what a faulty mirror that
// re-encodes a record it changed would write. Self-tests and the reference
// mirror's defects use it to build records whose checksum holds but whose
// content is wrong. It returns b unchanged if b has no readable kmt header.
func Reseal(b []byte) []byte {
	version, _ := framing(b)
	if version == 0 {
		return b
	}
	hdr, _, _ := parseHeader(b[crcEnd+1:], version, nil)
	putSum(b, checksum(version, hdr.Stream, b))
	return b
}

// HeaderKey names the Kafka record header kmt may write beside a record. Its
// value is the record's checksum digits (HeaderValue), so a mirror that
// rewrites or mixes up headers is caught; a mirror that drops every header
// is not judged for it (kcat and MirrorMaker 1 do).
const HeaderKey = "kmt"

// HeaderValue returns the HeaderKey header value for an encoded record: its
// checksum digits, a sub-slice of value (no allocation); nil if value is too
// short to be a record.
func HeaderValue(value []byte) []byte {
	if len(value) < crcEnd {
		return nil
	}
	return value[crcStart:crcEnd:crcEnd]
}

// HeaderMatches reports whether h is the HeaderKey header value value needs.
func HeaderMatches(h, value []byte) bool {
	want := HeaderValue(value)
	return want != nil && bytes.Equal(h, want)
}
