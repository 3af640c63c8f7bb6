package wire

import (
	"strconv"
	"strings"
	"testing"
)

// scanDigitsWant is scanDigits' contract, written the slow way: 1..19
// digits at b[i:], not followed by a 20th.
func scanDigitsWant(b []byte, i int) (uint64, int, bool) {
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	if j == i || j-i > 19 {
		return 0, 0, false
	}
	v, err := strconv.ParseUint(string(b[i:j]), 10, 64)
	return v, j, err == nil
}

// TestScanDigits checks the word-at-a-time digit reader against the slow
// one: numbers of 1 to 21 digits, each followed by every byte value
// (including '/' and ':', next to '0' and '9'), with and without enough
// bytes after them for a whole word or for three (scanDigits24; digits
// after the end must not count), and a non-digit at every position of a
// long run of digits.
func TestScanDigits(t *testing.T) {
	check := func(b []byte, i int) {
		t.Helper()
		v, next, ok := scanDigits(b, i)
		wv, wnext, wok := scanDigitsWant(b, i)
		if ok != wok || ok && (v != wv || next != wnext) {
			t.Fatalf("scanDigits(%q, %d) = %d, %d, %v; want %d, %d, %v", b, i, v, next, ok, wv, wnext, wok)
		}
	}
	digits := "9876543210123456789012"
	for n := 0; n <= 21; n++ {
		for c := range 256 {
			for _, tail := range []string{"", "abcdefghijklmnop", "abcdefghijklmnop0123456789012345"} {
				b := []byte(digits[:n] + string(rune(0)) + tail)
				b[n] = byte(c)
				check(b, 0)
				check(append([]byte(" t="), b...), 3)
			}
		}
	}
	long := []byte(strings.Repeat("7", 19) + " n=12|abcdefghijklmnop")
	for pos := range 19 {
		for _, c := range []byte{'/', ':', ' ', 'a', 0, 0xff, 0xba} {
			b := append([]byte(nil), long...)
			b[pos] = c
			check(b, 0)
		}
	}
}

// TestParseHex32: the table-driven hex reader against strconv on every
// byte value at every digit position (upper-case hex is not a checksum's).
func TestParseHex32(t *testing.T) {
	for _, base := range []string{"0123abcd", "ffffffff", "00000000", "9a8b7c6d"} {
		for pos := range 8 {
			for c := range 256 {
				b := []byte(base)
				b[pos] = byte(c)
				v, ok := parseHex32(b)
				w, err := strconv.ParseUint(string(b), 16, 32)
				wok := err == nil && strings.ToLower(string(b)) == string(b)
				if ok != wok || ok && uint64(v) != w || !ok && v != 0 {
					t.Fatalf("parseHex32(%q) = %x, %v; want %x, %v", b, v, ok, w, wok)
				}
			}
		}
	}
}
