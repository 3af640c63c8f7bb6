// Package intervals is a set of uint64 kept as sorted, disjoint, closed
// ranges. kmt tracks which sequences of a stream were acknowledged or seen
// with it, so memory grows with the number of gaps, not with the number of
// messages: a stream that arrived in order is one range however long it is.
package intervals

import (
	"fmt"
	"sort"
	"strings"
)

// Range is the closed interval [Lo, Hi].
type Range struct {
	Lo uint64 `json:"lo"`
	Hi uint64 `json:"hi"`
}

// Len is the number of values in r.
func (r Range) Len() uint64 { return r.Hi - r.Lo + 1 }

// Set is a set of uint64. The zero value is empty and ready to use. A Set is
// not safe for concurrent use.
type Set struct {
	rs []Range // sorted by Lo, disjoint, never adjacent (adjacent ranges merge)
	n  uint64  // number of values
}

// search returns the index of the first range with Hi >= v.
func (s *Set) search(v uint64) int {
	// Fast path: values mostly arrive in increasing order.
	if k := len(s.rs); k == 0 || s.rs[k-1].Hi < v {
		return k
	}
	return sort.Search(len(s.rs), func(i int) bool { return s.rs[i].Hi >= v })
}

// Add inserts v and reports whether it was absent before.
func (s *Set) Add(v uint64) bool {
	// Fast path, small enough to be inlined: v extends the last range by
	// one, how sequences and offsets mostly arrive (v != 0 rules out the
	// wrap-around of Hi+1, so the last range's Hi < v and v is new).
	if k := len(s.rs) - 1; k >= 0 && v != 0 {
		if r := &s.rs[k]; r.Hi+1 == v {
			r.Hi = v
			s.n++
			return true
		}
	}
	return s.add(v)
}

// add is Add's general case.
func (s *Set) add(v uint64) bool {
	i := s.search(v)
	if i < len(s.rs) && s.rs[i].Lo <= v {
		return false // inside rs[i]
	}
	s.n++
	joinPrev := i > 0 && s.rs[i-1].Hi+1 == v
	joinNext := i < len(s.rs) && v+1 == s.rs[i].Lo
	switch {
	case joinPrev && joinNext:
		s.rs[i-1].Hi = s.rs[i].Hi
		s.rs = append(s.rs[:i], s.rs[i+1:]...)
	case joinPrev:
		s.rs[i-1].Hi = v
	case joinNext:
		s.rs[i].Lo = v
	default:
		s.rs = append(s.rs, Range{})
		copy(s.rs[i+1:], s.rs[i:])
		s.rs[i] = Range{v, v}
	}
	return true
}

// AddRange inserts every value of [lo, hi]; it returns how many were new.
func (s *Set) AddRange(lo, hi uint64) uint64 {
	if hi < lo {
		return 0
	}
	// Merge with every range that overlaps or touches [lo, hi].
	i := sort.Search(len(s.rs), func(i int) bool { return lo == 0 || s.rs[i].Hi >= lo-1 })
	j := i
	var covered uint64
	nlo, nhi := lo, hi
	for j < len(s.rs) && (hi == ^uint64(0) || s.rs[j].Lo <= hi+1) {
		if s.rs[j].Lo < nlo {
			nlo = s.rs[j].Lo
		}
		if s.rs[j].Hi > nhi {
			nhi = s.rs[j].Hi
		}
		// values of rs[j] inside [lo, hi]
		olo, ohi := max(lo, s.rs[j].Lo), min(hi, s.rs[j].Hi)
		if olo <= ohi {
			covered += ohi - olo + 1
		}
		j++
	}
	added := (hi - lo + 1) - covered
	merged := Range{nlo, nhi}
	s.rs = append(s.rs[:i], append([]Range{merged}, s.rs[j:]...)...)
	s.n += added
	return added
}

