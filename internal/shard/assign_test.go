package shard

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func randomMembers(rng *rand.Rand, m int) []string {
	out := make([]string, m)
	for i := range out {
		out[i] = fmt.Sprintf("controller-%x-%x", rng.Uint32(), rng.Uint32()&0xfff)
	}
	return out
}

// checkBalanced fails unless a gives every slot of r to one of members and
// each member floor(n/m) or ceil(n/m) slots.
func checkBalanced(t *testing.T, r Ring, members []string, a Assignment) {
	t.Helper()
	n, m := r.Slots(), len(members)
	var union Set
	for _, member := range members {
		got := a.Of(member)
		if got.Len() < n/m || got.Len() > (n+m-1)/m {
			t.Fatalf("%d slots, %d members: %s has %d slots (%v), want %d or %d", n, m, member, got.Len(), got, n/m, (n+m-1)/m)
		}
		if union.Intersect(got).Len() > 0 {
			t.Fatalf("%s shares slots %v", member, union.Intersect(got))
		}
		union = union.Union(got)
	}
	if union != r.All() {
		t.Fatalf("%d slots, %d members: slots %v have no owner", n, m, r.All().Minus(union))
	}
}

func moves(r Ring, a, b Assignment) int {
	n := 0
	for slot := range r.Slots() {
		if a.Owner(slot) != b.Owner(slot) {
			n++
		}
	}
	return n
}

func TestAssignIsBalanced(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, slots := range []int{1, 2, 16, 64} {
		r, _ := NewRing(slots)
		for m := 1; m <= 20; m++ {
			for range 20 {
				members := randomMembers(rng, m)
				checkBalanced(t, r, members, r.Assign(members))
			}
		}
	}
}

func TestAssignDependsOnTheSetOfMembersOnly(t *testing.T) {
	r, _ := NewRing(64)
	members := []string{"a", "b", "c", "d", "e"}
	want := r.Assign(members).Owners()
	shuffled := []string{"d", "b", "e", "a", "c", "b", "a"}
	if got := r.Assign(shuffled).Owners(); !slices.Equal(got, want) {
		t.Errorf("order and duplicates changed the assignment:\n%v\n%v", got, want)
	}
	if got := r.Assign(nil).Owners(); slices.ContainsFunc(got, func(o string) bool { return o != "" }) {
		t.Errorf("no members, yet owners %v", got)
	}
	if got := r.Assign(members).Of("z"); got.Len() != 0 {
		t.Errorf("a non-member got %v", got)
	}
}

// TestRebalanceMovesTheFewestSlots: from a balanced ring, a member that
// joins takes only its share (every slot that moves goes to it), and a
// member that leaves moves only its own slots; the result is balanced.
// It logs the figures beside those of assigning from scratch.
func TestRebalanceMovesTheFewestSlots(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const trials = 50
	for _, slots := range []int{16, 64} {
		r, _ := NewRing(slots)
		for m := 1; m <= 16; m++ {
			var joinMoves, joinScratch, leaveMoves, leaveScratch int
			for range trials {
				members := randomMembers(rng, m)
				before := r.Assign(members)

				joiner := fmt.Sprintf("joiner-%x", rng.Uint64())
				joined := append(slices.Clone(members), joiner)
				after := r.Rebalance(joined, before.Owners())
				checkBalanced(t, r, joined, after)
				moved := moves(r, before, after)
				if want := after.Of(joiner).Len(); moved != want {
					t.Fatalf("%d slots, %d+1 members: %d slots moved, but the joiner got %d", slots, m, moved, want)
				}
				if want := slots / (m + 1); moved != want {
					t.Fatalf("%d slots, %d+1 members: %d slots moved, want %d", slots, m, moved, want)
				}
				joinMoves += moved
				joinScratch += moves(r, before, r.Assign(joined))

				if m == 1 {
					continue
				}
				leaver := members[rng.IntN(m)]
				rest := slices.DeleteFunc(slices.Clone(members), func(s string) bool { return s == leaver })
				after = r.Rebalance(rest, before.Owners())
				checkBalanced(t, r, rest, after)
				moved = moves(r, before, after)
				if want := before.Of(leaver).Len(); moved != want {
					t.Fatalf("%d slots, %d-1 members: %d slots moved, but the leaver had %d", slots, m, moved, want)
				}
				leaveMoves += moved
				leaveScratch += moves(r, before, r.Assign(rest))
			}
			avg := func(n int) float64 { return float64(n) / trials }
			t.Logf("%2d slots, %2d members: a join moves %5.2f slots (from scratch: %5.2f), a leave %5.2f (from scratch: %5.2f)",
				slots, m, avg(joinMoves), avg(joinScratch), avg(leaveMoves), avg(leaveScratch))
		}
	}
}

// TestRebalanceKeepsItsTargetWhileMoving: replicas see a hand-over at
// different stages; the target must not change as releases and
// acquisitions are carried out, in any order.
func TestRebalanceKeepsItsTargetWhileMoving(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, slots := range []int{16, 64} {
		r, _ := NewRing(slots)
		for range 300 {
			// Start from anything: some slots held by members, some by
			// non-members, some free.
			members := randomMembers(rng, 1+rng.IntN(12))
			holders := make([]string, slots)
			for slot := range holders {
				switch rng.IntN(4) {
				case 0:
				case 1:
					holders[slot] = "gone"
				default:
					holders[slot] = members[rng.IntN(len(members))]
				}
			}
			target := r.Rebalance(members, holders)
			checkBalanced(t, r, members, target)
			for range 5 {
				partial := slices.Clone(holders)
				for slot := range partial {
					if partial[slot] != target.Owner(slot) {
						switch rng.IntN(3) {
						case 0: // released
							partial[slot] = ""
						case 1: // taken by its target
							partial[slot] = target.Owner(slot)
						}
					}
				}
				if got := r.Rebalance(members, partial).Owners(); !slices.Equal(got, target.Owners()) {
					t.Fatalf("the target changed half-way:\nholders %v\ntarget  %v\nmoving  %v\nthen    %v", holders, target.Owners(), partial, got)
				}
			}
			if got := r.Rebalance(members, target.Owners()).Owners(); !slices.Equal(got, target.Owners()) {
				t.Fatalf("a balanced ring is not left alone: %v -> %v", target.Owners(), got)
			}
		}
	}
}
