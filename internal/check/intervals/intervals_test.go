package intervals

import (
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
)

const maxU = math.MaxUint64

// op is one mutation: Add(v) when hi < lo is false and lo == hi with single,
// else AddRange(lo, hi).
type op struct {
	single bool
	lo, hi uint64
}

func add(v uint64) op       { return op{true, v, v} }
func addR(lo, hi uint64) op { return op{false, lo, hi} }
func build(ops ...op) *Set  { s := &Set{}; apply(s, ops); return s }
func apply(s *Set, ops []op) {
	for _, o := range ops {
		if o.single {
			s.Add(o.lo)
		} else {
			s.AddRange(o.lo, o.hi)
		}
	}
}

func TestSetTable(t *testing.T) {
	cases := []struct {
		name   string
		ops    []op
		want   string
		n      uint64
		ranges int
	}{
		{"empty", nil, "[]", 0, 0},
		{"in order merges", []op{add(0), add(1), add(2)}, "[0-2]", 3, 1},
		{"reverse order merges", []op{add(2), add(1), add(0)}, "[0-2]", 3, 1},
		{"gap filled joins both sides", []op{add(1), add(3), add(2)}, "[1-3]", 3, 1},
		{"duplicates ignored", []op{add(5), add(5), addR(5, 5)}, "[5]", 1, 1},
		{"gaps kept", []op{add(1), add(3), add(7)}, "[1 3 7]", 3, 3},
		{"range swallows several", []op{add(1), add(3), add(7), addR(0, 10)}, "[0-10]", 11, 1},
		{"range touching below and above merges", []op{addR(0, 4), addR(10, 12), addR(5, 9)}, "[0-12]", 13, 1},
		{"range touching only above", []op{addR(10, 12), addR(5, 9)}, "[5-12]", 8, 1},
		{"range inside", []op{addR(0, 100), addR(5, 9)}, "[0-100]", 101, 1},
		{"empty range ignored", []op{addR(5, 4)}, "[]", 0, 0},
		{"overlapping ranges", []op{addR(0, 5), addR(3, 8), addR(20, 30), addR(25, 40)}, "[0-8 20-40]", 30, 2},
		{"zero", []op{add(0), addR(0, 0)}, "[0]", 1, 1},
		{"max value", []op{add(maxU), add(maxU - 1)}, "[18446744073709551614-18446744073709551615]", 2, 1},
		{"range up to max", []op{add(maxU), addR(maxU-3, maxU-1)}, "[18446744073709551612-18446744073709551615]", 4, 1},
		{"range up to max does not wrap", []op{add(0), addR(maxU-1, maxU)}, "[0 18446744073709551614-18446744073709551615]", 3, 2},
		{"range from zero touching", []op{add(3), addR(0, 2)}, "[0-3]", 4, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := build(tc.ops...)
			if got := s.String(); got != tc.want {
				t.Errorf("String() = %s, want %s", got, tc.want)
			}
			if s.Len() != tc.n || s.NumRanges() != tc.ranges || s.Empty() != (tc.n == 0) {
				t.Errorf("Len %d NumRanges %d Empty %v, want %d %d %v", s.Len(), s.NumRanges(), s.Empty(), tc.n, tc.ranges, tc.n == 0)
			}
		})
	}
}

func TestAddReturnValues(t *testing.T) {
	s := &Set{}
	for _, tc := range []struct {
		o    op
		want uint64
	}{{add(5), 1}, {add(5), 0}, {addR(3, 7), 4}, {addR(0, 10), 6}, {addR(0, 10), 0}, {addR(12, 11), 0}, {addR(20, 29), 10}} {
		var got uint64
		if tc.o.single {
			if s.Add(tc.o.lo) {
				got = 1
			}
		} else {
			got = s.AddRange(tc.o.lo, tc.o.hi)
		}
		if got != tc.want {
			t.Fatalf("after %s: %+v added %d, want %d", s, tc.o, got, tc.want)
		}
	}
}

func TestQueries(t *testing.T) {
	s := build(addR(10, 20), add(30), addR(40, 41))
	for _, tc := range []struct {
		v    uint64
		want bool
	}{{9, false}, {10, true}, {15, true}, {20, true}, {21, false}, {29, false}, {30, true}, {31, false}, {41, true}, {42, false}, {0, false}, {maxU, false}} {
		if got := s.Contains(tc.v); got != tc.want {
			t.Errorf("Contains(%d) = %v", tc.v, got)
		}
	}
	if v, ok := s.Min(); !ok || v != 10 {
		t.Errorf("Min = %d %v", v, ok)
	}
	if v, ok := s.Max(); !ok || v != 41 {
		t.Errorf("Max = %d %v", v, ok)
	}
	var e Set
	if _, ok := e.Min(); ok {
		t.Error("Min of empty set ok")
	}
	if _, ok := e.Max(); ok {
		t.Error("Max of empty set ok")
	}
	if !reflect.DeepEqual(s.Ranges(), []Range{{10, 20}, {30, 30}, {40, 41}}) {
		t.Errorf("Ranges = %v", s.Ranges())
	}
	if (Range{3, 7}).Len() != 5 {
		t.Error("Range.Len")
	}
	// Ranges and Clone are copies.
	c := s.Clone()
	s.Ranges()[0].Lo = 0
	c.Add(25)
	if s.String() != "[10-20 30 40-41]" || c.String() != "[10-20 25 30 40-41]" || c.Len() != s.Len()+1 {
		t.Errorf("copies share state: s=%s c=%s", s, c)
	}
}

