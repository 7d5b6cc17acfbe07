package shard

import (
	"math/bits"
	"strconv"
	"strings"
)

// Set is a set of slot numbers in [0, MaxSlots). The zero value is the empty
// set. A Set is a value: assigning it copies it, and == compares two sets.
type Set struct {
	words [MaxSlots / 64]uint64
}

// NewSet returns the set of the given slots. Slots outside [0, MaxSlots) are
// left out.
func NewSet(slots ...int) Set {
	var s Set
	for _, slot := range slots {
		s = s.Add(slot)
	}
	return s
}

// Has reports whether slot is in s.
func (s Set) Has(slot int) bool {
	if slot < 0 || slot >= MaxSlots {
		return false
	}
	return s.words[slot/64]&(1<<(slot%64)) != 0
}

// Add returns s with slot in it; s itself is unchanged. A slot outside
// [0, MaxSlots) is not added.
func (s Set) Add(slot int) Set {
	if slot >= 0 && slot < MaxSlots {
		s.words[slot/64] |= 1 << (slot % 64)
	}
	return s
}

// Remove returns s without slot; s itself is unchanged.
func (s Set) Remove(slot int) Set {
	if slot >= 0 && slot < MaxSlots {
		s.words[slot/64] &^= 1 << (slot % 64)
	}
	return s
}

// Len is the number of slots in s.
func (s Set) Len() int {
	n := 0
	for _, w := range s.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// Slots returns the slots of s in ascending order.
func (s Set) Slots() []int {
	out := make([]int, 0, s.Len())
	for i, w := range s.words {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			out = append(out, i*64+b)
			w &^= 1 << b
		}
	}
	return out
}

// Union returns the slots in s or in t.
func (s Set) Union(t Set) Set {
	for i := range s.words {
		s.words[i] |= t.words[i]
	}
	return s
}

// Minus returns the slots of s that are not in t.
func (s Set) Minus(t Set) Set {
	for i := range s.words {
		s.words[i] &^= t.words[i]
	}
	return s
}

// Intersect returns the slots in both s and t.
func (s Set) Intersect(t Set) Set {
	for i := range s.words {
		s.words[i] &= t.words[i]
	}
	return s
}

// runs returns s as maximal runs of consecutive slots, each [first, last].
func (s Set) runs() [][2]int {
	var out [][2]int
	for _, slot := range s.Slots() {
		if n := len(out); n > 0 && out[n-1][1] == slot-1 {
			out[n-1][1] = slot
			continue
		}
		out = append(out, [2]int{slot, slot})
	}
	return out
}

// String lists the slots of s as ascending ranges, "0-3,8,12-15"; the empty
// set is "none".
func (s Set) String() string {
	runs := s.runs()
	if len(runs) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, r := range runs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(r[0]))
		if r[1] != r[0] {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(r[1]))
		}
	}
	return b.String()
}
