package kubehandler

import (
	"context"
	"errors"
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
// It returns an error when ctx is not the context of a handler call, or when
// no handler of the loop has key.Kind as its name.
func Enqueue(ctx context.Context, key Key) (bool, error) {
	c, ok := ctx.Value(eventContextKey{}).(*callContext)
	if !ok {
		return false, errors.New("kubehandler: Enqueue needs the context of a handler call")
	}
	q := c.runner.q
	k := q.handlersOf(key.Kind)
	if k == nil {
		return false, fmt.Errorf("kubehandler: Enqueue: queue %q has no handler named %q", q.name, key.Kind)
	}
	var obj interface{} = cache.ObjectName{Namespace: key.Namespace, Name: key.Name}
	if k.store != nil {
		cached, exists, err := k.store.GetByKey(key.storeKey())
		if err != nil || !exists {
			return false, err
		}
		obj = cached
	}
	q.enqueue(key.Kind, updateEvent, obj)
	return true, nil
}
