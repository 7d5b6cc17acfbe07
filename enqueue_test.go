package kubehandler_test

import (
	"context"
	"testing"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// A handler of one kind hands work to a handler of another through
// Enqueue: the owner's handler is called with an update carrying its cached
// object; an owner not in the cache is not enqueued.
func TestEnqueueAnotherHandlersKey(t *testing.T) {
	owners, owned := newFixture(t), newFixture(t)
	ownerHandler := newRecorder(owners.informer, "owners")
	ownedHandler := newRecorder(owned.informer, "owned")
	type result struct {
		ok  bool
		err error
	}
	results := make(chan result, 10)
	ownedHandler.Fn = func(ctx context.Context, ev kubehandler.Event) error {
		ok, err := kubehandler.Enqueue(ctx, kubehandler.Key{Kind: "owners", Namespace: ev.Key.Namespace, Name: "owner-of-" + ev.Key.Name})
		results <- result{ok, err}
		return err
	}
	loop := kubehandler.NewEventLoop("enqueue")
	loop.Register(ownerHandler)
	loop.Register(ownedHandler)
	kubehandlertest.Start(t, loop, 2)

	rv := owners.source.Create(configMap("ns", "owner-of-a", "1"))
	ownerKey := kubehandler.Key{Kind: "owners", Namespace: "ns", Name: "owner-of-a"}
	eventually(t, "owner added", func() bool { return len(ownerHandler.CallsFor(ownerKey)) == 1 })

	owned.source.Create(configMap("ns", "a", "1"))
	if r := <-results; !r.ok || r.err != nil {
		t.Fatalf("Enqueue = %v, %v; want true, nil", r.ok, r.err)
	}
	eventually(t, "owner enqueued", func() bool { return len(ownerHandler.CallsFor(ownerKey)) == 2 })
	c := ownerHandler.CallsFor(ownerKey)[1]
	if c.Type != kubehandler.WorkqueueUpdateEvent || c.ResourceVersion() != rv {
		t.Errorf("owner call = %s at rv %s, want an update with the cached object (rv %s)", c.Type, c.ResourceVersion(), rv)
	}

	owned.source.Create(configMap("ns", "orphan", "1"))
	if r := <-results; r.ok || r.err != nil {
		t.Errorf("Enqueue of an owner not in the cache = %v, %v; want false, nil", r.ok, r.err)
	}
}

func TestEnqueueMisuse(t *testing.T) {
	if _, err := kubehandler.Enqueue(t.Context(), kubehandler.Key{Kind: "k", Name: "a"}); err == nil {
		t.Error("Enqueue outside a handler call succeeded")
	}
	q := kubehandler.NewWorkQueue("enqueue-misuse")
	errs := make(chan error, 1)
	q.RegisterAddHandler("k", func(ctx context.Context, _, _ string) error {
		_, err := kubehandler.Enqueue(ctx, kubehandler.Key{Kind: "unknown", Name: "a"})
		errs <- err
		return nil
	})
	q.EnqueueAdd("k", "ns/a")
	kubehandlertest.Start(t, q, 1)
	if err := <-errs; err == nil {
		t.Error("Enqueue of a kind without a handler succeeded")
	}
}
