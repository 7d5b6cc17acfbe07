package shard

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

const (
	testLease    = 15 * time.Second
	testDeadline = 10 * time.Second
	testRetry    = 2 * time.Second
)

// testRing is a ring of replicas over one memStore with fresh reads, on a
// fake clock the test steps by hand.
type testRing struct {
	t     *testing.T
	ring  Ring
	clock *clocktesting.FakeClock
	store *memStore
}

func newTestRing(t *testing.T, slots int) *testRing {
	r, err := NewRing(slots)
	if err != nil {
		t.Fatal(err)
	}
	c := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	return &testRing{t: t, ring: r, clock: c, store: newMemStore(c)}
}

func (tr *testRing) replica(id string) (*Replica, *memLeases) {
	return tr.replicaForming(id, 0)
}

// replicaForming is replica with a Config.FormationDelay, on the ring's clock.
func (tr *testRing) replicaForming(id string, delay time.Duration) (*Replica, *memLeases) {
	leases := newMemLeases(id, tr.store, tr.clock, testLease, testDeadline)
	rep, err := NewReplica(Config{Ring: tr.ring, Name: "ring", Identity: id, Leases: leases, FormationDelay: delay, Clock: tr.clock})
	if err != nil {
		tr.t.Fatal(err)
	}
	return rep, leases
}

// step steps each replica once, in order; failures fail the test.
func (tr *testRing) step(reps ...*Replica) {
	tr.t.Helper()
	for _, rep := range reps {
		if err := rep.Step(tr.t.Context()); err != nil {
			tr.t.Fatalf("Step of %s: %v", rep.cfg.Identity, err)
		}
	}
}

// balancedPair returns replicas a and b holding half the slots each.
func (tr *testRing) balancedPair() (a, b *Replica) {
	tr.t.Helper()
	a, _ = tr.replica("a")
	b, _ = tr.replica("b")
	tr.step(a, b)
	tr.clock.Step(testRetry)
	tr.step(a, b, a, b)
	if n := tr.ring.Slots() / 2; a.Held().Len() != n || b.Held().Len() != n {
		tr.t.Fatalf("not balanced: a %v, b %v", a.Held(), b.Held())
	}
	return a, b
}

// checkDisjoint fails if two replicas may dispatch one slot.
func checkDisjoint(t *testing.T, reps ...*Replica) {
	t.Helper()
	var seen Set
	for _, rep := range reps {
		h := rep.Held()
		if both := seen.Intersect(h); both.Len() > 0 {
			t.Fatalf("slots %v held twice", both)
		}
		seen = seen.Union(h)
	}
}

func (tr *testRing) holder(slot int) string {
	v, _ := tr.store.current(SlotLeaseName("ring", slot))
	return v.holder
}

func TestNewReplicaRejectsBadConfig(t *testing.T) {
	tr := newTestRing(t, 4)
	leases := newMemLeases("a", tr.store, tr.clock, testLease, testDeadline)
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no identity", Config{Name: "ring", Leases: leases}, "no Identity"},
		{"no leases", Config{Name: "ring", Identity: "a"}, "no Leases"},
		{"bad ring name", Config{Name: "Ring_1", Identity: "a", Leases: leases}, "ring name"},
		{"empty ring name", Config{Identity: "a", Leases: leases}, "ring name"},
		{"negative formation delay", Config{Name: "ring", Identity: "a", Leases: leases, FormationDelay: -time.Second}, "FormationDelay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewReplica(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewReplica: error %v, want one about %q", err, tt.want)
			}
		})
	}
}

func TestReplicaAloneHoldsEverySlot(t *testing.T) {
	tr := newTestRing(t, 16)
	a, _ := tr.replica("a")
	if a.Ready() || a.Begin(0) {
		t.Fatalf("ready or dispatching before the first Step")
	}
	tr.step(a)
	if got := a.Held(); got != tr.ring.All() {
		t.Fatalf("alone, holds %v", got)
	}
	if !a.Ready() {
		t.Errorf("not Ready holding every slot")
	}
	if got := a.Members(); len(got) != 1 || got[0] != "a" {
		t.Errorf("Members() = %v", got)
	}
	if !a.Begin(3) || a.InFlight(3) != 1 || a.End(3) || a.InFlight(3) != 0 {
		t.Errorf("Begin/End do not count calls")
	}
	if a.Begin(-1) || a.Begin(16) || a.End(16) || a.End(2) {
		t.Errorf("Begin or End of a slot out of range, or End without Begin, did something")
	}
	// Renewals keep it going well past the renew deadline.
	for range 20 {
		tr.clock.Step(testRetry)
		tr.step(a)
	}
	if got := a.Held(); got != tr.ring.All() {
		t.Fatalf("after renewals, holds %v", got)
	}
}

