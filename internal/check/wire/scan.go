package wire

import (
	"encoding/binary"
	"math/bits"
	"time"
)

// The validator decodes every record it reads, so the header parser is on
// its hot path. scanHeader reads a well-formed header in one pass without
// closures, strconv or allocation; anything it does not fully understand
// (an invalid run id or topic, a missing field, 20-digit numbers, "+" signs)
// goes to parseHeader, which gives the precise error. FuzzDecode and
// TestScanHeaderAgrees check that both return the same record.

// parseHeaderFast is parseHeader into *r, taking the fast path when it can
// (the record is filled in place: it is about 80 bytes, copied at every
// return otherwise).
func parseHeaderFast(b []byte, version int, d *Decoder, r *Record) ([]byte, error) {
	if pad, ok := scanHeader(b, version, d, r); ok {
		return pad, nil
	}
	var pad []byte
	var err error
	*r, pad, err = parseHeader(b, version, d)
	return pad, err
}

// nameChar: the bytes ValidRunID and ValidTopic allow.
var nameChar = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = validName(string([]byte{byte(c)}))
	}
	return t
}()

// nameEnd returns the index of the first byte at or after i that is not a
// name byte.
func nameEnd(b []byte, i int) int {
	for i < len(b) && nameChar[b[i]] {
		i++
	}
	return i
}

// scanNum reads " x=" (x the field letter) then 1..19 decimal digits at
// b[i:] and returns the value and the index after the digits (ok false:
// anything else).
func scanNum(b []byte, i int, letter byte) (v uint64, next int, ok bool) {
	if len(b)-i < 3 || b[i] != ' ' || b[i+1] != letter || b[i+2] != '=' {
		return 0, 0, false
	}
	if len(b)-i >= 3+24 {
		return scanDigits24(b, i+3)
	}
	return scanDigits(b, i+3)
}

// scanDigits reads 1..19 decimal digits at b[i:] (not followed by a 20th).
// It reads eight bytes at a time: a word says where the digits end
// (nonDigits) and gives their value (parse8), so a header's numbers cost a
// few word operations each instead of a multiply-add per digit.
func scanDigits(b []byte, i int) (v uint64, next int, ok bool) {
	if len(b)-i >= 24 {
		return scanDigits24(b, i)
	}
	start := i
	for len(b)-i >= 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		z := nonDigits(x)
		n := 8
		if z != 0 {
			n = bits.TrailingZeros64(z) >> 3
		}
		if i-start+n > 19 || i-start+n == 0 { // a 20th digit, or none
			return 0, 0, false
		}
		if n == 8 {
			v = v*1e8 + parse8(x)
			i += 8
			continue
		}
		if n > 0 {
			// The n digits to the top of the word, zeros (leading zero
			// digits) below them.
			v = v*pow10[n] + parse8(x<<(64-8*n))
		}
		return v, i + n, true
	}
	for i < len(b) && i-start < 19 { // the last few bytes of b
		c := b[i] - '0'
		if c > 9 {
			break
		}
		v = v*10 + uint64(c)
		i++
	}
	if i == start || i < len(b) && b[i]-'0' <= 9 { // no digits, or a 20th
		return 0, 0, false
	}
	return v, i, true
}

// scanDigits24 is scanDigits when at least 24 bytes follow b[i] (the
// common case inside a header: the padding follows): at most three words
// hold the 19 digits a number may have and the byte after them, so the
// words are read unrolled, without scanDigits' loop and end checks.
func scanDigits24(b []byte, i int) (v uint64, next int, ok bool) {
	b = b[i : i+24 : i+24]
	x := binary.LittleEndian.Uint64(b)
	if z := nonDigits(x); z != 0 {
		n := bits.TrailingZeros64(z) >> 3
		if n == 0 {
			return 0, 0, false
		}
		return parse8(x << (64 - 8*n)), i + n, true
	}
	y := binary.LittleEndian.Uint64(b[8:])
	if z := nonDigits(y); z != 0 {
		n := bits.TrailingZeros64(z) >> 3
		v = parse8(x)
		if n > 0 {
			v = v*pow10[n] + parse8(y<<(64-8*n))
		}
		return v, i + 8 + n, true
	}
	w := binary.LittleEndian.Uint64(b[16:])
	n := bits.TrailingZeros64(nonDigits(w)) >> 3 // 8 when all are digits
	if n > 3 {                                   // a 20th digit
		return 0, 0, false
	}
	v = parse8(x)*1e8 + parse8(y)
	if n > 0 {
		v = v*pow10[n] + parse8(w<<(64-8*n))
	}
	return v, i + 16 + n, true
}

var pow10 = [8]uint64{1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7}

// nonDigits is zero in every byte of x (little-endian: the first byte of
// the text is the lowest) that is an ASCII digit, up to the first byte
// that is not, which is non-zero (bytes after that one may be anything).
func nonDigits(x uint64) uint64 {
	// A digit is 0x30..0x39: high nibble 3, and adding 6 to it does not
	// carry into the high nibble. A carry out of a non-digit byte only
	// reaches the bytes after it.
	return (x&0xF0F0F0F0F0F0F0F0 | (x+0x0606060606060606)&0xF0F0F0F0F0F0F0F0>>4) ^ 0x3333333333333333
}

