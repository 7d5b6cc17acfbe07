package shard

import (
	"cmp"
	"hash/fnv"
	"slices"
)

// An Assignment gives each slot of a ring to at most one member: the target
// that every replica computes alike from the same observations. The zero
// value assigns nothing.
type Assignment struct {
	members []string // sorted, distinct
	owner   []int    // slot -> index into members, -1 if none
}

// Assign returns a balanced assignment of the slots of r to members, from
// scratch: Rebalance with no slot held.
func (r Ring) Assign(members []string) Assignment {
	return r.Rebalance(members, nil)
}

// Rebalance returns the balanced assignment of the slots of r to members
// that moves the fewest slots away from their current holders.
// holders[slot] is the identity holding slot, "" if none; it may be
// shorter than the slot count, and holders that are not members count as
// none. The result depends only on the set of members (order and
// duplicates do not matter), on holders and on r: every replica that
// observes the same holders computes the same assignment.
//
// Balanced: each member gets floor(n/m) or ceil(n/m) of the n slots (with
// more members than slots, some get none). Fewest moves: the n mod m
// members that may have one slot more are, first, those that hold that
// many already; each member keeps as many of its slots as its share allows
// (those of highest weight, below); the rest go out by rendezvous hashing
// with bounded loads: every (member, slot) pair has a pseudo-random weight,
// and pairs in order of decreasing weight give their slot to their member
// while the slot is unassigned and the member below its share. So when
// holders is an assignment Rebalance returned for other members, a member
// that joins takes only its share and one that leaves moves only its own
// slots; and carrying out part of the moves (some releases, some
// acquisitions) and asking again gives the same target, so replicas that
// observe the hand-over at different moments do not change their minds.
func (r Ring) Rebalance(members []string, holders []string) Assignment {
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	n := r.Slots()
	a := Assignment{members: ms, owner: make([]int, n)}
	for slot := range a.owner {
		a.owner[slot] = -1
	}
	if len(ms) == 0 {
		return a
	}

	seeds := make([]uint64, len(ms))
	for m, name := range ms {
		h := fnv.New64a()
		h.Write([]byte(name))
		seeds[m] = mix(h.Sum64())
	}
	weight := func(m, slot int) uint64 { return mix(seeds[m] ^ mix(uint64(slot)+1)) }

	// What each member holds now.
	held := make([][]int, len(ms))
	for slot := 0; slot < n && slot < len(holders); slot++ {
		if m, ok := slices.BinarySearch(ms, holders[slot]); ok && holders[slot] != "" {
			held[m] = append(held[m], slot)
		}
	}

	// Shares: floor each, and floor+1 for extra members, chosen first among
	// those that hold at least floor+1 (giving it to them saves a move),
	// then by seed. Both keys stay put while the moves are carried out: a
	// chosen member never drops below floor+1 and one not chosen never
	// rises above floor.
	floor, extra := n/len(ms), n%len(ms)
	share := make([]int, len(ms))
	order := make([]int, len(ms))
	for m := range ms {
		share[m] = floor
		order[m] = m
	}
	slices.SortFunc(order, func(x, y int) int {
		hx, hy := len(held[x]) > floor, len(held[y]) > floor
		if hx != hy {
			if hx {
				return -1
			}
			return 1
		}
		return cmp.Compare(seeds[x], seeds[y])
	})
	for _, m := range order[:extra] {
		share[m]++
	}

	// Each member keeps its share of what it holds, highest weights first.
	load := make([]int, len(ms))
	for m, slots := range held {
		slices.SortFunc(slots, func(x, y int) int { return cmp.Compare(weight(m, y), weight(m, x)) })
		for _, slot := range slots[:min(len(slots), share[m])] {
			a.owner[slot] = m
			load[m]++
		}
	}

	// The other slots go by decreasing weight to members below their share.
	type pair struct {
		weight       uint64
		member, slot int
	}
	var pairs []pair
	for slot := range n {
		if a.owner[slot] >= 0 {
			continue
		}
		for m := range ms {
			if load[m] < share[m] {
				pairs = append(pairs, pair{weight(m, slot), m, slot})
			}
		}
	}
	slices.SortFunc(pairs, func(x, y pair) int {
		if c := cmp.Compare(y.weight, x.weight); c != 0 {
			return c
		}
		if c := cmp.Compare(x.member, y.member); c != 0 {
			return c
		}
		return cmp.Compare(x.slot, y.slot)
	})
	for _, p := range pairs {
		if a.owner[p.slot] < 0 && load[p.member] < share[p.member] {
			a.owner[p.slot] = p.member
			load[p.member]++
		}
	}
	return a
}

// mix is the splitmix64 finalizer: it spreads the bits of x, so that the
// weights of similar names and of adjacent slots look unrelated.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Members returns the members of a, sorted.
func (a Assignment) Members() []string { return slices.Clone(a.members) }

// Of returns the slots assigned to member (none if it is not a member).
func (a Assignment) Of(member string) Set {
	var s Set
	m, ok := slices.BinarySearch(a.members, member)
	if !ok {
		return s
	}
	for slot, o := range a.owner {
		if o == m {
			s = s.Add(slot)
		}
	}
	return s
}

// Owner returns the member slot is assigned to, or "" if none.
func (a Assignment) Owner(slot int) string {
	if slot < 0 || slot >= len(a.owner) || a.owner[slot] < 0 {
		return ""
	}
	return a.members[a.owner[slot]]
}

// Owners returns the owner of every slot, "" where there is none: the
// holders argument of Rebalance.
func (a Assignment) Owners() []string {
	out := make([]string, len(a.owner))
	for slot := range a.owner {
		out[slot] = a.Owner(slot)
	}
	return out
}