// TestReplicasStartedTogetherClaimOnlyTheirShares: three replicas that
// join a new ring within the formation delay find each other before any
// claims a slot, so each slot's Lease is written once. Without the delay
// the first to join claims every slot and hands two thirds over.
func TestReplicasStartedTogetherClaimOnlyTheirShares(t *testing.T) {
	for _, delay := range []time.Duration{3 * testRetry, 0} {
		t.Run(fmt.Sprint("delay=", delay), func(t *testing.T) {
			tr := newTestRing(t, 16)
			a, _ := tr.replicaForming("a", delay)
			b, _ := tr.replicaForming("b", delay)
			c, _ := tr.replicaForming("c", delay)
			tr.step(a)
			joined := tr.clock.Now()
			if until, ok := a.FormingUntil(); delay > 0 && (!ok || !until.Equal(joined.Add(delay))) {
				t.Errorf("FormingUntil() = %v, %t; want %v", until, ok, joined.Add(delay))
			}
			tr.clock.Step(testRetry)
			tr.step(b, c, a)
			if delay > 0 {
				if held := a.Held().Union(b.Held()).Union(c.Held()); held.Len() != 0 || a.Ready() {
					t.Fatalf("slots %v claimed before the formation delay passed (ready: %t)", held, a.Ready())
				}
			}
			for tr.clock.Now().Before(joined.Add(delay)) {
				tr.clock.Step(testRetry)
				tr.step(a, b, c)
			}
			// At a's time a claims its share; b and c claim theirs at
			// once, though younger: the ring has formed. Then hand-overs
			// settle whatever is left.
			for range 4 {
				tr.step(a, b, c)
				checkDisjoint(t, a, b, c)
			}
			for _, rep := range []*Replica{a, b, c} {
				if n := rep.Held().Len(); n < 5 || n > 6 || !rep.Ready() {
					t.Errorf("%s holds %v (ready: %t), want its share of 16", rep.cfg.Identity, rep.Held(), rep.Ready())
				}
				if _, ok := rep.FormingUntil(); ok {
					t.Errorf("%s still forming", rep.cfg.Identity)
				}
			}
			writes := tr.store.written()[RoleSlot]
			t.Logf("formation delay %s: %d slot Lease writes to form a ring of 3 over 16 slots", delay, writes)
			if delay > 0 && writes != 16 {
				t.Errorf("%d slot Lease writes, want 16: one claim each", writes)
			}
			if delay == 0 && writes <= 16 {
				t.Errorf("%d slot Lease writes without the delay: the test no longer shows what the delay saves", writes)
			}
		})
	}
}

// TestReplicaJoiningAFormedRingDoesNotWait: the formation delay applies to
// a ring no live member holds a slot of; a replica joining one that has
// formed takes its share as soon as the holder hands it over.
func TestReplicaJoiningAFormedRingDoesNotWait(t *testing.T) {
	tr := newTestRing(t, 16)
	a, _ := tr.replicaForming("a", 3*testRetry)
	tr.step(a)
	tr.clock.Step(3 * testRetry)
	tr.step(a)
	if a.Held() != tr.ring.All() {
		t.Fatalf("alone after the formation delay, a holds %v", a.Held())
	}
	b, _ := tr.replicaForming("b", 3*testRetry)
	tr.step(b, a, b)
	if n := b.Held().Len(); n != 8 || !b.Ready() {
		t.Fatalf("b holds %v (ready: %t) right after joining, want 8 slots", b.Held(), b.Ready())
	}
	if _, ok := b.FormingUntil(); ok {
		t.Errorf("b waits for a formation of a ring a holds")
	}
	checkDisjoint(t, a, b)
}