// parse8 is the value of the eight ASCII digits in x (only the low nibble
// of each byte is read: 0 bytes count as leading zeros); the first byte
// is the most significant digit.
func parse8(x uint64) uint64 {
	x &= 0x0F0F0F0F0F0F0F0F
	x = x * (1 + 10<<8) >> 8 // byte pairs: 10*first + second, in every other byte
	x = x & 0x00FF00FF00FF00FF * (1 + 100<<16) >> 16
	return x & 0x0000FFFF0000FFFF * (1 + 10000<<32) >> 32
}

// scanHeader parses a well-formed header (see parseHeader); ok false means
// "not sure", never "invalid".
//
// It fills *r (a record the caller has zeroed; on false, what it left there
// is garbage).
func scanHeader(b []byte, version int, d *Decoder, r *Record) (pad []byte, ok bool) {
	if d != nil && version >= 2 && d.sameHead(b) {
		// The run id, epoch and topic of the last header read here, byte
		// for byte (see headCache): a record of the same loadgen instance
		// and topic, the common case.
		r.RunID, r.Epoch, r.Topic = d.head.run, d.head.epoch, d.head.topic
		return scanTail(b, len(d.head.b), r)
	}
	if len(b) < 2 || b[0] != 'r' || b[1] != '=' {
		return nil, false
	}
	j := nameEnd(b, 2)
	if j == 2 || j-2 > MaxRunIDLen || j >= len(b) || b[j] != ' ' {
		return nil, false
	}
	run, i := b[2:j], j
	var topic []byte
	if version >= 2 {
		var e uint64
		if e, i, ok = scanNum(b, i, 'e'); !ok || e > 1<<32-1 {
			return nil, false
		}
		r.Epoch = uint32(e)
		if len(b)-i < 3 || string(b[i:i+3]) != " o=" {
			return nil, false
		}
		j = nameEnd(b, i+3)
		if j-(i+3) > MaxTopicLen || j >= len(b) || b[j] != ' ' {
			return nil, false
		}
		topic, i = b[i+3:j], j
	}
	if pad, ok = scanTail(b, i, r); !ok {
		return nil, false
	}
	var runSlot, topicSlot *string
	if d != nil {
		runSlot, topicSlot = &d.run, &d.topic
	}
	r.RunID = intern(runSlot, run)
	if version >= 2 {
		r.Topic = intern(topicSlot, topic)
		if d != nil {
			d.head = headCache{b: append(d.head.b[:0], b[:i]...), run: r.RunID, epoch: r.Epoch, topic: r.Topic}
		}
	}
	return pad, true
}

// scanTail reads the fields every version shares, " s=.. q=.. t=.. n=..|",
// at b[i:], then the padding, into r.
func scanTail(b []byte, i int, r *Record) (pad []byte, ok bool) {
	var s, ts, n uint64
	if s, i, ok = scanNum(b, i, 's'); !ok || s > 1<<32-1 {
		return nil, false
	}
	if r.Seq, i, ok = scanNum(b, i, 'q'); !ok {
		return nil, false
	}
	// t= is signed: "-" then the magnitude, at most 2^63.
	if len(b)-i < 4 || b[i] != ' ' || b[i+1] != 't' || b[i+2] != '=' {
		return nil, false
	}
	neg, at, limit := b[i+3] == '-', i+3, uint64(1<<63-1)
	if neg {
		at, limit = i+4, 1<<63
	}
	if ts, i, ok = scanDigits(b, at); !ok || ts > limit {
		return nil, false
	}
	if n, i, ok = scanNum(b, i, 'n'); !ok || i >= len(b) || b[i] != '|' {
		return nil, false
	}
	pad = b[i+1:]
	if n > MaxPadding || uint64(len(pad)) != n {
		return nil, false
	}
	r.Stream = uint32(s)
	if neg {
		ts = -ts // two's complement: 1<<63 becomes math.MinInt64
	}
	r.ProducedAt = time.Unix(0, int64(ts))
	r.Padding = int(n)
	return pad, true
}

// headCache is the start of the last v2/v3 header scanHeader read in full,
// "r=<run> e=<epoch> o=<topic>", with the values it gave. A header that
// starts with the same bytes followed by " s=" reads the same run id, epoch
// and topic (each field ends at the first byte that is not a name byte or
// a digit, which is that space), so they are taken from here instead of
// being scanned and checked again: one comparison of ~20 bytes.
type headCache struct {
	b          []byte
	run, topic string
	epoch      uint32
}

// sameHead reports whether header b starts with the cached head (scanTail
// then checks that " s=" follows, which ends the topic where it ended).
func (d *Decoder) sameHead(b []byte) bool {
	h := d.head.b
	return len(h) > 0 && len(b) > len(h) && string(b[:len(h)]) == string(h)
}
