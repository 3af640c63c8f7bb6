package wire

import "time"

// The validator decodes every record it reads, so the header parser is on
// its hot path. scanHeader reads a well-formed header in one pass without
// closures, strconv or allocation; anything it does not fully understand
// (an invalid run id or topic, a missing field, 20-digit numbers, "+" signs)
// goes to parseHeader, which gives the precise error. FuzzDecode and
// TestScanHeaderAgrees check that both return the same record.

// parseHeaderFast is parseHeader, taking the fast path when it can.
func parseHeaderFast(b []byte, version int, d *Decoder) (Record, []byte, error) {
	if r, pad, ok := scanHeader(b, version, d); ok {
		return r, pad, nil
	}
	return parseHeader(b, version, d)
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

// scanNum reads " x=" (prefix) then 1..19 decimal digits at b[i:] and returns
// the value and the index after the digits (ok false: anything else).
func scanNum(b []byte, i int, prefix string) (v uint64, next int, ok bool) {
	if len(b)-i < len(prefix) || string(b[i:i+len(prefix)]) != prefix {
		return 0, 0, false
	}
	i += len(prefix)
	start := i
	for i < len(b) && i-start < 19 {
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

// scanHeader parses a well-formed header (see parseHeader); ok false means
// "not sure", never "invalid".
func scanHeader(b []byte, version int, d *Decoder) (r Record, pad []byte, ok bool) {
	if len(b) < 2 || b[0] != 'r' || b[1] != '=' {
		return r, nil, false
	}
	j := nameEnd(b, 2)
	if j == 2 || j-2 > MaxRunIDLen || j >= len(b) || b[j] != ' ' {
		return r, nil, false
	}
	run, i := b[2:j], j
	var topic []byte
	if version >= 2 {
		var e uint64
		if e, i, ok = scanNum(b, i, " e="); !ok || e > 1<<32-1 {
			return r, nil, false
		}
		r.Epoch = uint32(e)
		if len(b)-i < 3 || string(b[i:i+3]) != " o=" {
			return r, nil, false
		}
		j = nameEnd(b, i+3)
		if j-(i+3) > MaxTopicLen || j >= len(b) || b[j] != ' ' {
			return r, nil, false
		}
		topic, i = b[i+3:j], j
	}
	var s, ts, n uint64
	if s, i, ok = scanNum(b, i, " s="); !ok || s > 1<<32-1 {
		return r, nil, false
	}
	if r.Seq, i, ok = scanNum(b, i, " q="); !ok {
		return r, nil, false
	}
	// t= is signed: "-" then the magnitude, at most 2^63.
	prefix, limit := " t=", uint64(1<<63-1)
	neg := len(b)-i >= 4 && string(b[i:i+4]) == " t=-"
	if neg {
		prefix, limit = " t=-", 1<<63
	}
	if ts, i, ok = scanNum(b, i, prefix); !ok || ts > limit {
		return r, nil, false
	}
	if n, i, ok = scanNum(b, i, " n="); !ok || i >= len(b) || b[i] != '|' {
		return r, nil, false
	}
	pad = b[i+1:]
	if n > MaxPadding || uint64(len(pad)) != n {
		return r, nil, false
	}
	var runSlot, topicSlot *string
	if d != nil {
		runSlot, topicSlot = &d.run, &d.topic
	}
	r.RunID = intern(runSlot, run)
	if version >= 2 {
		r.Topic = intern(topicSlot, topic)
	}
	r.Stream = uint32(s)
	if neg {
		ts = -ts // two's complement: 1<<63 becomes math.MinInt64
	}
	r.ProducedAt = time.Unix(0, int64(ts))
	r.Padding = int(n)
	return r, pad, true
}