// TestReplicaJoinWaitsForTheDrain: a replica joins; the old holder closes
// the slots it gives up at once, releases each once its calls returned,
// and only then does the new one take it.
func TestReplicaJoinWaitsForTheDrain(t *testing.T) {
	tr := newTestRing(t, 16)
	a, _ := tr.replica("a")
	tr.step(a)
	b, _ := tr.replica("b")
	target := tr.ring.Rebalance([]string{"a", "b"}, tr.ring.Assign([]string{"a"}).Owners()).Of("b")
	busy := target.Slots()[0]
	if !a.Begin(busy) {
		t.Fatal("a cannot begin a call on a slot it holds")
	}

	tr.step(b) // b is a member now, but a holds everything
	if got := b.Held(); got.Len() != 0 {
		t.Fatalf("b took %v from a live holder", got)
	}
	checkDisjoint(t, a, b)

	tr.clock.Step(testRetry)
	tr.step(a) // a sees b: gives up b's share, keeps the busy slot until drained
	if got, want := a.Held(), tr.ring.All().Minus(target); got != want {
		t.Fatalf("a holds %v, want %v", got, want)
	}
	if a.Begin(busy) {
		t.Fatalf("a began a call on slot %d it is handing over", busy)
	}
	if got := tr.holder(busy); got != "a" {
		t.Fatalf("the busy slot was released (holder %q) with a call in flight", got)
	}

	tr.step(b)
	if got, want := b.Held(), target.Remove(busy); got != want {
		t.Fatalf("b holds %v, want %v", got, want)
	}
	checkDisjoint(t, a, b)

	if !a.End(busy) {
		t.Errorf("End of the last call of a slot being handed over returned false")
	}
	tr.step(a) // released now
	tr.step(b)
	if got := b.Held(); got != target {
		t.Fatalf("b holds %v, want %v", got, target)
	}
	checkDisjoint(t, a, b)
	if !a.Ready() || !b.Ready() {
		t.Errorf("not Ready after the hand-over: a %t, b %t", a.Ready(), b.Ready())
	}
}

// TestReplicaLeaveHandsOverAtOnce: a graceful leave releases everything,
// so the other takes over in its next Step, without waiting for expiry.
func TestReplicaLeaveHandsOverAtOnce(t *testing.T) {
	tr := newTestRing(t, 16)
	a, b := tr.balancedPair()
	held := a.Held()
	slot := held.Slots()[0]
	if !a.Begin(slot) {
		t.Fatal("a cannot begin")
	}
	a.Leave()
	if a.Begin(held.Slots()[1]) || a.Held().Len() != 0 || a.Ready() {
		t.Fatalf("a still dispatches after Leave")
	}
	tr.step(a)
	if a.Left() {
		t.Fatalf("Left with a call in flight")
	}
	tr.step(b)
	if got, want := b.Held(), tr.ring.All().Remove(slot); got != want {
		t.Fatalf("b holds %v, want %v", got, want)
	}
	a.End(slot)
	tr.step(a, b)
	if !a.Left() {
		t.Errorf("not Left after the last call")
	}
	if got := b.Held(); got != tr.ring.All() {
		t.Fatalf("b holds %v, want every slot, at once", got)
	}
}

// TestReplicaKilledLosesItsSlotsByExpiry: a replica that stops stepping
// stops dispatching at its renew deadline; the other takes its slots only
// after the lease duration.
func TestReplicaKilledLosesItsSlotsByExpiry(t *testing.T) {
	tr := newTestRing(t, 16)
	a, b := tr.balancedPair()
	aHeld := a.Held()
	lastRenew := tr.clock.Now()

	// a dies: it steps no more.
	for tr.clock.Now().Sub(lastRenew) < testLease+2*testRetry {
		tr.clock.Step(testRetry)
		tr.step(b)
		since := tr.clock.Now().Sub(lastRenew)
		if since >= testDeadline && a.Held().Len() > 0 {
			t.Fatalf("%v after its last renewal a still may dispatch %v", since, a.Held())
		}
		if since < testLease && b.Held().Intersect(aHeld).Len() > 0 {
			t.Fatalf("%v after a's last renewal, b took %v before the lease expired", since, b.Held().Intersect(aHeld))
		}
		checkDisjoint(t, a, b)
	}
	if got := b.Held(); got != tr.ring.All() {
		t.Fatalf("after the lease expired b holds %v", got)
	}
}

