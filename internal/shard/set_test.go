package shard

import (
	"slices"
	"testing"
)

func TestSet(t *testing.T) {
	var s Set
	if s.Len() != 0 || s.String() != "none" || len(s.Slots()) != 0 {
		t.Fatalf("zero Set = %v (len %d), want empty", s, s.Len())
	}
	s = NewSet(3, 0, 1, 2, 8, 4095, 12, 13, 14, 15, -1, MaxSlots)
	if got, want := s.Slots(), []int{0, 1, 2, 3, 8, 12, 13, 14, 15, 4095}; !slices.Equal(got, want) {
		t.Errorf("Slots() = %v, want %v", got, want)
	}
	if got, want := s.String(), "0-3,8,12-15,4095"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if s.Has(-1) || s.Has(MaxSlots) || s.Has(4) || !s.Has(4095) {
		t.Errorf("Has is wrong on %v", s)
	}
	t2 := s.Remove(8).Add(9)
	if s.Has(9) || !s.Has(8) {
		t.Errorf("Add/Remove changed the receiver: %v", s)
	}
	if got, want := t2.String(), "0-3,9,12-15,4095"; got != want {
		t.Errorf("after Remove(8).Add(9): %q, want %q", got, want)
	}
	a, b := NewSet(1, 2, 3), NewSet(3, 4)
	if got, want := a.Union(b), NewSet(1, 2, 3, 4); got != want {
		t.Errorf("Union = %v, want %v", got, want)
	}
	if got, want := a.Minus(b), NewSet(1, 2); got != want {
		t.Errorf("Minus = %v, want %v", got, want)
	}
	if got, want := a.Intersect(b), NewSet(3); got != want {
		t.Errorf("Intersect = %v, want %v", got, want)
	}
}
