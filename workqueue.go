package kubehandler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/resourceversion"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/tools/cache"
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
	q := newWorkQueue(name, opts)
	if q.opts.sharding != nil {
		// A WorkQueue has no informers: nothing to place an object by its
		// UID, nor to list a slot taken over from.
		q.err = errors.Join(q.err, fmt.Errorf("kubehandler: queue %q: WithSharding is an option of an EventLoop, not of a WorkQueue", name))
	}
	return q
}

// workQueue implements WorkQueue. Each key has an entry holding its pending
// events, merged (promise 2). A Run queues entries, not Keys, in its entry
// queue (entryqueue.go), under client-go's delaying and rate-limiting queues:
// they order them, keep one in flight per entry, and time retries, while
// hashing a pointer instead of three strings. An entry stays the key's only
// entry from its first event until the key has nothing pending, no call in
// flight and no retry owed (retireIdle), so one entry in flight means one
// key in flight (promise 1).
type workQueue struct {
	name    string
	opts    options
	metrics *metrics
	err     error // what newWorkQueue found wrong; Run returns it

	// mu guards the entries (their pending events and queue flags), the
	// entry queue of the Run in progress, and these:
	mu      sync.Mutex
	entries entryMap
	waiting int // entries with pending events: Length
	// failures holds the last failed call of each key in backoff, from its
	// retry's scheduling until the key stops failing (forget): what
	// DebugHandler shows. Written on the failure path only, so keys that
	// never failed cost it nothing; nil while no key is in backoff.
	failures map[*entry]*failure
	// active is the Run in progress, from the moment Run claims the queue
	// until it releases it; nil when none. It is the queue's one "running"
	// state; where that Run stands is active.phase.
	active *runner
	synced []cache.InformerSynced
	// sharder is the sharder of the Run in progress, with WithSharding:
	// enqueue asks it whether an event is this replica's.
	sharder atomic.Pointer[sharder]
	// debugged is set once a DebugHandler of the queue exists: Runs then
	// record when entries are queued and calls start (debug.go).
	debugged bool

	kindsMu sync.Mutex                               // serialises writers of kinds
	kinds   atomic.Pointer[map[string]*kindHandlers] // copied on write; read on every dispatch
}

// kindHandlers is what is registered for one kind: a handler per event type,
// the handler's metrics and, for an EventLoop handler, its informer and the
// informer's store.
type kindHandlers struct {
	handlers [deleteEvent + 1]WorkQueueHandler
	metrics  *handlerMetrics
	store    cache.Store
	informer cache.SharedInformer // an EventLoop handler's
}

func newWorkQueue(name string, opts []Option) *workQueue {
	q := &workQueue{
		name:    name,
		opts:    newOptions(opts),
		entries: newEntryMap(),
	}
	q.err = errors.Join(q.opts.errs...)
	if q.opts.registerer != nil {
		m, err := newMetrics(q.opts.registerer)
		if err != nil {
			q.err = errors.Join(q.err, fmt.Errorf("kubehandler: registering metrics: %w", err))
		}
		q.metrics = m
	}
	q.kinds.Store(&map[string]*kindHandlers{})
	return q
}

// The Enqueue methods queue live events: the high lane (promise 9).
func (q *workQueue) EnqueueAdd(kind string, obj interface{}) {
	q.enqueue(kind, addEvent, obj, highLane)
}
func (q *workQueue) EnqueueUpdate(kind string, obj interface{}) {
	q.enqueue(kind, updateEvent, obj, highLane)
}
func (q *workQueue) EnqueueDelete(kind string, obj interface{}) {
	q.enqueue(kind, deleteEvent, obj, highLane)
}

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

// register sets the handler of events of type t of kind.
func (q *workQueue) register(kind string, t eventType, h WorkQueueHandler) {
	q.setHandlers(kind, func(k *kindHandlers) { k.handlers[t] = h })
}

// setHandlers applies change to a copy of what is registered for kind.
func (q *workQueue) setHandlers(kind string, change func(*kindHandlers)) {
	q.kindsMu.Lock()
	defer q.kindsMu.Unlock()
	kinds := maps.Clone(*q.kinds.Load())
	k := &kindHandlers{}
	if old := kinds[kind]; old != nil {
		*k = *old
	} else {
		k.metrics = q.metrics.forHandler(q.name, kind)
	}
	change(k)
	kinds[kind] = k
	q.kinds.Store(&kinds)
}

// handlersOf returns what is registered for kind, or nil.
func (q *workQueue) handlersOf(kind string) *kindHandlers {
	return (*q.kinds.Load())[kind]
}

// running reports whether a Run is in progress: it claimed the queue and has
// not yet released it.
func (q *workQueue) running() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active != nil
}

