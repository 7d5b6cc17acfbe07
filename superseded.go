package kubehandler

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
)

// The superseded deferral: in a storm of updates to one object, a worker
// that takes an entry whose event is already out of date (the informer's
// store holds a newer version) puts the event back instead of calling the
// handler, and waits for the newer event, which the informer is about to
// deliver and which merges with it. Calling the handler now would only be
// followed by another call; deferring costs no latency for the newest state.
// Two bounds keep it from delaying a key for long:
//
//   - the deferred entry is requeued after supersededRecheck, so that it is
//     dispatched even if the newer event never comes (the informer stopped);
//   - at most maxDefers dispatches of one entry in a row are deferred, so a
//     key updated faster than the informer delivers is still handled now
//     and then.
//
// dispatch (worker.go) asks superseded, and counts the deferral in
// entry.defers.

// maxDefers bounds how many dispatches of one entry in a row are deferred as
// superseded.
const maxDefers = 8

// supersededRecheck is when a deferred entry is dispatched anyway if the
// newer event it waits for has not arrived by then: with no event merged
// since, it is not checked again. The delaying queue counts the recheck in
// workqueue_retries_total, as it counts every delayed requeue.
const supersededRecheck = time.Second

// superseded reports whether the add or update s of e is already out of date:
// the handler's informer has stored a newer version of the object, or none,
// and so has still to deliver the event that brings it here (an informer
// updates its store before it notifies its handlers, and notifies every
// handler of every change). It is checked only for entries whose events were
// merged since their last call (a storm), where it pays for the store
// lookup, at most maxDefers times in a row.
func superseded(k *kindHandlers, e *entry, s stage) bool {
	if k.store == nil || s.typ == deleteEvent || e.defers >= maxDefers {
		return false
	}
	mine, err := meta.Accessor(s.obj)
	if err != nil || mine.GetResourceVersion() == "" {
		return false
	}
	current, exists, err := k.store.GetByKey(e.key().storeKey())
	if err != nil {
		return false
	}
	if !exists {
		return true // a delete is on its way
	}
	theirs, err := meta.Accessor(current)
	return err == nil && theirs.GetResourceVersion() != mine.GetResourceVersion()
}
