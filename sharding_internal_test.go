package kubehandler

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// newestFirst orders by resourceVersion as numbers, the newest first and
// equal ones as they were, and leaves objects it cannot order as they are.
func TestNewestFirst(t *testing.T) {
	cm := func(name, rv string) interface{} {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}}
	}
	names := func(objs []interface{}) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o.(*corev1.ConfigMap).Name)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		objs []interface{}
		want []string
	}{
		{"by number, not by text", []interface{}{cm("a", "9"), cm("b", "100"), cm("c", "10")}, []string{"b", "c", "a"}},
		{"equal ones keep their order", []interface{}{cm("a", "5"), cm("b", "7"), cm("c", "5"), cm("d", "7")}, []string{"b", "d", "a", "c"}},
		{"one without a version", []interface{}{cm("a", "1"), cm("b", ""), cm("c", "3")}, []string{"a", "b", "c"}},
		{"one malformed", []interface{}{cm("a", "1"), cm("b", "x7"), cm("c", "3")}, []string{"a", "b", "c"}},
		{"not an object", []interface{}{cm("a", "1"), "ns/b", cm("c", "3")}, nil},
		{"none", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.objs)
			newestFirst(tc.objs)
			if tc.want == nil && len(tc.objs) > 0 {
				if !slices.Equal(before, tc.objs) {
					t.Errorf("newestFirst reordered objects it cannot read")
				}
				return
			}
			if got := names(tc.objs); !slices.Equal(got, tc.want) {
				t.Errorf("newestFirst = %v, want %v", got, tc.want)
			}
		})
	}
}