func minus(a, b *Set) []Range {
	var out []Range
	a.Minus(b, func(r Range) bool { out = append(out, r); return true })
	return out
}

func TestMinusAndUnion(t *testing.T) {
	cases := []struct {
		name string
		a, b *Set
		want []Range
	}{
		{"empty minus empty", build(), build(), nil},
		{"a minus empty", build(addR(1, 5)), build(), []Range{{1, 5}}},
		{"empty minus b", build(), build(addR(1, 5)), nil},
		{"hole in the middle", build(addR(0, 10)), build(addR(3, 4)), []Range{{0, 2}, {5, 10}}},
		{"b covers a", build(addR(3, 4)), build(addR(0, 10)), nil},
		{"b spans two ranges of a", build(addR(0, 5), addR(10, 15)), build(addR(4, 11)), []Range{{0, 3}, {12, 15}}},
		{"several holes", build(addR(0, 20)), build(add(0), add(5), addR(7, 8), add(20)), []Range{{1, 4}, {6, 6}, {9, 19}}},
		{"disjoint", build(addR(0, 2), addR(8, 9)), build(addR(4, 6)), []Range{{0, 2}, {8, 9}}},
		{"at max", build(addR(maxU-5, maxU)), build(addR(maxU-3, maxU)), []Range{{maxU - 5, maxU - 4}}},
		{"b ranges beyond a", build(addR(10, 12)), build(addR(0, 1), addR(20, 30)), []Range{{10, 12}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := minus(tc.a, tc.b); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("%s minus %s = %v, want %v", tc.a, tc.b, got, tc.want)
			}
			u := tc.a.Clone()
			u.Union(tc.b)
			for _, r := range append(tc.a.Ranges(), tc.b.Ranges()...) {
				if !u.Contains(r.Lo) || !u.Contains(r.Hi) {
					t.Fatalf("union %s misses %v", u, r)
				}
			}
			var wantLen uint64
			for _, r := range tc.want {
				wantLen += r.Len()
			}
			if u.Len() != tc.b.Len()+wantLen {
				t.Fatalf("union len %d, want |b| + |a-b| = %d", u.Len(), tc.b.Len()+wantLen)
			}
		})
	}
	// fn returning false stops the walk.
	n := 0
	build(add(1), add(3), add(5)).Minus(build(), func(Range) bool { n++; return false })
	if n != 1 {
		t.Fatalf("Minus kept calling fn after false: %d calls", n)
	}
}

// checkInvariants verifies the representation: sorted, disjoint, never
// adjacent, n equal to the sum of range lengths.
func checkInvariants(t *testing.T, s *Set) {
	t.Helper()
	var n uint64
	for i, r := range s.rs {
		if r.Hi < r.Lo {
			t.Fatalf("range %d inverted: %v", i, r)
		}
		if i > 0 && s.rs[i-1].Hi+1 >= r.Lo {
			t.Fatalf("ranges %v and %v overlap or touch", s.rs[i-1], r)
		}
		n += r.Len()
	}
	if n != s.n {
		t.Fatalf("n = %d, ranges hold %d", s.n, n)
	}
}

