package kubehandler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// WorkQueue is a named, rate-limited queue of object keys with handlers per
// kind and event type, as in kubehandler v2. EventLoop is built on it; use it
// directly to feed events from sources of your own.
//
// Enqueue methods may be called at any time, before Run too: the events wait,
// merged per key (promise 2), until a Run dispatches them. Handlers may be
// registered at any time; an event whose kind has no handler for its type
// when it is dispatched is dropped (logged at verbosity 4).
type WorkQueue interface {
	// Run waits for the functions given to AddSynced, then dispatches with
	// threadiness workers until ctx is cancelled or an ErrorHandler says stop.
	// It returns after every handler call has returned.
	Run(ctx context.Context, threadiness int) error
	// AddSynced adds a function Run waits for before it starts its workers.
	AddSynced(cache.InformerSynced)
	// EnqueueAdd queues an add of obj for kind. obj is an object with
	// metadata, a cache.DeletedFinalStateUnknown, a cache.ObjectName, or a
	// "namespace/name" key (string or cache.ExplicitKey).
	EnqueueAdd(kind string, obj interface{})
	// EnqueueUpdate queues an update of obj for kind.
	EnqueueUpdate(kind string, obj interface{})
	// EnqueueDelete queues a delete of obj (its final state) for kind.
	EnqueueDelete(kind string, obj interface{})
	// RegisterAddHandler sets the handler of add events of kind.
	RegisterAddHandler(kind string, handler WorkQueueHandler)
	// RegisterUpdateHandler sets the handler of update events of kind.
	RegisterUpdateHandler(kind string, handler WorkQueueHandler)
	// RegisterDeleteHandler sets the handler of delete events of kind.
	RegisterDeleteHandler(kind string, handler WorkQueueHandler)
	// Length returns the number of keys waiting to be dispatched, including
	// keys waiting for a retry or a RequeueAfter.
	Length() int
}

// NewWorkQueue returns a WorkQueue called name; the name labels its metrics
// and logs. It starts no goroutine: the queue works while Run runs.
func NewWorkQueue(name string, opts ...Option) WorkQueue {
	return newWorkQueue(name, opts)
}

// workQueue implements WorkQueue. Each key has an entry holding its pending
// events, merged (promise 2). The client-go workqueue of the Run in progress
// holds entries, not Keys: it orders them, keeps one in flight per entry, and
// times retries, while hashing a pointer instead of three strings. An entry
// stays the key's only entry from its first event until a delete of the key
// has been handled and nothing is pending, so one entry in flight means one
// key in flight (promise 1). Keeping the entries of live objects (about 200
// bytes each, beside the informer's cached objects) spares the update path an
// allocation and two map writes.
type workQueue struct {
	name    string
	opts    options
	metrics *metrics
	err     error // what newWorkQueue found wrong; Run returns it

	mu      sync.Mutex
	entries map[Key]*entry
	waiting int     // entries with pending events: Length
	active  *runner // the Run in progress, nil when none
	synced  []cache.InformerSynced

	kindsMu sync.Mutex                       // serialises writers of kinds
	kinds   atomic.Pointer[map[string]*kind] // copied on write; read on every dispatch

	running atomic.Bool
}

// entry is one key's place in the queue.
type entry struct {
	key Key

	// Guarded by workQueue.mu:
	events     pendingEvents
	removed    bool // no longer the key's entry
	dirty      bool // needs processing (client-go's dirty set)
	processing bool // a worker has it (client-go's processing set)
	merged     bool // an event was merged into pending ones or arrived in flight since the last call

	// Only the worker holding the entry reads or writes these:
	retries int32 // failures retried since the key last succeeded
	defers  int32 // dispatches deferred in a row as superseded (see runner.superseded)
}

// kind is what is registered for one kind: a handler per event type, and,
// for an EventLoop handler, its informer's store.
type kind struct {
	handlers [deleteEvent + 1]WorkQueueHandler
	metrics  *handlerMetrics
	store    cache.Store
}

func newWorkQueue(name string, opts []Option) *workQueue {
	q := &workQueue{
		name:    name,
		opts:    newOptions(opts),
		entries: make(map[Key]*entry),
	}
	q.err = errors.Join(q.opts.errs...)
	if q.opts.registerer != nil {
		m, err := newMetrics(q.opts.registerer)
		if err != nil {
			q.err = errors.Join(q.err, fmt.Errorf("kubehandler: registering metrics: %w", err))
		}
		q.metrics = m
	}
	q.kinds.Store(&map[string]*kind{})
	return q
}

func (q *workQueue) EnqueueAdd(kind string, obj interface{})    { q.enqueue(kind, addEvent, obj) }
func (q *workQueue) EnqueueUpdate(kind string, obj interface{}) { q.enqueue(kind, updateEvent, obj) }
func (q *workQueue) EnqueueDelete(kind string, obj interface{}) { q.enqueue(kind, deleteEvent, obj) }

func (q *workQueue) RegisterAddHandler(kind string, h WorkQueueHandler) {
	q.register(kind, addEvent, h)
}

func (q *workQueue) RegisterUpdateHandler(kind string, h WorkQueueHandler) {
	q.register(kind, updateEvent, h)
}

func (q *workQueue) RegisterDeleteHandler(kind string, h WorkQueueHandler) {
	q.register(kind, deleteEvent, h)
}

func (q *workQueue) AddSynced(synced cache.InformerSynced) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.synced = append(q.synced, synced)
}

func (q *workQueue) Length() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.waiting
}

// register sets the handler of events of type t of kind name.
func (q *workQueue) register(name string, t eventType, h WorkQueueHandler) {
	q.updateKind(name, func(k *kind) { k.handlers[t] = h })
}

