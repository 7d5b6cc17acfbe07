package kubehandler

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
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

type eventLoop struct {
	q *workQueue

	mu       sync.Mutex
	handlers []EventHandler
	hooked   []hooked // the handlers of the Run in progress
	running  bool     // a Run is between hooking and unhooking its handlers
	names    map[string]bool
}

// hooked is a handler attached to its informer for one Run.
type hooked struct {
	informer     cache.SharedInformer
	registration cache.ResourceEventHandlerRegistration
}

func (l *eventLoop) Register(h EventHandler) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.handlers = append(l.handlers, h)
	if !l.running {
		return
	}
	if _, _, err := l.hook(h); err != nil {
		utilruntime.HandleError(fmt.Errorf("kubehandler: queue %q: handler registered while running was refused: %w", l.q.name, err))
	}
}

func (l *eventLoop) Run(ctx context.Context, threadiness int) error {
	if err := l.q.claim(threadiness); err != nil {
		return err
	}
	defer l.q.running.Store(false)
	checkers, synced, err := l.start()
	if err != nil {
		return err
	}
	defer l.stop()
	return l.q.run(ctx, threadiness, checkers, synced)
}

// start validates every registered handler, then hooks each to its informer.
// It returns what Run must wait for: each registration's sync (delivered
// through a channel) and the handlers' own Synced functions. On error nothing
// stays hooked.
func (l *eventLoop) start() (checkers []cache.DoneChecker, synced []cache.InformerSynced, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
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
	if len(errs) > 0 {
		return nil, nil, fmt.Errorf("kubehandler: queue %q: %w", l.q.name, errors.Join(errs...))
	}
	l.names = make(map[string]bool, len(l.handlers))
	l.running = true
	for _, h := range l.handlers {
		reg, s, err := l.hook(h)
		if err != nil {
			l.unhookLocked()
			return nil, nil, fmt.Errorf("kubehandler: queue %q: %w", l.q.name, err)
		}
		checkers = append(checkers, reg.HasSyncedChecker())
		if s != nil {
			synced = append(synced, s)
		}
	}
	return checkers, synced, nil
}

// hook registers h's callbacks on the queue and its event handler on its
// informer, and returns the registration and h's Synced function (maybe
// nil). l.mu must be held.
func (l *eventLoop) hook(h EventHandler) (_ cache.ResourceEventHandlerRegistration, _ cache.InformerSynced, err error) {
	// A handler's methods are user code: a panic (a nil pointer inside an
	// interface, say) becomes an error, not a crash (promise 6).
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler %T: %v", h, p)
		}
	}()
	name, err := handlerName(h)
	if err != nil {
		return nil, nil, err
	}
	if l.names[name] {
		return nil, nil, fmt.Errorf("two handlers are named %q; give each a unique name", name)
	}
	informer := h.GetInformer()
	store := informer.GetStore()
	l.q.updateKind(name, func(k *kind) {
		k.handlers = [...]WorkQueueHandler{addEvent: h.AddFunc, updateEvent: h.UpdateFunc, deleteEvent: h.DeleteFunc}
		k.store = store
	})
	reg, err := informer.AddEventHandler(&informerHandler{q: l.q, kind: name, resyncs: l.q.opts.resyncEvents})
	if err != nil {
		return nil, nil, fmt.Errorf("handler %q: adding an event handler to its informer: %w", name, err)
	}
	l.names[name] = true
	l.hooked = append(l.hooked, hooked{informer: informer, registration: reg})
	return reg, h.GetSynced(), nil
}

// stop detaches every handler of the Run from its informer, and waits until
// the informers have stopped delivering to it.
func (l *eventLoop) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unhookLocked()
}

func (l *eventLoop) unhookLocked() {
	for _, h := range l.hooked {
		if err := cache.ShutDownEventHandler(h.informer, h.registration); err != nil {
			utilruntime.HandleError(fmt.Errorf("kubehandler: queue %q: removing an event handler: %w", l.q.name, err))
		}
	}
	l.hooked = nil
	l.running = false
}

// handlerName returns h's name, or its Go type's name when GetName returns
// "" (promise 8). It reports handlers that cannot work.
func handlerName(h EventHandler) (string, error) {
	if h == nil {
		return "", errors.New("a nil handler was registered")
	}
	v := reflect.ValueOf(h)
	if v.Kind() == reflect.Pointer && v.IsNil() {
		return "", fmt.Errorf("a nil %T was registered", h)
	}
	name := h.GetName()
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
	if informer := h.GetInformer(); informer == nil {
		return name, fmt.Errorf("handler %q has no informer", name)
	} else if v := reflect.ValueOf(informer); v.Kind() == reflect.Pointer && v.IsNil() {
		return name, fmt.Errorf("handler %q has a nil informer (%T)", name, informer)
	}
	return name, nil
}

// informerHandler feeds one handler's informer events into the queue.
type informerHandler struct {
	q       *workQueue
	kind    string
	resyncs bool
}

func (h *informerHandler) OnAdd(obj interface{}, _ bool) { h.q.enqueue(h.kind, addEvent, obj) }

func (h *informerHandler) OnUpdate(oldObj, newObj interface{}) {
	if !h.resyncs && isResync(oldObj, newObj) {
		return
	}
	h.q.enqueue(h.kind, updateEvent, newObj)
}

func (h *informerHandler) OnDelete(obj interface{}) { h.q.enqueue(h.kind, deleteEvent, obj) }

// isResync reports whether an update is an informer's periodic resync: the
// object's resourceVersion did not change (promise 7). Objects without a
// resourceVersion (client-go's fake clientsets make such) cannot be told
// apart, so their updates are delivered.
func isResync(oldObj, newObj interface{}) bool {
	o, err := meta.Accessor(oldObj)
	if err != nil {
		return false
	}
	n, err := meta.Accessor(newObj)
	if err != nil {
		return false
	}
	rv := n.GetResourceVersion()
	return rv != "" && rv == o.GetResourceVersion()
}
