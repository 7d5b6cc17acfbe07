package shard

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/sharding"
	"k8s.io/apimachinery/pkg/types"
)

func TestNewRing(t *testing.T) {
	for _, slots := range []int{1, 2, 4, 16, 64, 1024, MaxSlots} {
		r, err := NewRing(slots)
		if err != nil || r.Slots() != slots {
			t.Errorf("NewRing(%d) = %d slots, %v; want %d slots", slots, r.Slots(), err, slots)
		}
	}
	for _, slots := range []int{-16, 0, 3, 6, 100, MaxSlots + 1, 2 * MaxSlots} {
		if _, err := NewRing(slots); err == nil {
			t.Errorf("NewRing(%d): no error", slots)
		}
	}
	if got := (Ring{}).Slots(); got != 1 {
		t.Errorf("zero Ring has %d slots, want 1", got)
	}
}

// randomUID returns a UID shaped as the apiserver makes them.
func randomUID(rng *rand.Rand) types.UID {
	b := make([]byte, 16)
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return types.UID(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}

func objectWithUID(uid types.UID) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x", UID: uid}}
}

// TestContainsAgreesWithSelector: for random UIDs and random sets of slots,
// the client-side test and the selector the server evaluates agree, and
// every object is in exactly one slot.
func TestContainsAgreesWithSelector(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, slots := range []int{1, 2, 16, 64, MaxSlots} {
		r, _ := NewRing(slots)
		for range 20 {
			var held Set
			for slot := range slots {
				if rng.IntN(2) == 0 {
					held = held.Add(slot)
				}
			}
			if held.Len() == 0 {
				held = held.Add(rng.IntN(slots))
			}
			sel, err := r.Selector(held)
			if err != nil {
				t.Fatal(err)
			}
			for range 200 {
				uid := randomUID(rng)
				matches, err := sel.Matches(objectWithUID(uid))
				if err != nil {
					t.Fatal(err)
				}
				if got := r.Contains(held, uid); got != matches {
					t.Fatalf("%d slots, held %v, uid %s (slot %d): Contains = %t, Selector.Matches = %t", slots, held, uid, r.SlotOf(uid), got, matches)
				}
			}
		}
		// Each object in exactly one slot's selector: the one SlotOf says.
		if slots > 64 {
			continue
		}
		for range 200 {
			uid := randomUID(rng)
			for slot := range slots {
				sel, _ := r.Selector(NewSet(slot))
				matches, _ := sel.Matches(objectWithUID(uid))
				if matches != (slot == r.SlotOf(uid)) {
					t.Fatalf("%d slots: uid %s, SlotOf = %d, but slot %d's selector matches = %t", slots, uid, r.SlotOf(uid), slot, matches)
				}
			}
		}
	}
}

// TestBoundsAtTheEdges checks the ranges against the sharding package's own
// comparison at the first and last hash of each slot: start inclusive,
// end exclusive, the last slot ending at 2^64.
func TestBoundsAtTheEdges(t *testing.T) {
	for _, slots := range []int{1, 2, 16, 64, MaxSlots} {
		r, _ := NewRing(slots)
		width := ^uint64(0)/uint64(slots) + 1 // 2^64/slots, wrapping to 0 for one slot
		for slot := range slots {
			start, end := r.Bounds(slot)
			if slot == 0 && start != "0x0000000000000000" {
				t.Errorf("%d slots: slot 0 starts at %s", slots, start)
			}
			if slot == slots-1 && end != "0x10000000000000000" {
				t.Errorf("%d slots: the last slot ends at %s, want 0x10000000000000000", slots, end)
			}
			if slot > 0 {
				if _, prevEnd := r.Bounds(slot - 1); prevEnd != start {
					t.Errorf("%d slots: slot %d ends at %s but slot %d starts at %s", slots, slot-1, prevEnd, slot, start)
				}
			}
			first := uint64(slot) * width
			last := first + width - 1
			for _, h := range []uint64{first, last} {
				hex := fmt.Sprintf("0x%016x", h)
				inRange := !sharding.HexLess(hex, start) && sharding.HexLess(hex, end)
				if !inRange || r.slotOfHash(h) != slot {
					t.Errorf("%d slots: hash %s: in [%s, %s) = %t, slotOfHash = %d, want slot %d", slots, hex, start, end, inRange, r.slotOfHash(h), slot)
				}
			}
			if slot > 0 {
				before := fmt.Sprintf("0x%016x", first-1)
				if !sharding.HexLess(before, start) {
					t.Errorf("%d slots: hash %s, just before slot %d, is not below its start %s", slots, before, slot, start)
				}
			}
		}
	}
}

func TestHashIsTheShardingPackages(t *testing.T) {
	for _, uid := range []types.UID{"", "abc", "6f1c1bd5-3b4e-4b8e-9d1c-2f7a1f0c9e11"} {
		if got, want := fmt.Sprintf("%016x", Hash(uid)), sharding.HashField(string(uid)); got != want {
			t.Errorf("Hash(%q) = %s, sharding.HashField = %s", uid, got, want)
		}
	}
}

func TestSelectorMergesAdjacentSlots(t *testing.T) {
	r, _ := NewRing(16)
	tests := []struct {
		name string
		held Set
		want []string
	}{
		{"one slot", NewSet(5), []string{"shardRange(object.metadata.uid, '0x5000000000000000', '0x6000000000000000')"}},
		{"runs", NewSet(0, 1, 2, 3, 8, 15), []string{
			"shardRange(object.metadata.uid, '0x0000000000000000', '0x4000000000000000')",
			"shardRange(object.metadata.uid, '0x8000000000000000', '0x9000000000000000')",
			"shardRange(object.metadata.uid, '0xf000000000000000', '0x10000000000000000')",
		}},
		{"every slot", r.All(), []string{"shardRange(object.metadata.uid, '0x0000000000000000', '0x10000000000000000')"}},
		{"slots beyond the ring are ignored", NewSet(15, 16, 100), []string{"shardRange(object.metadata.uid, '0xf000000000000000', '0x10000000000000000')"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel, err := r.Selector(tt.held)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := sel.String(), strings.Join(tt.want, " || "); got != want {
				t.Errorf("Selector(%v) =\n%s\nwant\n%s", tt.held, got, want)
			}
		})
	}
	if _, err := r.Selector(Set{}); err == nil {
		t.Errorf("Selector of no slots: no error (an empty selector would select everything)")
	}
	if _, err := r.Selector(NewSet(16)); err == nil {
		t.Errorf("Selector of no slot of the ring: no error")
	}
}

func TestSelectorOfASingleSlotRing(t *testing.T) {
	var r Ring
	sel, err := r.Selector(r.All())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sel.String(), "shardRange(object.metadata.uid, '0x0000000000000000', '0x10000000000000000')"; got != want {
		t.Errorf("one slot: %s, want %s", got, want)
	}
	if got := r.SlotOf("anything"); got != 0 {
		t.Errorf("one slot: SlotOf = %d", got)
	}
}