// Contains reports whether v is in the set.
func (s *Set) Contains(v uint64) bool {
	i := s.search(v)
	return i < len(s.rs) && s.rs[i].Lo <= v
}

// Len is the number of values in the set.
func (s *Set) Len() uint64 { return s.n }

// Empty reports whether the set has no values.
func (s *Set) Empty() bool { return len(s.rs) == 0 }

// Max returns the largest value; ok is false for an empty set.
func (s *Set) Max() (v uint64, ok bool) {
	if len(s.rs) == 0 {
		return 0, false
	}
	return s.rs[len(s.rs)-1].Hi, true
}

// Min returns the smallest value; ok is false for an empty set.
func (s *Set) Min() (v uint64, ok bool) {
	if len(s.rs) == 0 {
		return 0, false
	}
	return s.rs[0].Lo, true
}

// Ranges returns a copy of the ranges, ascending.
func (s *Set) Ranges() []Range { return append([]Range(nil), s.rs...) }

// NumRanges is the number of disjoint ranges (the set's memory footprint).
func (s *Set) NumRanges() int { return len(s.rs) }

// Clone returns an independent copy.
func (s *Set) Clone() *Set { return &Set{rs: s.Ranges(), n: s.n} }

// Union adds every value of o to s.
func (s *Set) Union(o *Set) {
	for _, r := range o.rs {
		s.AddRange(r.Lo, r.Hi)
	}
}

// Minus returns the values of s that are not in o, as ranges, calling fn for
// each range until fn returns false. It allocates nothing.
func (s *Set) Minus(o *Set, fn func(Range) bool) {
	j := 0
	for _, r := range s.rs {
		lo := r.Lo
		for lo <= r.Hi {
			for j < len(o.rs) && o.rs[j].Hi < lo {
				j++
			}
			if j == len(o.rs) || o.rs[j].Lo > r.Hi {
				if !fn(Range{lo, r.Hi}) {
					return
				}
				break
			}
			if o.rs[j].Lo > lo {
				if !fn(Range{lo, o.rs[j].Lo - 1}) {
					return
				}
			}
			if o.rs[j].Hi >= r.Hi {
				break
			}
			lo = o.rs[j].Hi + 1
		}
	}
}

// String renders the set as "[0-9 12 15-20]".
func (s *Set) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, r := range s.rs {
		if i > 0 {
			b.WriteByte(' ')
		}
		if r.Lo == r.Hi {
			fmt.Fprintf(&b, "%d", r.Lo)
		} else {
			fmt.Fprintf(&b, "%d-%d", r.Lo, r.Hi)
		}
	}
	b.WriteByte(']')
	return b.String()
}

// Next returns the smallest value greater than v; ok is false if none.
func (s *Set) Next(v uint64) (next uint64, ok bool) {
	if v == ^uint64(0) {
		return 0, false
	}
	i := sort.Search(len(s.rs), func(i int) bool { return s.rs[i].Hi > v })
	if i == len(s.rs) {
		return 0, false
	}
	return max(s.rs[i].Lo, v+1), true
}

// MaxIn returns the largest value in [lo, hi]; ok is false if none.
func (s *Set) MaxIn(lo, hi uint64) (v uint64, ok bool) {
	// the last range starting at or below hi
	i := sort.Search(len(s.rs), func(i int) bool { return s.rs[i].Lo > hi }) - 1
	if i < 0 || s.rs[i].Hi < lo {
		return 0, false
	}
	return min(s.rs[i].Hi, hi), true
}

// CountIn returns how many values of s lie in [lo, hi].
func (s *Set) CountIn(lo, hi uint64) uint64 {
	if lo > hi {
		return 0
	}
	var n uint64
	for i := sort.Search(len(s.rs), func(i int) bool { return s.rs[i].Hi >= lo }); i < len(s.rs) && s.rs[i].Lo <= hi; i++ {
		n += Range{max(s.rs[i].Lo, lo), min(s.rs[i].Hi, hi)}.Len()
	}
	return n
}
