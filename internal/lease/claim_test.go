package lease

import (
	"errors"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

// The tests of Claim: a term that lasts with the membership it was claimed
// under, and the take-over of a slot whose holder's membership is gone,
// read from a watch (a Cache the test fills by hand, so it can lag) and
// confirmed with the API server.

const memberLease = "ring-member-a"

var memberLabels = map[string]string{"ring": "ring", "role": "member"}

// membershipOf names "<identity>"'s membership Lease as the tests do.
func membershipOf(holder string) string { return "ring-member-" + holder }

// cachedPool is a Pool of identity whose reads come from its own Cache;
// sync copies the server's records into it, as a watch would deliver them.
type cachedPool struct {
	*Pool
	store cache.Store
	srv   *leaseServer
}

func newCachedPool(t *testing.T, s *leaseServer, identity string, c *clocktesting.FakeClock) *cachedPool {
	t.Helper()
	store := cache.NewStore(cache.MetaNamespaceKeyFunc)
	p, err := NewPool(PoolConfig{
		Client: s.client.CoordinationV1(), Namespace: testNamespace, Identity: identity,
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, Clock: c, Cache: store,
	})
	if err != nil {
		t.Fatal(err)
	}
	return &cachedPool{Pool: p, store: store, srv: s}
}

// sync makes the cache hold what the server holds now.
func (p *cachedPool) sync(t *testing.T) {
	t.Helper()
	obj, err := p.srv.client.Tracker().List(leasesResource, coordinationv1.SchemeGroupVersion.WithKind("Lease"), testNamespace)
	if err != nil {
		t.Fatal(err)
	}
	var items []interface{}
	for _, l := range obj.(*coordinationv1.LeaseList).Items {
		items = append(items, l.DeepCopy())
	}
	if err := p.store.Replace(items, ""); err != nil {
		t.Fatal(err)
	}
}

// join acquires identity's membership and syncs p's watch.
func join(t *testing.T, p *cachedPool, identity string) *Term {
	t.Helper()
	membership, err := p.Acquire(t.Context(), membershipOf(identity), memberLabels)
	if err != nil {
		t.Fatal(err)
	}
	p.sync(t)
	return membership
}

// member acquires identity's membership and claims slotLease under it.
func member(t *testing.T, p *cachedPool, identity string) (membership, slot *Term) {
	t.Helper()
	membership = join(t, p, identity)
	slot, err := p.Claim(t.Context(), slotLease, slotLabels, membership, membershipOf)
	if err != nil {
		t.Fatalf("Claim of a missing record: %v", err)
	}
	return membership, slot
}

// waitOutTheLease steps p's clock by the lease duration, renewing its
// membership every retry period, its watch keeping up.
func waitOutTheLease(t *testing.T, p *cachedPool, c *clocktesting.FakeClock, membership *Term) {
	t.Helper()
	for range int(leaseDuration / retryPeriod) {
		c.Step(retryPeriod)
		if err := membership.Renew(t.Context()); err != nil {
			t.Fatal(err)
		}
		p.sync(t)
	}
}

// countVerbs counts the requests of each verb the server gets from now on.
func countVerbs(s *leaseServer) map[string]int {
	n := map[string]int{}
	s.client.PrependReactor("*", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		n[a.GetVerb()]++
		return false, nil, nil
	})
	return n
}

