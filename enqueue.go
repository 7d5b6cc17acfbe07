package kubehandler

import (
	"context"
	"fmt"

	"k8s.io/client-go/tools/cache"
)

// Enqueue asks the loop running the handler call of ctx to dispatch key, a
// key of one of its handlers, as an update: how a handler of a secondary
// resource (a Deployment) hands work to the handler of the object that owns
// it (a Foo), which then runs with the usual guarantees: one call at a time
// per key, coalescing, retries. The update carries the object that handler's
// informer has cached; when the informer has no such object there is
// nothing to sync and Enqueue returns false (the object's own events will
// come). A WorkQueue kind has no informer: its update carries no object.
//
// The update is a live event: it is dispatched ahead of the low lane
// (promise 9). EnqueueBackground queues it in the low lane instead.
//
// With WithSharding, a key of a sharded handler whose object is in a slot
// this replica does not hold is not queued, and Enqueue returns false: the
// replica holding it runs its handler for the same event.
//
// It returns an error when ctx is not the context of a handler call, or when
// no handler of the loop has key.Kind as its name.
func Enqueue(ctx context.Context, key Key) (bool, error) {
	return enqueueFromCall(ctx, key, highLane, "Enqueue")
}

// EnqueueBackground is Enqueue for work that may wait: the update waits in
// the low lane with the informers' initial lists and resyncs, behind live
// events (promise 9), as a periodic re-check or a bulk re-sync of owners
// should. Without lanes (WithPriorityLanes(false)) it is Enqueue. A live
// event for the key while it waits moves it up.
func EnqueueBackground(ctx context.Context, key Key) (bool, error) {
	return enqueueFromCall(ctx, key, lowLane, "EnqueueBackground")
}

// enqueueFromCall is Enqueue and EnqueueBackground, queueing in lane l; fn
// names the caller in errors.
func enqueueFromCall(ctx context.Context, key Key, l lane, fn string) (bool, error) {
	c, ok := ctx.Value(eventContextKey{}).(*callContext)
	if !ok {
		return false, fmt.Errorf("kubehandler: %s needs the context of a handler call", fn)
	}
	q := c.runner.q
	k := q.handlersOf(key.Kind)
	if k == nil {
		return false, fmt.Errorf("kubehandler: %s: queue %q has no handler named %q", fn, q.name, key.Kind)
	}
	if k.store == nil {
		q.enqueue(key.Kind, updateEvent, cache.ObjectName{Namespace: key.Namespace, Name: key.Name}, l)
		return true, nil
	}
	// With WithSharding, a key in a slot this replica does not hold is not
	// queued (false): the replica holding it sees the event that made this
	// call Enqueue, and enqueues it there.
	return q.enqueueCached(key, updateEvent, k.store, l)
}
