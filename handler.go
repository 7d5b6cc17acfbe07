package kubehandler

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
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

// callContext is the context of one handler call. It is Run's context (its
// deadline, cancellation and values) plus the Event and a logger with the
// handler, namespace, name and event type. The Event is rebuilt from the
// call's entry when asked for, and the logger built only if the handler asks
// for it: most calls log nothing, and a dispatch allocates this context and
// nothing else, 48 bytes.
type callContext struct {
	runner  *runner
	entry   *entry // its key never changes
	obj     interface{}
	typ     eventType
	retries int32
	logger  atomic.Pointer[logr.Logger] // built on first use
}

var _ context.Context = (*callContext)(nil)

func (c *callContext) Deadline() (time.Time, bool) { return c.runner.ctx.Deadline() }
func (c *callContext) Done() <-chan struct{}       { return c.runner.ctx.Done() }
func (c *callContext) Err() error                  { return c.runner.ctx.Err() }

func (c *callContext) Value(key interface{}) interface{} {
	if key == (eventContextKey{}) {
		return c
	}
	if key == logrContextKey && key != nil {
		return c.log()
	}
	return c.runner.ctx.Value(key)
}

// event returns the call's Event.
func (c *callContext) event() Event {
	return Event{Type: c.typ.String(), Key: c.entry.key, Object: c.obj, Retries: int(c.retries)}
}

// log returns the call's logger, building it on first use.
func (c *callContext) log() logr.Logger {
	if l := c.logger.Load(); l != nil {
		return *l
	}
	k := c.entry.key
	built := c.runner.logger.WithValues("handler", k.Kind, "namespace", k.Namespace, "name", k.Name, "event", c.typ.String())
	c.logger.CompareAndSwap(nil, &built)
	return *c.logger.Load()
}

// logrContextKey is the key logr (and so klog.FromContext) looks up a
// context's logger under. logr does not export it; asking logr once, through a
// context that records the question, finds it.
var logrContextKey = func() interface{} {
	probe := &keyProbe{Context: context.Background()}
	_, _ = logr.FromContext(probe)
	return probe.key
}()

type keyProbe struct {
	context.Context
	key interface{}
}

func (p *keyProbe) Value(key interface{}) interface{} {
	p.key = key
	return nil
}