// enqueue is the second stage of an event's path, after the informer's
// callback (informer.go) or an Enqueue method: it merges the event into its
// key's pending events (coalesce.go) and, during a Run, queues the key's
// entry in the Run's entry queue (entryqueue.go), where a worker takes it
// (worker.go). Informer events take this path: no rate limiter (promise 5).
// l is the event's lane (promise 9): the entry's lane is the highest of its
// pending events', so a live event moves up an entry waiting in the low lane.
func (q *workQueue) enqueue(kind string, t eventType, obj interface{}, l lane) {
	namespace, name, object, err := objectKey(obj)
	if err != nil {
		utilruntime.HandleError(fmt.Errorf("kubehandler: queue %q: dropping %s event of %s: %w", q.name, t, kind, err))
		return
	}
	if q.opts.sharding != nil && !q.shardAccepts(kind, object) {
		return // another replica's (sharding.go)
	}
	q.mu.Lock()
	q.pushLocked(Key{Kind: kind, Namespace: namespace, Name: name}, t, object, l)
	q.mu.Unlock()
}

// enqueueCached is enqueue of the object store caches for key, as Enqueue
// and a shard slot taken over queue it; it reports whether there was one
// (and, with sharding, whether it is this replica's). The object is read
// under q.mu, at the moment it is merged: read any earlier, it could be
// merged after a newer state the informer delivered meanwhile, and hide it
// (promise 3). Read then, whatever the informer delivers for the key after
// it is newer than it, or followed by what is.
func (q *workQueue) enqueueCached(key Key, t eventType, store cache.Store, l lane) (bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	obj, exists, err := store.GetByKey(key.storeKey())
	if err != nil || !exists {
		return false, err
	}
	if q.opts.sharding != nil && !q.shardAccepts(key.Kind, obj) {
		return false, nil
	}
	q.pushLocked(key, t, obj, l)
	return true, nil
}

// queueListed queues, in the low lane, an add of each of objs, a listing
// of handler kind's cache store, as store holds it now (a newer state may
// have been delivered since the listing; one deleted since is left out),
// and returns how many it queued. It queues them newest first (newestFirst):
// a slot taken over mid-change lists the objects changed while it was in
// no replica's hands among its oldest, and those changes wait least. A
// sharded loop drops an object of a slot it does not hold.
func (q *workQueue) queueListed(kind string, objs []interface{}, store cache.Store) int {
	newestFirst(objs)
	n := 0
	for _, obj := range objs {
		namespace, name, _, err := objectKey(obj)
		if err != nil {
			continue
		}
		if queued, _ := q.enqueueCached(Key{Kind: kind, Namespace: namespace, Name: name}, addEvent, store, lowLane); queued {
			n++
		}
	}
	return n
}

// newestFirst sorts objs by resourceVersion, the newest first, keeping the
// order of equal ones. The API server's resourceVersions compare as
// numbers (resourceversion.CompareResourceVersion); when one of objs has
// none, or one that does not compare, objs keep their order.
func newestFirst(objs []interface{}) {
	type versioned struct {
		rv  string
		obj interface{}
	}
	vs := make([]versioned, len(objs))
	for i, obj := range objs {
		m, err := meta.Accessor(obj)
		if err != nil {
			return
		}
		vs[i] = versioned{m.GetResourceVersion(), obj}
		if _, err := resourceversion.CompareResourceVersion(vs[i].rv, vs[i].rv); err != nil {
			return
		}
	}
	slices.SortStableFunc(vs, func(a, b versioned) int {
		c, _ := resourceversion.CompareResourceVersion(b.rv, a.rv)
		return c
	})
	for i := range vs {
		objs[i] = vs[i].obj
	}
}

// pushLocked merges an event of type t about object into key's entry and,
// during a Run, queues the entry. q.mu is held.
func (q *workQueue) pushLocked(key Key, t eventType, object interface{}, l lane) {
	e := q.entries.entryFor(key)
	if e.idle() {
		q.waiting++
		if e.has(flagProcessing) {
			e.set(flagMerged, true) // arrived in flight
		}
		if !e.has(flagDirty) {
			e.lane = l
		}
	} else {
		e.set(flagMerged, true)
	}
	e.lane = min(e.lane, l) // the higher: highLane is 0
	p := e.events()
	p.push(t, object)
	e.setEvents(p)
	if q.active != nil {
		q.active.ready.addLocked(e)
	}
}

// forgetFailure drops e's last failure, if any; the map goes once no key is
// in backoff, so that a burst of failures leaves nothing behind. q.mu is
// held.
func (q *workQueue) forgetFailure(e *entry) {
	delete(q.failures, e)
	if len(q.failures) == 0 {
		q.failures = nil
	}
}

// shardAccepts reports whether an event of kind about obj is this
// replica's to queue (sharder.accepts). Between Runs every event is kept:
// the next Run's calls decide.
func (q *workQueue) shardAccepts(kind string, obj interface{}) bool {
	s := q.sharder.Load()
	return s == nil || s.accepts(kind, obj)
}