// TestReplicaLostTermIsNotReleased: a replica that missed its renew
// deadline, cut off from the store or frozen, stops dispatching and never
// writes a release (its calls of the term may still run; the record must
// expire); once it steps again with the store in reach, it takes its slots
// again.
func TestReplicaLostTermIsNotReleased(t *testing.T) {
	for _, cutOff := range []bool{true, false} {
		name := "frozen"
		if cutOff {
			name = "cut off"
		}
		t.Run(name, func(t *testing.T) {
			tr := newTestRing(t, 4)
			a, leases := tr.replica("a")
			tr.step(a)
			if !a.Begin(0) {
				t.Fatal("cannot begin")
			}
			down := cutOff
			leases.down = func() bool { return down }
			for range 6 {
				tr.clock.Step(testRetry)
				if cutOff {
					if err := a.Step(t.Context()); !errors.Is(err, errUnreachable) {
						t.Fatalf("Step while cut off: %v", err)
					}
				}
			}
			if got := a.Held(); got.Len() != 0 {
				t.Fatalf("past the renew deadline a still may dispatch %v", got)
			}
			down = false
			tr.step(a)
			for slot := range 4 {
				tr.store.mu.Lock()
				for _, v := range tr.store.history[SlotLeaseName("ring", slot)] {
					if v.holder != "a" {
						t.Errorf("slot %d: a version with holder %q; a lost term must not be released", slot, v.holder)
					}
				}
				tr.store.mu.Unlock()
			}
			if got := a.Held(); got != tr.ring.All() {
				t.Fatalf("back in touch, a holds %v", got)
			}
			if a.InFlight(0) != 1 {
				t.Errorf("the call of the lost term is no longer counted")
			}
		})
	}
}

// TestReplicaStopsWhenAnotherTookTheSlot: a read that shows another
// holder ends the term at once, and the record is left to its new holder.
func TestReplicaStopsWhenAnotherTookTheSlot(t *testing.T) {
	tr := newTestRing(t, 4)
	a, _ := tr.replica("a")
	tr.step(a)
	// Somebody else writes slot 2's record (an operator, or a replica
	// that judged it expired).
	name := SlotLeaseName("ring", 2)
	v, _ := tr.store.current(name)
	if _, err := tr.store.write(name, nil, "intruder", v.rv); err != nil {
		t.Fatal(err)
	}
	if a.Held().Has(2) && !a.Begin(2) {
		t.Fatalf("Held and Begin disagree before the read")
	}
	a.End(2)
	tr.step(a) // its read shows the intruder
	if a.Held().Has(2) || a.Begin(2) {
		t.Errorf("a still may dispatch slot 2")
	}
	if got := tr.holder(2); got != "intruder" {
		t.Errorf("slot 2: holder %q, want the intruder's record left alone", got)
	}
}

func TestReplicaSpareBeyondTheSlotCount(t *testing.T) {
	tr := newTestRing(t, 2)
	a, _ := tr.replica("a")
	b, _ := tr.replica("b")
	c, _ := tr.replica("c")
	tr.step(a, b, c)
	tr.clock.Step(testRetry)
	tr.step(a, b, c, a, b, c)
	total, spares := 0, 0
	for _, rep := range []*Replica{a, b, c} {
		n := rep.Held().Len()
		if n > 1 {
			t.Errorf("%s holds %d slots of 2 among 3", rep.cfg.Identity, n)
		}
		if n == 0 {
			spares++
		}
		total += n
		if !rep.Ready() {
			t.Errorf("%s not Ready (holds %v, target %v)", rep.cfg.Identity, rep.Held(), rep.Target())
		}
	}
	if total != 2 || spares != 1 {
		t.Errorf("%d slots held, %d spares; want 2 and 1", total, spares)
	}
	checkDisjoint(t, a, b, c)
}

