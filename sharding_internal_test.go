package kubehandler

import (
	"context"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
)

// A Step claims a replica's share before apply opens the slots to events:
// between the two the replica drops the events of its share, so it is not
// ready yet. (A test of two replicas saw both refuse a key in that gap.)
func TestShardReadinessWaitsForTheSlotsToOpen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	q := newWorkQueue("ring", []Option{WithSharding(Sharding{
		Client: fake.NewClientset().CoordinationV1(), Namespace: "ns", Name: "ring", Identity: "a", Slots: 4,
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 100 * time.Millisecond,
	})})
	s, err := newSharder(ctx, q, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); s.leases.Run(ctx.Done()) }()
	defer func() { cancel(); <-done }()
	if !cache.WaitForCacheSync(ctx.Done(), s.leases.HasSynced) {
		t.Fatal("the ring's Lease informer did not sync")
	}
	// The first Step joins; the next ones claim the share once the
	// informer shows the member Lease.
	deadline := time.Now().Add(30 * time.Second)
	for !s.replica.Ready() {
		if time.Now().After(deadline) {
			t.Fatalf("the replica holds %s, not its share %s", s.replica.Held(), s.replica.Target())
		}
		if err := s.replica.Step(ctx); err != nil {
			t.Logf("Step: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.readiness(); err == nil {
		t.Fatal("readiness = nil with the share claimed but no slot open to events, want an error")
	}
	s.apply(s.replica.Terms())
	if err := s.readiness(); err != nil {
		t.Fatalf("readiness = %v once the slots are open", err)
	}
}
