package kubehandler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
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

// workQueue implements WorkQueue. Its pending map is the source of truth for
// what each key still has to dispatch; the client-go workqueue of the Run in
// progress only orders keys, keeps one in flight per key (promise 1) and
// times retries.
type workQueue struct {
	name    string
	opts    options
	metrics *metrics
	err     error // what newWorkQueue found wrong; Run returns it

	mu      sync.Mutex
	pending map[Key]*pendingEvents
	free    []*pendingEvents // recycled entries, to spare the dispatch path an allocation
	active  *runner          // the Run in progress, nil when none
	synced  []cache.InformerSynced

	kindsMu sync.Mutex                       // serialises writers of kinds
	kinds   atomic.Pointer[map[string]*kind] // copied on write; read on every dispatch

	running atomic.Bool
}

// kind is what is registered for one kind: a handler per event type.
type kind struct {
	handlers [deleteEvent + 1]WorkQueueHandler
	metrics  *handlerMetrics
}

func newWorkQueue(name string, opts []Option) *workQueue {
	q := &workQueue{
		name:    name,
		opts:    newOptions(opts),
		pending: make(map[Key]*pendingEvents),
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
	return len(q.pending)
}

// register sets the handler of events of type t of kind name.
func (q *workQueue) register(name string, t eventType, h WorkQueueHandler) {
	q.kindsMu.Lock()
	defer q.kindsMu.Unlock()
	kinds := maps.Clone(*q.kinds.Load())
	k := &kind{}
	if old := kinds[name]; old != nil {
		*k = *old
	} else {
		k.metrics = q.metrics.forHandler(q.name, name)
	}
	k.handlers[t] = h
	kinds[name] = k
	q.kinds.Store(&kinds)
}

// handler returns the handler of events of type t of kind name, or nil.
func (q *workQueue) handler(name string, t eventType) (WorkQueueHandler, *handlerMetrics) {
	k := (*q.kinds.Load())[name]
	if k == nil {
		return nil, nil
	}
	return k.handlers[t], k.metrics
}

// enqueue merges an event into its key's pending events and, during a Run,
// queues the key. Informer events take this path: no rate limiter (promise 5).
func (q *workQueue) enqueue(kind string, t eventType, obj interface{}) {
	namespace, name, object, err := objectKey(obj)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("kubehandler: queue %q: dropping %s event of %s: %w", q.name, t, kind, err))
		return
	}
	key := Key{Kind: kind, Namespace: namespace, Name: name}
	q.mu.Lock()
	p := q.pending[key]
	if p == nil {
		p = q.newPending()
		q.pending[key] = p
	}
	p.push(t, object)
	active := q.active
	q.mu.Unlock()
	if active != nil {
		active.queue.Add(key)
	}
}

// take removes and returns the event key dispatches now. When a second stage
// (the add after a delete) is left, the key is queued again: it is in flight,
// so the workqueue hands it out once this call is Done.
func (q *workQueue) take(key Key) (stage, bool) {
	q.mu.Lock()
	p := q.pending[key]
	if p == nil {
		q.mu.Unlock()
		return stage{}, false
	}
	s, more := p.pop()
	if !more {
		delete(q.pending, key)
		q.recycle(p)
	}
	active := q.active
	q.mu.Unlock()
	if more && active != nil {
		active.queue.Add(key)
	}
	return s, true
}

// putBack returns a taken event to key's pending events, in front of those
// that arrived while it was being handled.
func (q *workQueue) putBack(key Key, s stage) {
	q.mu.Lock()
	defer q.mu.Unlock()
	p := q.pending[key]
	if p == nil {
		p = q.newPending()
		q.pending[key] = p
	}
	p.unpop(s)
}

// newPending returns an empty entry. q.mu must be held.
func (q *workQueue) newPending() *pendingEvents {
	if n := len(q.free); n > 0 {
		p := q.free[n-1]
		q.free = q.free[:n-1]
		return p
	}
	return &pendingEvents{}
}

// maxFree bounds the recycled entries kept, so a burst does not pin memory.
const maxFree = 4096

// recycle keeps an emptied entry for reuse. q.mu must be held.
func (q *workQueue) recycle(p *pendingEvents) {
	*p = pendingEvents{}
	if len(q.free) < maxFree {
		q.free = append(q.free, p)
	}
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
	return q.run(ctx, threadiness, synced)
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

// run waits for synced, then dispatches until ctx is done or a handler's
// error stops the loop. The caller has claimed the queue.
func (q *workQueue) run(ctx context.Context, threadiness int, synced []cache.InformerSynced) error {
	logger := q.logger(ctx)
	ctx = klog.NewContext(ctx, logger)
	if len(synced) > 0 {
		logger.V(2).Info("Waiting for caches to sync")
		if !cache.WaitForCacheSync(ctx.Done(), synced...) {
			// Only a cancelled ctx ends the wait early: a normal shutdown.
			return nil
		}
		logger.V(2).Info("Caches are synced")
	}
	r := newRunner(ctx, q, logger)
	q.mu.Lock()
	q.active = r
	for key := range q.pending {
		r.queue.Add(key)
	}
	q.mu.Unlock()

	logger.V(2).Info("Starting workers", "count", threadiness)
	err := r.run(threadiness)
	logger.V(2).Info("Workers stopped")

	q.mu.Lock()
	q.active = nil
	if err != nil {
		// ErrorActionStop: what is still queued is discarded; a restarted
		// controller relists it.
		clear(q.pending)
	}
	q.mu.Unlock()
	return err
}
