package shardleases

import (
	"errors"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubehandler/kubehandler/internal/lease"
	"github.com/kubehandler/kubehandler/internal/shard"
)

func pool(t *testing.T, client *fake.Clientset, identity string) *lease.Pool {
	t.Helper()
	p, err := lease.NewPool(lease.PoolConfig{
		Client: client.CoordinationV1(), Namespace: "ns", Identity: identity,
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second,
		Clock: clocktesting.NewFakeClock(time.Now()),
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The adapter's Acquire gives a shard.Term, or an error that is shard's
// ErrHeld as well as the Pool's, and never a nil Term in an interface; its
// List gives the Pool's records.
func TestLeasesAdaptThePool(t *testing.T) {
	client := fake.NewClientset()
	a, b := New(pool(t, client, "a")), New(pool(t, client, "b"))
	labels := map[string]string{shard.LabelRing: "r", shard.LabelRole: shard.RoleSlot, shard.LabelSlot: "0"}

	term, err := a.Acquire(t.Context(), "r-0", labels)
	if err != nil || term == nil || !term.Dispatching() {
		t.Fatalf("Acquire: term %v, err %v", term, err)
	}
	held, err := b.Acquire(t.Context(), "r-0", labels)
	if !errors.Is(err, shard.ErrHeld) || !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("Acquire of a held lease: %v, want shard.ErrHeld and lease.ErrHeld", err)
	}
	if held != nil {
		t.Fatalf("Acquire returned the Term %#v with its error", held)
	}
	recs, err := b.List(t.Context(), map[string]string{shard.LabelRing: "r"})
	if err != nil {
		t.Fatal(err)
	}
	want := shard.Record{Name: "r-0", Labels: labels, Holder: "a"}
	if len(recs) != 1 || recs[0].Name != want.Name || recs[0].Holder != want.Holder || recs[0].Expired ||
		recs[0].Labels[shard.LabelSlot] != "0" {
		t.Fatalf("List = %+v, want [%+v]", recs, want)
	}
}