// updateKind applies change to a copy of kind name's registration.
func (q *workQueue) updateKind(name string, change func(*kind)) {
	q.kindsMu.Lock()
	defer q.kindsMu.Unlock()
	kinds := maps.Clone(*q.kinds.Load())
	k := &kind{}
	if old := kinds[name]; old != nil {
		*k = *old
	} else {
		k.metrics = q.metrics.forHandler(q.name, name)
	}
	change(k)
	kinds[name] = k
	q.kinds.Store(&kinds)
}

// kind returns what is registered for kind name, or nil.
func (q *workQueue) kind(name string) *kind {
	return (*q.kinds.Load())[name]
}

// enqueue merges an event into its key's pending events and, during a Run,
// queues the key's entry. Informer events take this path: no rate limiter
// (promise 5).
func (q *workQueue) enqueue(kind string, t eventType, obj interface{}) {
	namespace, name, object, err := objectKey(obj)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("kubehandler: queue %q: dropping %s event of %s: %w", q.name, t, kind, err))
		return
	}
	key := Key{Kind: kind, Namespace: namespace, Name: name}
	q.mu.Lock()
	e := q.entries[key]
	if e == nil {
		e = &entry{key: key}
		q.entries[key] = e
	}
	if e.events.empty() {
		q.waiting++
		e.merged = e.merged || e.processing
	} else {
		e.merged = true
	}
	e.events.push(t, object)
	if q.active != nil {
		q.active.base.addLocked(e)
	}
	q.mu.Unlock()
}

// Run implements WorkQueue.
func (q *workQueue) Run(ctx context.Context, threadiness int) error {
	if err := q.claim(threadiness); err != nil {
		return err
	}
	defer q.running.Store(false)
	q.mu.Lock()
	synced := append([]cache.InformerSynced(nil), q.synced...)
	q.mu.Unlock()
	return q.run(ctx, threadiness, nil, synced)
}

// claim checks what makes a Run impossible and marks the queue running. It
// starts nothing, so a refused Run leaves nothing behind (promise 6).
func (q *workQueue) claim(threadiness int) error {
	if q.err != nil {
		return q.err
	}
	if threadiness < 1 {
		return fmt.Errorf("kubehandler: queue %q: threadiness must be at least 1, got %d", q.name, threadiness)
	}
	if !q.running.CompareAndSwap(false, true) {
		return fmt.Errorf("kubehandler: queue %q is already running: Run must not be called again until it returns", q.name)
	}
	return nil
}

// logger returns the logger of a Run on ctx.
func (q *workQueue) logger(ctx context.Context) logr.Logger {
	logger := klog.FromContext(ctx)
	if q.opts.logger != nil {
		logger = *q.opts.logger
	}
	return logger.WithValues("queue", q.name)
}

// run waits for checkers and synced, then dispatches until ctx is done or a
// handler's error stops the loop. The caller has claimed the queue.
func (q *workQueue) run(ctx context.Context, threadiness int, checkers []cache.DoneChecker, synced []cache.InformerSynced) error {
	logger := q.logger(ctx)
	ctx = klog.NewContext(ctx, logger)
	// The queue takes events from now on, so that the initial list is
	// queued as it arrives, not in one go once the caches have synced.
	r := newRunner(ctx, q, logger, threadiness)
	q.mu.Lock()
	q.active = r
	for _, e := range q.entries {
		if !e.events.empty() {
			r.base.addLocked(e)
		}
	}
	q.mu.Unlock()

	var err error
	switch {
	case !waitForSync(ctx, logger, checkers, synced):
		// Only a cancelled ctx ends the wait early: a normal shutdown.
		r.shutDown()
	case q.opts.leaderElection != nil:
		r.synced.Store(true)
		err = r.lead(threadiness)
	default:
		r.synced.Store(true)
		logger.V(2).Info("Starting workers", "count", threadiness)
		err = r.run(threadiness)
		logger.V(2).Info("Workers stopped")
	}
	// A standby whose Run ends never started workers, and a stopped
	// leader's queue is shut down already: either way nothing of the
	// runner's queues (client-go's delaying queue has a goroutine) is left.
	r.shutDown()

	q.mu.Lock()
	q.active = nil
	resetEntries(q.entries)
	if r.stopErr != nil {
		// ErrorActionStop: what is still queued is discarded; a restarted
		// controller relists it.
		for _, e := range q.entries {
			e.removed = true
		}
		clear(q.entries)
		q.waiting = 0
	}
	q.mu.Unlock()
	return err
}

// syncPollPeriod is how often waitForSync polls InformerSynced functions;
// they are usually true already once the checkers are done.
const syncPollPeriod = 10 * time.Millisecond

// waitForSync waits until every checker is done (without polling: informer
// registrations close a channel once their initial list is delivered), then
// until every synced function returns true. It returns false if ctx ends
// first.
func waitForSync(ctx context.Context, logger logr.Logger, checkers []cache.DoneChecker, synced []cache.InformerSynced) bool {
	if len(checkers) == 0 && len(synced) == 0 {
		return true
	}
	logger.V(2).Info("Waiting for caches to sync")
	for _, c := range checkers {
		select {
		case <-c.Done():
		case <-ctx.Done():
			return false
		}
	}
	allSynced := func(context.Context) (bool, error) {
		for _, s := range synced {
			if !s() {
				return false, nil
			}
		}
		return true, nil
	}
	if err := wait.PollUntilContextCancel(ctx, syncPollPeriod, true, allSynced); err != nil {
		return false
	}
	logger.V(2).Info("Caches are synced")
	return true
}
