package kubehandler

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
)

// EventLoop dispatches the events of registered handlers' informers through
// one WorkQueue. See the package documentation for its promises.
type EventLoop interface {
	// Run waits for every registered handler's informer to sync, then
	// dispatches with threadiness workers until ctx is cancelled (it then
	// returns nil) or an ErrorHandler says stop (it returns an error wrapping
	// the handler's). It returns only after every handler call has returned.
	// Misuse (no informer, duplicate handler names, threadiness < 1, a
	// second concurrent Run) makes it return an error before it starts
	// anything. Run does not start informers: start them (or their factory)
	// yourself, before or after calling Run.
	Run(ctx context.Context, threadiness int) error
	// Register adds a handler. Handlers registered before Run take effect
	// when it starts; a handler registered while Run is running is hooked to
	// its informer at once (a handler Run would refuse is then reported as an
	// error and ignored).
	Register(handler EventHandler)
}

// NewEventLoop returns an EventLoop whose workqueue is called name (it labels
// metrics and logs). It starts no goroutine.
func NewEventLoop(name string, opts ...Option) EventLoop {
	return &eventLoop{q: newWorkQueue(name, opts)}
}

// eventLoop implements EventLoop: a workQueue whose kinds are the registered
// handlers, fed by their informers. Its Run (in run.go, beside the
// WorkQueue's) is the queue's, with the handlers hooked to their informers
// (hookAll) between claiming the queue and running it, and unhooked
// (unhookAll) before releasing it.
type eventLoop struct {
	q *workQueue

	// mu serialises Register with a Run's hooking and unhooking: a handler
	// registered while a Run is in progress (q.running) is hooked by
	// Register, any other by the next Run.
	mu       sync.Mutex
	handlers []EventHandler
	hooks    []hook          // the handlers hooked for the Run in progress
	names    map[string]bool // their names
}

// hook is a handler attached to its informer for one Run.
type hook struct {
	informer     cache.SharedInformer
	registration cache.ResourceEventHandlerRegistration
}

func (l *eventLoop) Register(h EventHandler) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.handlers = append(l.handlers, h)
	if !l.q.running() {
		return
	}
	if _, _, err := l.hook(h); err != nil {
		utilruntime.HandleError(fmt.Errorf("kubehandler: queue %q: handler registered while running was refused: %w", l.q.name, err))
	}
}

// hookAll validates every registered handler, then hooks each to its
// informer. It returns what Run must wait for before its workers start: each
// registration's sync (delivered through a channel) and the handlers' own
// Synced functions. On error nothing stays hooked. l.mu must be held.
func (l *eventLoop) hookAll() (syncWaits, error) {
	l.names = make(map[string]bool, len(l.handlers))
	var errs []error
	for _, h := range l.handlers {
		name, err := handlerName(h)
		if err == nil && l.names[name] {
			err = fmt.Errorf("two handlers are named %q; give each a unique name", name)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		l.names[name] = true
	}
	if sh := l.q.opts.sharding; sh != nil {
		for _, name := range sh.Secondary {
			if !l.names[name] {
				// A misspelt name would split that handler by its own
				// objects' UIDs, and its Enqueues would mostly miss.
				errs = append(errs, fmt.Errorf("Sharding.Secondary names %q, which no registered handler is called", name))
			}
		}
	}
	if len(errs) > 0 {
		return syncWaits{}, fmt.Errorf("kubehandler: queue %q: %w", l.q.name, errors.Join(errs...))
	}
	clear(l.names)
	var w syncWaits
	for _, h := range l.handlers {
		reg, synced, err := l.hook(h)
		if err != nil {
			l.unhookAll()
			return syncWaits{}, fmt.Errorf("kubehandler: queue %q: %w", l.q.name, err)
		}
		w.checkers = append(w.checkers, reg.HasSyncedChecker())
		if synced != nil {
			w.synced = append(w.synced, synced)
		}
	}
	return w, nil
}

// hook sets h's callbacks as the handlers of its kind on the queue and adds
// an informerHandler to its informer, and returns the registration and h's
// Synced function (maybe nil). l.mu must be held.
func (l *eventLoop) hook(h EventHandler) (reg cache.ResourceEventHandlerRegistration, synced cache.InformerSynced, err error) {
	name, err := handlerName(h)
	if err != nil {
		return nil, nil, err
	}
	if l.names[name] {
		return nil, nil, fmt.Errorf("two handlers are named %q; give each a unique name", name)
	}
	err = guard(h, func() error {
		informer := h.GetInformer()
		if _, ok := informer.(slotInformer); ok && !l.q.opts.sharding.splits(name) {
			// It would list nothing: only a sharded handler's loop tells it
			// its slots.
			return fmt.Errorf("handler %q: a ShardedInformer serves only a handler that WithSharding splits (not a Secondary one); give it a plain informer", name)
		}
		store := informer.GetStore()
		l.q.setHandlers(name, func(k *kindHandlers) {
			k.handlers = [...]WorkQueueHandler{addEvent: h.AddFunc, updateEvent: h.UpdateFunc, deleteEvent: h.DeleteFunc}
			k.store = store
			k.informer = informer
		})
		var err error
		reg, err = informer.AddEventHandler(&informerHandler{q: l.q, kind: name, resyncs: l.q.opts.resyncEvents})
		if err != nil {
			return fmt.Errorf("handler %q: adding an event handler to its informer: %w", name, err)
		}
		l.hooks = append(l.hooks, hook{informer: informer, registration: reg})
		synced = h.GetSynced()
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	l.names[name] = true
	return reg, synced, nil
}

// unhookAll detaches every handler of the Run from its informer, and waits
// until the informers have stopped delivering to it. l.mu must be held.
func (l *eventLoop) unhookAll() {
	for _, h := range l.hooks {
		if err := cache.ShutDownEventHandler(h.informer, h.registration); err != nil {
			utilruntime.HandleError(fmt.Errorf("kubehandler: queue %q: removing an event handler: %w", l.q.name, err))
		}
	}
	l.hooks = nil
}

// handlerName returns h's name, or its Go type's name when GetName returns
// "" (promise 8). It reports handlers that cannot work.
func handlerName(h EventHandler) (name string, err error) {
	if h == nil {
		return "", errors.New("a nil handler was registered")
	}
	v := reflect.ValueOf(h)
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return "", fmt.Errorf("a nil %T was registered", h)
	}
	err = guard(h, func() error { name = h.GetName(); return nil })
	if err != nil {
		return "", err
	}
	if name == "" {
		t := v.Type()
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		name = t.Name()
		if name == "" {
			name = t.String()
		}
	}
	var informer cache.SharedInformer
	if err := guard(h, func() error { informer = h.GetInformer(); return nil }); err != nil {
		return name, err
	}
	if informer == nil {
		return name, fmt.Errorf("handler %q has no informer", name)
	} else if v := reflect.ValueOf(informer); v.Kind() == reflect.Pointer && v.IsNil() {
		return name, fmt.Errorf("handler %q has a nil informer (%T)", name, informer)
	}
	return name, nil
}

// guard calls f, which calls methods of h: user code. A panic (a nil pointer
// inside an interface, say) becomes an error naming h's type, not a crash
// (promise 6).
func guard(h EventHandler, f func() error) (err error) {
	defer func() {
		var p *panicError
		if errors.As(err, &p) {
			err = fmt.Errorf("%T: %w", h, err)
		}
	}()
	defer recoverPanic(&err)
	return f()
}