func TestPoolClaimLastsWithItsMembership(t *testing.T) {
	s := newLeaseServer()
	c := clocktesting.NewFakeClock(time.Now())
	a := newCachedPool(t, s, "a", c)
	membership, slot := member(t, a, "a")
	if got := holderOf(s.get(t, slotLease)); got != "a" {
		t.Fatalf("slot record holder %q, want a", got)
	}
	verbs := countVerbs(s)
	for range 3 {
		c.Step(retryPeriod)
		if err := membership.Renew(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := slot.Renew(t.Context()); err != nil {
			t.Fatalf("Renew of a claimed term: %v", err)
		}
	}
	if verbs["update"] != 3 {
		t.Errorf("%d updates for 3 renewals of the membership and 3 of the slot, want 3: a claimed term writes nothing", verbs["update"])
	}
	if !slot.Dispatching() || !slot.Deadline().Equal(membership.Deadline()) {
		t.Fatalf("slot term: dispatching %t, deadline %v; membership's deadline %v", slot.Dispatching(), slot.Deadline(), membership.Deadline())
	}
	c.Step(renewDeadline)
	if slot.Dispatching() {
		t.Errorf("the slot term dispatches past its membership's renew deadline")
	}
	if membership.Dispatching() {
		t.Errorf("the membership dispatches past its renew deadline")
	}
	if r := slot.Reason(); r == "" {
		t.Errorf("the slot term ended with no reason")
	}
}

func TestPoolClaimTakesOnlyFromAGoneHolder(t *testing.T) {
	s := newLeaseServer()
	ca, cb := clocktesting.NewFakeClock(time.Now()), clocktesting.NewFakeClock(time.Now())
	a, b := newCachedPool(t, s, "a", ca), newCachedPool(t, s, "b", cb)
	_, aSlot := member(t, a, "a")
	bMember := join(t, b, "b")
	if _, err := b.Claim(t.Context(), slotLease, slotLabels, bMember, membershipOf); !errors.Is(err, ErrHeld) {
		t.Fatalf("Claim of a live holder's slot: %v, want ErrHeld", err)
	}
	// a stops renewing; b keeps its own membership and waits out the lease.
	waitOutTheLease(t, b, cb, bMember)
	ca.Step(leaseDuration)
	if aSlot.Dispatching() {
		t.Fatal("a still dispatches past its renew deadline")
	}
	bSlot, err := b.Claim(t.Context(), slotLease, slotLabels, bMember, membershipOf)
	if err != nil {
		t.Fatalf("Claim after the holder's membership expired: %v", err)
	}
	l := s.get(t, slotLease)
	if holderOf(l) != "b" || ptr.Deref(l.Spec.LeaseTransitions, 0) != 1 || !bSlot.Dispatching() {
		t.Errorf("after the take-over: holder %q, transitions %d, dispatching %t", holderOf(l), ptr.Deref(l.Spec.LeaseTransitions, 0), bSlot.Dispatching())
	}
}

// A watch that lags shows the holder's membership unchanged for the lease
// duration while the holder has renewed it since: the read from the API
// server tells, and the slot is not written.
func TestPoolClaimAsksTheServerBeforeATakeOver(t *testing.T) {
	s := newLeaseServer()
	ca, cb := clocktesting.NewFakeClock(time.Now()), clocktesting.NewFakeClock(time.Now())
	a, b := newCachedPool(t, s, "a", ca), newCachedPool(t, s, "b", cb)
	aMember, aSlot := member(t, a, "a")
	bMember := join(t, b, "b") // and b's watch never syncs again: it is stuck
	if _, err := b.Claim(t.Context(), slotLease, slotLabels, bMember, membershipOf); !errors.Is(err, ErrHeld) {
		t.Fatalf("first Claim: %v, want ErrHeld", err)
	}
	for range int(leaseDuration/retryPeriod) + 1 {
		ca.Step(retryPeriod)
		cb.Step(retryPeriod)
		if err := aMember.Renew(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := bMember.Renew(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	verbs := countVerbs(s)
	if _, err := b.Claim(t.Context(), slotLease, slotLabels, bMember, membershipOf); !errors.Is(err, ErrHeld) {
		t.Fatalf("Claim on a stale watch: %v, want ErrHeld", err)
	}
	if verbs["get"] != 1 || verbs["update"] != 0 || verbs["list"] != 0 {
		t.Errorf("requests %v, want one get (the membership) and no write", verbs)
	}
	if holderOf(s.get(t, slotLease)) != "a" || !aSlot.Dispatching() {
		t.Errorf("the live holder lost its slot")
	}
	// The read from the server counts as the newest version seen: the
	// lease duration starts again from it.
	b.sync(t)
	if _, err := b.Claim(t.Context(), slotLease, slotLabels, bMember, membershipOf); !errors.Is(err, ErrHeld) {
		t.Errorf("Claim right after the server showed a renewal: %v, want ErrHeld", err)
	}
}

// A holder whose membership was released (it left) is gone at once.
func TestPoolClaimFromAReleasedMembership(t *testing.T) {
	s := newLeaseServer()
	c := clocktesting.NewFakeClock(time.Now())
	a, b := newCachedPool(t, s, "a", c), newCachedPool(t, s, "b", c)
	aMember, _ := member(t, a, "a")
	if err := aMember.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	bMember := join(t, b, "b")
	if _, err := b.Claim(t.Context(), slotLease, slotLabels, bMember, membershipOf); err != nil {
		t.Fatalf("Claim of a slot whose holder released its membership: %v", err)
	}
}

// A membership missing from the watch counts as gone only after the lease
// duration, and only if the server does not have it either.
func TestPoolClaimFromAMissingMembership(t *testing.T) {
	s := newLeaseServer()
	c := clocktesting.NewFakeClock(time.Now())
	b := newCachedPool(t, s, "b", c)
	// A slot record naming a holder with no membership record at all.
	l := &coordinationv1.Lease{}
	l.Name, l.Namespace, l.Labels = slotLease, testNamespace, slotLabels
	l.Spec.HolderIdentity = ptr.To("ghost")
	l.Spec.LeaseDurationSeconds = ptr.To(int32(leaseDuration / time.Second))
	if _, err := s.client.CoordinationV1().Leases(testNamespace).Create(t.Context(), l, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	bMember := join(t, b, "b")
	if _, err := b.Claim(t.Context(), slotLease, slotLabels, bMember, membershipOf); !errors.Is(err, ErrHeld) {
		t.Fatalf("Claim at the first read of a missing membership: %v, want ErrHeld", err)
	}
	waitOutTheLease(t, b, c, bMember)
	if _, err := b.Claim(t.Context(), slotLease, slotLabels, bMember, membershipOf); err != nil {
		t.Fatalf("Claim after the membership was missing for the lease duration: %v", err)
	}
}

func TestPoolRelabelIsWrittenByTheNextRenewal(t *testing.T) {
	s := newLeaseServer()
	c := clocktesting.NewFakeClock(time.Now())
	a := newCachedPool(t, s, "a", c)
	membership, err := a.Acquire(t.Context(), memberLease, memberLabels)
	if err != nil {
		t.Fatal(err)
	}
	membership.Relabel(map[string]string{"leaving": "true"})
	if got := s.get(t, memberLease).Labels["leaving"]; got != "" {
		t.Fatalf("Relabel wrote at once")
	}
	if err := membership.Renew(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := s.get(t, memberLease).Labels
	if got["leaving"] != "true" || got["role"] != "member" {
		t.Errorf("labels after the renewal: %v", got)
	}
}

// With a Cache, List makes no request.
func TestPoolListReadsTheCache(t *testing.T) {
	s := newLeaseServer()
	c := clocktesting.NewFakeClock(time.Now())
	a := newCachedPool(t, s, "a", c)
	member(t, a, "a")
	a.sync(t)
	verbs := countVerbs(s)
	recs, err := a.List(t.Context(), memberLabels)
	if err != nil || len(recs) != 1 || recs[0].Holder != "a" {
		t.Fatalf("List = %v, %v", recs, err)
	}
	if len(verbs) != 0 {
		t.Errorf("List from the cache made requests: %v", verbs)
	}
}
