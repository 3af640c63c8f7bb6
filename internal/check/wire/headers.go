package wire

import (
	"bytes"
	"fmt"
	"strconv"
)

// Record headers of the transactional and fidelity load modes. They are
// outside the record's checksum on purpose: what a mirror does to headers is
// judged by comparing them with what they must be, which each is a function
// of the record's identity (so the validator keeps no state per record).

// TxnHeaderKey names the header that says which transaction a record of the
// transactional load belongs to and how many records that transaction has:
// "<epoch>.<n>/<size>" (n counts the loadgen instance's transactions from 0).
const TxnHeaderKey = "kmt-txn"

// TxnHeader returns the TxnHeaderKey value of transaction n of epoch.
func TxnHeader(epoch uint32, n uint64, size int) []byte {
	b := strconv.AppendUint(nil, uint64(epoch), 10)
	b = append(b, '.')
	b = strconv.AppendUint(b, n, 10)
	b = append(b, '/')
	return strconv.AppendInt(b, int64(size), 10)
}

// ParseTxnHeader splits a TxnHeaderKey value into the transaction's id
// ("<epoch>.<n>") and its size.
func ParseTxnHeader(v []byte) (id string, size int, err error) {
	i := bytes.IndexByte(v, '/')
	if i <= 0 || bytes.IndexByte(v[:i], '.') <= 0 {
		return "", 0, fmt.Errorf("%s header %q is not <epoch>.<n>/<size>", TxnHeaderKey, v)
	}
	n, err := strconv.Atoi(string(v[i+1:]))
	if err != nil || n < 1 {
		return "", 0, fmt.Errorf("%s header %q: size is not a positive number", TxnHeaderKey, v)
	}
	return string(v[:i]), n, nil
}

// TombHeaderKey names the header a tombstone (a record with a null value)
// of the fidelity load carries, since it has no value to say whose it is:
// "<run> <epoch> <seq>"; its key is Key(stream) like every record's.
const TombHeaderKey = "kmt-tomb"

// TombHeader returns the TombHeaderKey value of a tombstone.
func TombHeader(run string, epoch uint32, seq uint64) []byte {
	b := append([]byte(run), ' ')
	b = strconv.AppendUint(b, uint64(epoch), 10)
	b = append(b, ' ')
	return strconv.AppendUint(b, seq, 10)
}

// ParseTombHeader reads a TombHeaderKey value.
func ParseTombHeader(v []byte) (run string, epoch uint32, seq uint64, err error) {
	f := bytes.Fields(v)
	if len(f) != 3 || !ValidRunID(string(f[0])) {
		return "", 0, 0, fmt.Errorf("%s header %q is not <run> <epoch> <seq>", TombHeaderKey, v)
	}
	e, err1 := strconv.ParseUint(string(f[1]), 10, 32)
	q, err2 := strconv.ParseUint(string(f[2]), 10, 64)
	if err1 != nil || err2 != nil {
		return "", 0, 0, fmt.Errorf("%s header %q is not <run> <epoch> <seq>", TombHeaderKey, v)
	}
	return string(f[0]), uint32(e), q, nil
}

// StreamOfKey returns the stream a record key names (the inverse of Key).
func StreamOfKey(key []byte) (uint32, bool) {
	if len(key) < 2 || len(key) > 11 || key[0] != 's' {
		return 0, false
	}
	v, err := strconv.ParseUint(string(key[1:]), 10, 32)
	if err != nil || !KeyMatches(key, uint32(v)) {
		return 0, false
	}
	return uint32(v), true
}

// Header is one record header (key, value; a nil Value is a null header value).
type Header struct {
	Key   string
	Value []byte
}

// FidelityHeaderKey and FidelityNullKey name the extra headers of the
// fidelity load (FidelityHeaders).
const (
	FidelityHeaderKey = "kmt-h"
	FidelityNullKey   = "kmt-null"
)

// FidelityHeaders returns the extra headers a fidelity record of (stream,
// seq) carries, in order: FidelityHeaderKey three times (a repeated key:
// its values' order matters), with a text value, 8 binary bytes that run
// through all 256 byte values over consecutive sequences, and an empty
// value; then FidelityNullKey with a null value.
func FidelityHeaders(stream uint32, seq uint64) []Header {
	bin := make([]byte, 8)
	for i := range bin {
		bin[i] = byte(seq*8 + uint64(i) + uint64(stream))
	}
	return []Header{
		{FidelityHeaderKey, strconv.AppendUint([]byte("q"), seq, 10)},
		{FidelityHeaderKey, bin},
		{FidelityHeaderKey, []byte{}},
		{FidelityNullKey, nil},
	}
}

// FidelityHeadersMatch reports whether got (every header of a record other
// than HeaderKey, TxnHeaderKey and TombHeaderKey, in order) is exactly
// FidelityHeaders(stream, seq), null values null and empty ones empty.
func FidelityHeadersMatch(got []Header, stream uint32, seq uint64) bool {
	want := FidelityHeaders(stream, seq)
	if len(got) != len(want) {
		return false
	}
	for i := range want {
		if got[i].Key != want[i].Key || (got[i].Value == nil) != (want[i].Value == nil) || !bytes.Equal(got[i].Value, want[i].Value) {
			return false
		}
	}
	return true
}
