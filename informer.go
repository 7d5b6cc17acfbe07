package kubehandler

import (
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/tools/cache"
)

// informerHandler is where an event enters the loop: the event handler that
// an EventLoop adds to one handler's informer for the time of a Run. Each
// callback hands the event to the queue (workQueue.enqueue), which merges it
// into its key's entry and queues the entry for the workers.
type informerHandler struct {
	q       *workQueue
	kind    string // the handler's name: the Kind of its Keys
	resyncs bool   // deliver resyncs (WithResyncEvents)
}

// OnAdd queues an add; objects of the informer's initial list come this way
// too, and wait in the low lane (promise 9).
func (h *informerHandler) OnAdd(obj interface{}, isInInitialList bool) {
	l := highLane
	if isInInitialList {
		l = lowLane
	}
	h.q.enqueue(h.kind, addEvent, obj, l)
}

// listed queues a ShardedInformer slot's initial list in one piece, newest
// first (initialLister), in the low lane as OnAdd would have.
func (h *informerHandler) listed(objs []interface{}, store cache.Store) {
	h.q.queueListed(h.kind, objs, store)
}

// OnUpdate queues an update, unless it is a resync that is to be dropped
// (promise 7); a resync that is delivered waits in the low lane (promise 9).
func (h *informerHandler) OnUpdate(oldObj, newObj interface{}) {
	l := highLane
	if isResync(oldObj, newObj) {
		if !h.resyncs {
			return
		}
		l = lowLane
	}
	h.q.enqueue(h.kind, updateEvent, newObj, l)
}

// OnDelete queues a delete; obj may be a cache.DeletedFinalStateUnknown
// tombstone, which objectKey unwraps (promise 4).
func (h *informerHandler) OnDelete(obj interface{}) {
	h.q.enqueue(h.kind, deleteEvent, obj, highLane)
}

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
