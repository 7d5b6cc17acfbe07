package lease

import (
	"errors"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"github.com/kubehandler/kubehandler/internal/lease"
	"github.com/kubehandler/kubehandler/internal/lease/shardleases"
	"github.com/kubehandler/kubehandler/internal/shard"
	"github.com/kubehandler/kubehandler/kubelabtest"
)

const (
	leaseDuration = 3 * time.Second
	renewDeadline = 2 * time.Second
	slotLease     = "ring-0"
)

var slotLabels = map[string]string{shard.LabelRing: "ring", shard.LabelRole: shard.RoleSlot, shard.LabelSlot: "0"}

// replica is one replica's Pool, on its own fake clock: expiry and the
// renew deadline are judged on it, so a test moves one replica's time
// without the other's, as a frozen or partitioned process sees it.
type replica struct {
	pool  *lease.Pool
	clock *clocktesting.FakeClock
	downs chan string // the reasons of its step-downs
}

func newReplica(t *testing.T, client kubernetes.Interface, ns, identity string) *replica {
	t.Helper()
	r := &replica{clock: clocktesting.NewFakeClock(time.Now()), downs: make(chan string, 16)}
	p, err := lease.NewPool(lease.PoolConfig{
		Client: client.CoordinationV1(), Namespace: ns, Identity: identity,
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, Clock: r.clock,
		OnStepDown: func(_, reason string) { r.downs <- reason },
	})
	if err != nil {
		t.Fatal(err)
	}
	r.pool = p
	return r
}

// setup returns the client, the namespace and the replicas a and b.
func setup(t *testing.T) (kubernetes.Interface, string, *replica, *replica) {
	t.Helper()
	lab := kubelabtest.Default()
	ns := lab.Namespace(t)
	return lab.Client(), ns, newReplica(t, lab.Client(), ns, "a"), newReplica(t, lab.Client(), ns, "b")
}

