package kubehandler

import (
	"context"

	"k8s.io/client-go/tools/cache"
)

// The event types, as passed to handlers and found in Event.Type.
const (
	WorkqueueAddEvent    string = "add"
	WorkqueueUpdateEvent string = "update"
	WorkqueueDeleteEvent string = "delete"
)

// EventHandler handles the events of one informer. Embed DefaultHandler to
// get all methods, and override the callbacks you need.
//
// GetName names the handler; it is the Kind of its Keys, the handler label of
// its metrics and logs, and must be unique within an EventLoop (an empty name
// becomes the handler's Go type name). GetInformer returns the shared
// informer whose events the handler receives; the caller starts it (usually
// through an informer factory). GetSynced may return nil, in which case the
// informer's HasSynced is used.
//
// The three callbacks receive the object's namespace and name; look the
// object up in a lister, or read Event.Object from EventFromContext(ctx). For
// one object at most one callback runs at a time (promise 1). A returned
// error is retried (promise 4) unless it is Terminal; RequeueAfter asks for
// the event again later.
type EventHandler interface {
	GetName() string
	GetSynced() cache.InformerSynced
	GetInformer() cache.SharedInformer
	AddFunc(ctx context.Context, namespace, name string) error
	UpdateFunc(ctx context.Context, namespace, name string) error
	DeleteFunc(ctx context.Context, namespace, name string) error
}

// WorkQueueHandler handles one event type of one kind on a WorkQueue.
type WorkQueueHandler func(ctx context.Context, namespace, name string) error

// Event describes the handler call in progress; get it with
// EventFromContext.
type Event struct {
	// Type is WorkqueueAddEvent, WorkqueueUpdateEvent or WorkqueueDeleteEvent.
	Type string
	// Key identifies the object and the handler.
	Key Key
	// Object is the newest object seen for this key: for a delete, its final
	// state (tombstones unwrapped), even when a same-named object was created
	// after it. It comes from the informer's cache and must not be mutated.
	// It may be nil (a WorkQueue given a bare key, or a tombstone without
	// an object).
	Object interface{}
	// Retries is the number of times this key has been retried so far: 0 on
	// the first call of an event, 1 on its first retry.
	Retries int
}

// eventContextKey is the context key under which a call's Event is found.
type eventContextKey struct{}

// EventFromContext returns the Event of the handler call whose context (or a
// context derived from it) is ctx. It reports false outside a handler call.
func EventFromContext(ctx context.Context) (Event, bool) {
	if c, ok := ctx.Value(eventContextKey{}).(*callContext); ok {
		return c.event(), true
	}
	return Event{}, false
}