func TestLeaseNames(t *testing.T) {
	if got := SlotLeaseName("ring", 12); got != "ring-12" {
		t.Errorf("SlotLeaseName = %q", got)
	}
	long := strings.Repeat("r", 63)
	name := MemberLeaseName(long, "host_with:odd/chars")
	if !strings.HasPrefix(name, long+"-member-") || len(name) != 63+8+16 {
		t.Errorf("MemberLeaseName = %q", name)
	}
	if MemberLeaseName("ring", "a") == MemberLeaseName("ring", "b") {
		t.Errorf("two identities, one member Lease name")
	}
	for _, ok := range []string{"ring", "my-controller.shards", long} {
		if err := ValidateRingName(ok); err != nil {
			t.Errorf("ValidateRingName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "Ring", "ring_1", "-ring", long + "r"} {
		if err := ValidateRingName(bad); err == nil {
			t.Errorf("ValidateRingName(%q): no error", bad)
		}
	}
}

// slowLeases answers every write after a delay, as a loaded API server
// does, and counts how many are in flight at once.
type slowLeases struct {
	*memLeases
	delay time.Duration

	mu             sync.Mutex
	inFlight, most int
}

func (l *slowLeases) slow() func() {
	l.mu.Lock()
	l.inFlight++
	l.most = max(l.most, l.inFlight)
	l.mu.Unlock()
	time.Sleep(l.delay)
	return func() {
		l.mu.Lock()
		l.inFlight--
		l.mu.Unlock()
	}
}

func (l *slowLeases) Claim(ctx context.Context, name string, labels map[string]string, under Term, membership func(string) string) (Term, error) {
	defer l.slow()()
	t, err := l.memLeases.Claim(ctx, name, labels, under, membership)
	if err != nil {
		return nil, err
	}
	return slowTerm{t, l}, nil
}

// slowTerm is a term of slowLeases: its Release is slow too.
type slowTerm struct {
	Term
	leases *slowLeases
}

func (t slowTerm) Release(ctx context.Context) error {
	defer t.leases.slow()()
	return t.Term.Release(ctx)
}

// TestReplicaHandOverWritesInParallel: with 64 slots and an API server that
// answers each Lease write in 50 ms, a leave of a replica holding all 64
// and a join that moves 32 each complete within two retry periods, with at
// most Config.Parallel writes at once. One write after another, the leave
// would take 6.4 s (64 releases, then 64 claims) and the join 3.2 s.
func TestReplicaHandOverWritesInParallel(t *testing.T) {
	tr := newTestRing(t, 64)
	var all []*slowLeases
	slow := func(id string) *Replica {
		l := &slowLeases{memLeases: newMemLeases(id, tr.store, tr.clock, testLease, testDeadline)}
		all = append(all, l)
		rep, err := NewReplica(Config{Ring: tr.ring, Name: "ring", Identity: id, Leases: l})
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	a, b := slow("a"), slow("b")
	tr.step(a)
	a.Leave() // before b is seen: b's share is not handed over on the way
	tr.step(b)
	if b.Held().Len() != 0 {
		t.Fatalf("b took %v from a live holder", b.Held())
	}
	for _, l := range all {
		l.delay = 50 * time.Millisecond
	}
	start := time.Now()
	tr.step(a, b) // a releases 64, b claims 64
	leave := time.Since(start)
	if !a.Left() || b.Held() != tr.ring.All() {
		t.Fatalf("after the leave: a left %t, b holds %v", a.Left(), b.Held())
	}

	c := slow("c")
	all[len(all)-1].delay = 50 * time.Millisecond
	tr.step(c)
	tr.clock.Step(testRetry)
	start = time.Now()
	tr.step(b, c) // b hands over 32, c takes them
	join := time.Since(start)
	if b.Held().Len() != 32 || c.Held().Len() != 32 {
		t.Fatalf("after the join: b holds %d, c %d slots", b.Held().Len(), c.Held().Len())
	}
	most := 0
	for _, l := range all {
		most = max(most, l.most)
	}
	t.Logf("leave %v, join %v, writes in flight at most %d", leave, join, most)
	if limit := 2 * testRetry; join > limit || leave > limit {
		t.Errorf("leave took %v and join %v, want each within two retry periods (%v)", leave, join, limit)
	}
	if most > DefaultParallel || most < 2 {
		t.Errorf("at most %d writes in flight at once, want 2 to %d", most, DefaultParallel)
	}
}