// TestRandomAgainstMapModel drives Set and a map[uint64]bool with the same
// random operations over a small domain (so collisions, merges and splits are
// frequent) and compares every observable after each step.
func TestRandomAgainstMapModel(t *testing.T) {
	for seed := uint64(1); seed <= 40; seed++ {
		rng := rand.New(rand.NewPCG(seed, seed*7919))
		domain := uint64(8 + rng.IntN(200))
		// Half the seeds work near the top of uint64 to exercise overflow edges.
		base := uint64(0)
		if seed%2 == 0 {
			base = maxU - domain + 1
		}
		s := &Set{}
		other := &Set{}
		model := map[uint64]bool{}
		otherModel := map[uint64]bool{}
		for step := 0; step < 400; step++ {
			a, b := base+rng.Uint64N(domain), base+rng.Uint64N(domain)
			switch rng.IntN(4) {
			case 0:
				got := s.Add(a)
				if got == model[a] {
					t.Fatalf("seed %d step %d: Add(%d) = %v, model had it: %v", seed, step, a, got, model[a])
				}
				model[a] = true
			case 1:
				lo, hi := min(a, b), max(a, b)
				if rng.IntN(10) == 0 {
					lo, hi = hi, lo // sometimes an empty (inverted) range
				}
				var want uint64
				for v := lo; v <= hi && lo <= hi; v++ {
					if !model[v] {
						want++
						model[v] = true
					}
					if v == maxU {
						break
					}
				}
				if got := s.AddRange(lo, hi); got != want {
					t.Fatalf("seed %d step %d: AddRange(%d, %d) = %d, want %d", seed, step, lo, hi, got, want)
				}
			case 2:
				other.Add(a)
				otherModel[a] = true
			case 3:
				lo, hi := min(a, b), max(a, b)
				other.AddRange(lo, hi)
				for v := lo; ; v++ {
					otherModel[v] = true
					if v == hi {
						break
					}
				}
			}
			checkInvariants(t, s)
			compare(t, seed, step, s, model, base, domain)
			if step%50 == 49 {
				checkMinus(t, seed, s, other, model, otherModel)
				u := s.Clone()
				u.Union(other)
				um := map[uint64]bool{}
				for v := range model {
					um[v] = true
				}
				for v := range otherModel {
					um[v] = true
				}
				checkInvariants(t, u)
				compare(t, seed, step, u, um, base, domain)
			}
		}
	}
}

func compare(t *testing.T, seed uint64, step int, s *Set, model map[uint64]bool, base, domain uint64) {
	t.Helper()
	if s.Len() != uint64(len(model)) {
		t.Fatalf("seed %d step %d: Len %d, model %d (%s)", seed, step, s.Len(), len(model), s)
	}
	for i := uint64(0); i < domain; i++ {
		if s.Contains(base+i) != model[base+i] {
			t.Fatalf("seed %d step %d: Contains(%d) = %v, model %v (%s)", seed, step, base+i, s.Contains(base+i), model[base+i], s)
		}
	}
	keys := make([]uint64, 0, len(model))
	for v := range model {
		keys = append(keys, v)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	mn, okMin := s.Min()
	mx, okMax := s.Max()
	if okMin != (len(keys) > 0) || okMax != (len(keys) > 0) || (len(keys) > 0 && (mn != keys[0] || mx != keys[len(keys)-1])) {
		t.Fatalf("seed %d step %d: Min/Max %d/%d %v, model %v", seed, step, mn, mx, okMin, keys)
	}
}

func checkMinus(t *testing.T, seed uint64, a, b *Set, am, bm map[uint64]bool) {
	t.Helper()
	got := map[uint64]bool{}
	var prev *Range
	for _, r := range minus(a, b) {
		if prev != nil && prev.Hi >= r.Lo {
			t.Fatalf("seed %d: Minus ranges out of order: %v then %v", seed, *prev, r)
		}
		for v := r.Lo; ; v++ {
			got[v] = true
			if v == r.Hi {
				break
			}
		}
		rr := r
		prev = &rr
	}
	want := map[uint64]bool{}
	for v := range am {
		if !bm[v] {
			want[v] = true
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("seed %d: %s minus %s = %v, want %v", seed, a, b, got, want)
	}
}

func BenchmarkAddInOrder(b *testing.B) {
	s := &Set{}
	for i := 0; i < b.N; i++ {
		s.Add(uint64(i))
	}
}

func TestNextMaxInCountIn(t *testing.T) {
	var s Set
	s.AddRange(2, 4)
	s.AddRange(10, 12)
	s.Add(20)
	for _, c := range []struct {
		v    uint64
		want uint64
		ok   bool
	}{{0, 2, true}, {2, 3, true}, {4, 10, true}, {11, 12, true}, {12, 20, true}, {20, 0, false}, {^uint64(0), 0, false}} {
		if got, ok := s.Next(c.v); got != c.want || ok != c.ok {
			t.Errorf("Next(%d) = %d,%v want %d,%v", c.v, got, ok, c.want, c.ok)
		}
	}
	for _, c := range []struct {
		lo, hi, want uint64
		ok           bool
	}{{0, 1, 0, false}, {0, 3, 3, true}, {0, 9, 4, true}, {5, 9, 0, false}, {5, 11, 11, true}, {0, 100, 20, true}, {13, 19, 0, false}, {12, 12, 12, true}} {
		if got, ok := s.MaxIn(c.lo, c.hi); got != c.want || ok != c.ok {
			t.Errorf("MaxIn(%d,%d) = %d,%v want %d,%v", c.lo, c.hi, got, ok, c.want, c.ok)
		}
	}
	for _, c := range []struct{ lo, hi, want uint64 }{{0, 100, 7}, {3, 11, 4}, {5, 9, 0}, {20, 20, 1}, {4, 2, 0}, {0, 2, 1}} {
		if got := s.CountIn(c.lo, c.hi); got != c.want {
			t.Errorf("CountIn(%d,%d) = %d want %d", c.lo, c.hi, got, c.want)
		}
	}
}
