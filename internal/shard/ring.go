package shard

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"

	"k8s.io/apimachinery/pkg/sharding"
	"k8s.io/apimachinery/pkg/types"
)

// MaxSlots is the largest number of slots a Ring may have.
const MaxSlots = 4096

// Field is the object field whose hash places an object in a slot, spelled
// as shard selectors spell it.
const Field = "object.metadata.uid"

// hashSpaceEnd is the exclusive upper bound of the hash space, 2^64, as the
// apiserver's shard selector parser requires it to be written (the one
// bound with 17 hex digits).
const hashSpaceEnd = "0x10000000000000000"

// A Ring splits the 64-bit FNV-1a hash space of metadata.uid (the hash
// k8s.io/apimachinery/pkg/sharding computes, the one the apiserver
// evaluates for shard selectors) into a power of two of equal slots: slot i
// of n covers the hashes [i*2^64/n, (i+1)*2^64/n), so it is the top
// log2(n) bits of the hash. The zero value is a ring of one slot.
type Ring struct {
	bits uint8 // log2 of the slot count
}

// NewRing returns a ring of slots slots. slots must be a power of two in
// [1, MaxSlots].
func NewRing(slots int) (Ring, error) {
	if slots < 1 || slots > MaxSlots || slots&(slots-1) != 0 {
		return Ring{}, fmt.Errorf("shard: %d slots: the slot count must be a power of two from 1 to %d", slots, MaxSlots)
	}
	return Ring{bits: uint8(bits.TrailingZeros(uint(slots)))}, nil
}

// Slots is the number of slots of r.
func (r Ring) Slots() int { return 1 << r.bits }

// All is the set of every slot of r.
func (r Ring) All() Set {
	var s Set
	for slot := range r.Slots() {
		s = s.Add(slot)
	}
	return s
}

// Hash is the hash of uid that shard selectors compare with their bounds:
// sharding.HashField's 64-bit FNV-1a, as a number.
func Hash(uid types.UID) uint64 {
	// HashField always returns 16 lowercase hex digits.
	h, _ := strconv.ParseUint(sharding.HashField(string(uid)), 16, 64)
	return h
}

// SlotOf is the slot of r that holds the object with this uid.
func (r Ring) SlotOf(uid types.UID) int {
	return r.slotOfHash(Hash(uid))
}

func (r Ring) slotOfHash(h uint64) int {
	// A shift by 64 (a ring of one slot) is 0 in Go.
	return int(h >> (64 - uint(r.bits)))
}

// Bounds returns the hash range of slot as a shard selector writes it: the
// inclusive start and the exclusive end, each "0x" and 16 hex digits, except
// that the last slot ends at 2^64, "0x10000000000000000".
func (r Ring) Bounds(slot int) (start, end string) {
	return r.start(slot), r.start(slot + 1)
}

// start is the first hash of slot, or 2^64 for slot == r.Slots().
func (r Ring) start(slot int) string {
	if slot >= r.Slots() {
		return hashSpaceEnd
	}
	return fmt.Sprintf("0x%016x", uint64(slot)<<(64-uint(r.bits)))
}

// Requirements returns the shard ranges that cover exactly the slots of s
// (slots beyond r's count are ignored), one range per run of adjacent
// slots, in ascending order. It returns none for an empty set.
func (r Ring) Requirements(s Set) []sharding.ShardRangeRequirement {
	var reqs []sharding.ShardRangeRequirement
	for _, run := range s.Intersect(r.All()).runs() {
		reqs = append(reqs, sharding.ShardRangeRequirement{
			Key:   Field,
			Start: r.start(run[0]),
			End:   r.start(run[1] + 1),
		})
	}
	return reqs
}

// errNoSlots is returned for a selector of no slots: the shard selector
// language cannot say "nothing", and an empty selector means everything.
var errNoSlots = errors.New("shard: no slots: a shard selector cannot select nothing")

// Selector returns the selector of the objects in the slots of s: its
// String is the value for metav1.ListOptions.ShardSelector, and its Matches
// is what the apiserver evaluates. It is an error for a set with none of
// r's slots, because an empty selector would select everything: a replica
// that holds no slot must not list or watch at all.
func (r Ring) Selector(s Set) (sharding.Selector, error) {
	reqs := r.Requirements(s)
	if len(reqs) == 0 {
		return nil, errNoSlots
	}
	return sharding.NewSelector(reqs...), nil
}

// Contains reports whether the object with this uid is in one of the slots
// of s. It agrees exactly with r.Selector(s).Matches, and so with the
// apiserver, without building a selector.
func (r Ring) Contains(s Set, uid types.UID) bool {
	return s.Has(r.SlotOf(uid))
}
