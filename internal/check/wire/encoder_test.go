package wire

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// TestEncoderMatchesAppend: an Encoder writes, byte for byte, what Append
// writes for the same record, across the edges of every field (empty topic,
// longest run id and topic, zero and largest stream, sequence and padding
// digits, negative and zero timestamps), and what it writes decodes intact.
func TestEncoderMatchesAppend(t *testing.T) {
	long := func(n int) string { return string(bytes.Repeat([]byte("x"), n)) }
	runs := []string{"r", "run-42", long(MaxRunIDLen)}
	topics := []string{"", "orders", long(MaxTopicLen)}
	streams := []uint32{0, 7, math.MaxUint32}
	seqs := []uint64{0, 9, 10, 1234, math.MaxUint64}
	ats := []time.Time{time.Unix(0, 0), time.Unix(0, -5), time.Unix(1764049200, 123), time.Unix(0, math.MaxInt64), time.Unix(0, math.MinInt64)}
	pads := []int{0, 1, 15, 16, 17, 99, 100, 1000, 4096}
	rng := rand.New(rand.NewPCG(1, 2))
	n := 0
	for _, run := range runs {
		for _, topic := range topics {
			for _, s := range streams {
				epoch := rng.Uint32()
				e := NewEncoder(run, topic, epoch, s)
				for _, q := range seqs {
					for _, at := range ats {
						for _, pad := range pads {
							r := Record{RunID: run, Topic: topic, Epoch: epoch, Stream: s, Seq: q, ProducedAt: at, Padding: pad}
							want := Append([]byte("prefix"), r)
							got := e.Append([]byte("prefix"), q, at, pad)
							if !bytes.Equal(got, want) {
								t.Fatalf("%+v:\nEncoder %q\nAppend  %q", r, got, want)
							}
							if _, err := Decode(got[len("prefix"):]); err != nil {
								t.Fatalf("%+v: encoded record does not decode: %v", r, err)
							}
							n++
						}
					}
				}
			}
		}
	}
	if n != 3*3*3*5*5*9 {
		t.Fatalf("compared %d records", n)
	}
}

// TestAppendSizedHitsTheSize: AppendSized makes every record exactly the
// size asked for, except where no padding can (the "n=" digits jump) and
// below the header, where it gives the largest record that stays under the
// size, or the smallest record; and it equals Append with that padding.
func TestAppendSizedHitsTheSize(t *testing.T) {
	cases := []Record{
		{RunID: "r", Stream: 0, Seq: 0, ProducedAt: time.Unix(0, 0)},
		{RunID: "run-with-a-longer-id", Topic: "t", Epoch: 3, Stream: 123456, Seq: 9999999999, ProducedAt: time.Unix(1764049200, 123)},
		{RunID: "x", Topic: "orders", Stream: math.MaxUint32, Seq: math.MaxUint64, ProducedAt: time.Unix(0, -5)},
	}
	var exact, short, floor int
	for _, r := range cases {
		e := NewEncoder(r.RunID, r.Topic, r.Epoch, r.Stream)
		hs := HeaderSize(r) // with padding 0: the smallest record
		for size := 0; size <= hs+20000; size++ {
			got := e.AppendSized(nil, r.Seq, r.ProducedAt, size)
			rec, err := Decode(got)
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			r.Padding = rec.Padding
			if !bytes.Equal(got, Append(nil, r)) {
				t.Fatalf("size %d: AppendSized differs from Append with padding %d", size, rec.Padding)
			}
			switch {
			case len(got) == size:
				exact++
			case size < hs && rec.Padding == 0:
				floor++
			case len(got) == size-1:
				// No padding gives size: padding p+1 would make the
				// header one digit longer and the record size+1.
				r.Padding++
				if len(Append(nil, r)) != size+1 {
					t.Fatalf("size %d: got %d bytes although padding %d gives exactly the size", size, len(got), r.Padding)
				}
				short++
			default:
				t.Fatalf("size %d: got %d bytes", size, len(got))
			}
		}
	}
	// Per case: 20001 sizes from the header up, of which 4 (just past
	// 9, 99, 999 and 9999 bytes of padding) cannot be hit, plus the sizes
	// below the header.
	if short != 3*4 || exact != 3*(20001-4) {
		t.Fatalf("exact %d, one short %d, below the header %d", exact, short, floor)
	}
}

// TestDecimalLen: decimalLen agrees with strconv on both sides of every
// power of ten a uint64 holds, and at its ends.
func TestDecimalLen(t *testing.T) {
	vals := []uint64{0, math.MaxUint64}
	for p := uint64(1); ; p *= 10 {
		vals = append(vals, p-1, p, p+1)
		if p > math.MaxUint64/10 {
			break
		}
	}
	for _, v := range vals {
		if got, want := decimalLen(v), len(strconv.FormatUint(v, 10)); got != want {
			t.Errorf("decimalLen(%d) = %d, want %d", v, got, want)
		}
	}
	if len(vals) != 2+3*20 {
		t.Fatalf("checked %d values", len(vals))
	}
}

// TestEncoderTimestamps: the timestamp digits (cached per second, nine
// formatted per record) equal strconv's across seconds, at the second's
// edges and below one second, in any order.
func TestEncoderTimestamps(t *testing.T) {
	e := NewEncoder("r", "t", 1, 2)
	rng := rand.New(rand.NewPCG(3, 4))
	var ns []int64
	for _, base := range []int64{0, 999_999_999, 1_000_000_000, 1764049200_000000000, math.MaxInt64 - 5} {
		for d := int64(-3); d <= 3; d++ {
			ns = append(ns, base+d)
		}
	}
	for range 10000 {
		ns = append(ns, 1764049200_000000000+rng.Int64N(5_000_000_000))
	}
	for _, v := range ns {
		at := time.Unix(0, v)
		r := Record{RunID: "r", Topic: "t", Epoch: 1, Stream: 2, Seq: 5, ProducedAt: at, Padding: 3}
		if got, want := e.Append(nil, 5, at, 3), Append(nil, r); !bytes.Equal(got, want) {
			t.Fatalf("t=%d:\nEncoder %q\nAppend  %q", v, got, want)
		}
	}
}

// BenchmarkEncodeRecord is the CPU cost of building one record, the
// loadgen's way (an Encoder per stream) and with Append, at 100 and 1000
// bytes; 16 streams in turn, a fresh timestamp per record, as the loadgen
// sends them. ns/op needs many records: make bench runs 1,000,000.
func BenchmarkEncodeRecord(b *testing.B) {
	for _, size := range []int{100, 1000} {
		encs := make([]*Encoder, 16)
		for s := range encs {
			encs[s] = NewEncoder("bench-run-1", "orders", 7, uint32(s))
		}
		b.Run(fmt.Sprintf("encoder/size=%d", size), func(b *testing.B) {
			buf := make([]byte, 0, 2*size)
			start := time.Now()
			for i := range b.N {
				buf = encs[i%16].AppendSized(buf[:0], uint64(i/16), start.Add(time.Since(start)), size)
			}
		})
		b.Run(fmt.Sprintf("append/size=%d", size), func(b *testing.B) {
			buf := make([]byte, 0, 2*size)
			r := Record{RunID: "bench-run-1", Topic: "orders", Epoch: 7}
			r.Padding = size - HeaderSize(r) // about the size: Append takes the padding as given
			for i := range b.N {
				r.Stream, r.Seq, r.ProducedAt = uint32(i%16), uint64(i/16), time.Now()
				buf = Append(buf[:0], r)
			}
		})
	}
}