func get(t *testing.T, client kubernetes.Interface, ns string) *coordinationv1.Lease {
	t.Helper()
	l, err := client.CoordinationV1().Leases(ns).Get(t.Context(), slotLease, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func holder(l *coordinationv1.Lease) string { return ptr.Deref(l.Spec.HolderIdentity, "") }

// One replica takes the Lease; the other gets ErrHeld until the record has
// stood unchanged for its lease duration on its own clock, then takes it
// over. The first replica's term, alive by its own clock, ends at its
// first read of the new holder, and its Release then leaves b's record
// alone.
func TestExpiryAndTakeover(t *testing.T) {
	client, ns, a, b := setup(t)
	ta, err := a.pool.Acquire(t.Context(), slotLease, slotLabels)
	if err != nil {
		t.Fatal(err)
	}
	l := get(t, client, ns)
	if holder(l) != "a" || ptr.Deref(l.Spec.LeaseDurationSeconds, 0) != 3 || ptr.Deref(l.Spec.LeaseTransitions, -1) != 0 ||
		l.Spec.AcquireTime == nil || l.Spec.RenewTime == nil || l.Labels[shard.LabelSlot] != "0" {
		t.Fatalf("created record: labels %v, spec %+v", l.Labels, l.Spec)
	}
	if !ta.Dispatching() {
		t.Fatal("a's new term does not dispatch")
	}

	if _, err := b.pool.Acquire(t.Context(), slotLease, slotLabels); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("b's Acquire of a's lease: %v, want ErrHeld", err)
	}
	b.clock.Step(leaseDuration - time.Millisecond)
	if _, err := b.pool.Acquire(t.Context(), slotLease, slotLabels); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("b's Acquire before the lease duration: %v, want ErrHeld", err)
	}
	b.clock.Step(time.Millisecond)
	recs, err := b.pool.List(t.Context(), map[string]string{shard.LabelRing: "ring"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Holder != "a" || !recs[0].Expired {
		t.Fatalf("b's List after the lease duration = %+v, want a's record expired", recs)
	}
	tb, err := b.pool.Acquire(t.Context(), slotLease, slotLabels)
	if err != nil {
		t.Fatalf("b's Acquire of an expired lease: %v", err)
	}
	l = get(t, client, ns)
	if holder(l) != "b" || ptr.Deref(l.Spec.LeaseTransitions, 0) != 1 || !l.Spec.AcquireTime.Time.Equal(b.clock.Now().Truncate(time.Microsecond)) {
		t.Fatalf("after the takeover: %+v", l.Spec)
	}

	// a's clock did not move: its term is alive by its deadline, until a
	// read shows b.
	if !ta.Dispatching() {
		t.Fatal("a's term ended before any read showed b")
	}
	if _, err := a.pool.List(t.Context(), slotLabels); err != nil {
		t.Fatal(err)
	}
	if ta.Dispatching() {
		t.Fatal("a's term goes on after a read showed b")
	}
	if reason := <-a.downs; !strings.Contains(reason, "held by b") {
		t.Errorf("a stepped down because %q", reason)
	}
	if err := ta.Release(t.Context()); err == nil {
		t.Error("a's Release of a lost term reported success")
	}
	if l := get(t, client, ns); holder(l) != "b" || !tb.Dispatching() {
		t.Fatalf("after a's Release: holder %q, b dispatching %v", holder(l), tb.Dispatching())
	}
}

// A Release writes the record free and the other replica takes it at once,
// without waiting for any lease duration.
func TestReleaseHandsOverAtOnce(t *testing.T) {
	client, ns, a, b := setup(t)
	ta, err := a.pool.Acquire(t.Context(), slotLease, slotLabels)
	if err != nil {
		t.Fatal(err)
	}
	if err := ta.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if ta.Dispatching() {
		t.Fatal("dispatching after Release")
	}
	if l := get(t, client, ns); holder(l) != "" || ptr.Deref(l.Spec.LeaseDurationSeconds, 0) != 1 {
		t.Fatalf("released record: %+v", l.Spec)
	}
	tb, err := b.pool.Acquire(t.Context(), slotLease, slotLabels)
	if err != nil {
		t.Fatalf("b's Acquire right after the release: %v", err)
	}
	// A release is no transition; the next holder's acquisition is.
	if l := get(t, client, ns); holder(l) != "b" || ptr.Deref(l.Spec.LeaseTransitions, 0) != 1 || !tb.Dispatching() {
		t.Fatalf("b's record: holder %q, leaseTransitions %d, dispatching %v", holder(l), ptr.Deref(l.Spec.LeaseTransitions, 0), tb.Dispatching())
	}
}

// Renewals keep the term while they succeed within the renew deadline; once
// the deadline has passed since the last one was sent the term is over,
// and stays over.
func TestRenewDeadline(t *testing.T) {
	client, ns, a, _ := setup(t)
	ta, err := a.pool.Acquire(t.Context(), slotLease, slotLabels)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		a.clock.Step(renewDeadline - time.Millisecond)
		if err := ta.Renew(t.Context()); err != nil {
			t.Fatal(err)
		}
		if !ta.Dispatching() {
			t.Fatal("a renewed term does not dispatch")
		}
	}
	if l := get(t, client, ns); !l.Spec.RenewTime.Time.Equal(a.clock.Now().Truncate(time.Microsecond)) {
		t.Errorf("renewTime %v, want %v", l.Spec.RenewTime, a.clock.Now())
	}
	a.clock.Step(renewDeadline)
	if ta.Dispatching() {
		t.Fatal("dispatching past the renew deadline")
	}
	if err := ta.Renew(t.Context()); !errors.Is(err, lease.ErrTermOver) {
		t.Fatalf("Renew past the deadline: %v, want ErrTermOver", err)
	}
	if reason := <-a.downs; !strings.Contains(reason, "renew deadline") {
		t.Errorf("stepped down because %q", reason)
	}
}

// The server's resourceVersion precondition: a renewal from a version that
// another client changed conflicts; still a's (the other client changed a
// label), the Pool renews on the new version; held by b, the term ends.
func TestRenewAfterAnotherWrite(t *testing.T) {
	client, ns, a, _ := setup(t)
	ta, err := a.pool.Acquire(t.Context(), slotLease, slotLabels)
	if err != nil {
		t.Fatal(err)
	}
	leases := client.CoordinationV1().Leases(ns)
	l := get(t, client, ns)
	l.Labels["touched"] = "yes"
	if _, err := leases.Update(t.Context(), l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ta.Renew(t.Context()); err != nil || !ta.Dispatching() {
		t.Fatalf("Renew after a label change: %v, dispatching %v", err, ta.Dispatching())
	}
	if l := get(t, client, ns); l.Labels["touched"] != "yes" || holder(l) != "a" {
		t.Fatalf("after the renewal: labels %v, holder %q", l.Labels, holder(l))
	}

	l = get(t, client, ns)
	l.Spec.HolderIdentity = ptr.To("b")
	if _, err := leases.Update(t.Context(), l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ta.Renew(t.Context()); err == nil {
		t.Fatal("Renew over b's record succeeded")
	}
	if ta.Dispatching() || holder(get(t, client, ns)) != "b" {
		t.Fatalf("dispatching %v, holder %q", ta.Dispatching(), holder(get(t, client, ns)))
	}
}

// Two shard Replicas over Pools share a ring: the first takes every slot,
// the second joins and gets its half by hand-over (released, then
// acquired: no slot is held by both at any point the test looks), and
// each Lease names the replica that dispatches its slot.
func TestReplicasOverPools(t *testing.T) {
	client, ns, a, b := setup(t)
	ring, err := shard.NewRing(4)
	if err != nil {
		t.Fatal(err)
	}
	newShardReplica := func(r *replica, identity string) *shard.Replica {
		sr, err := shard.NewReplica(shard.Config{Ring: ring, Name: "ring", Identity: identity, Leases: shardleases.New(r.pool)})
		if err != nil {
			t.Fatal(err)
		}
		return sr
	}
	ra, rb := newShardReplica(a, "a"), newShardReplica(b, "b")
	if err := ra.Step(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !ra.Ready() || ra.Held().Len() != 4 {
		t.Fatalf("alone: ready %v, held %v", ra.Ready(), ra.Held())
	}
	rounds := 0
	for !ra.Ready() || !rb.Ready() || ra.Held().Len() != 2 {
		if rounds++; rounds > 10 {
			t.Fatalf("no balance after %d rounds: a holds %v, b holds %v", rounds, ra.Held(), rb.Held())
		}
		for _, r := range []*shard.Replica{rb, ra} {
			if err := r.Step(t.Context()); err != nil {
				t.Fatal(err)
			}
			if both := ra.Held().Intersect(rb.Held()); both.Len() != 0 {
				t.Fatalf("slots %v held by both", both)
			}
		}
	}
	for slot := range 4 {
		l, err := client.CoordinationV1().Leases(ns).Get(t.Context(), shard.SlotLeaseName("ring", slot), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := "a"
		if rb.Held().Has(slot) {
			want = "b"
		}
		if holder(l) != want {
			t.Errorf("slot %d: Lease held by %q, dispatched by %q", slot, holder(l), want)
		}
	}
	t.Logf("balanced in %d rounds: a %v, b %v", rounds, ra.Held(), rb.Held())
}
