package kubehandler

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
)

// The worker loop, in the order its steps run for one entry:
//
//	get       take the next entry from the entry queue and pop the event it
//	          dispatches now (with leader election, only while the Lease is
//	          held)
//	dispatch  find the handler; defer a superseded event (superseded.go)
//	call      run the handler, panics and overruns turned into errors
//	settle    decide what the result asks: forget, requeue, retry, stop
//	done      put a failed event back, retire a deleted key's entry, mark
//	          the entry done (queued again if events arrived meanwhile), and
//	          requeue it through client-go's queues if asked
//
// As with client-go's queue: Get, then Done (here get and done, each under
// one lock), Forget on success, AddAfter with the rate limiter's delay on
// error (AddRateLimited, with the delay recorded), AddAfter for
// RequeueAfter.

// worker is worker i: it dispatches entries until the queue shuts down. It
// returns a *panicError only if the loop itself panicked (see crashed).
func (r *runner) worker(i int) (err error) {
	defer recoverPanic(&err)
	for {
		e, s, merged, shutdown := r.get(i)
		if shutdown {
			if r.lease != nil {
				// If get refused because the term lapsed, end it now
				// (stepDown) rather than when the deadline's timer runs.
				r.lease.Check()
			}
			return nil
		}
		var o outcome
		if s.typ != noEvent {
			o = r.dispatch(e, s, merged)
		}
		r.done(i, e, o)
	}
}

// get takes the next queued entry for worker i and pops the event it
// dispatches now, under one lock. s is empty when the entry has nothing to
// dispatch (a delayed requeue of an entry whose events were handled since).
// When a second stage (the add after a delete) is left, the entry is marked
// to be queued again once this call is done. merged says whether events were
// merged into the entry since its last call.
func (r *runner) get(i int) (e *entry, s stage, merged, shutdown bool) {
	q := r.q
	q.mu.Lock()
	defer q.mu.Unlock()
	e, shutdown = r.ready.getLocked()
	if shutdown {
		return nil, stage{}, false, true
	}
	if r.lease != nil && !r.lease.Held() {
		// With leader election, a call starts only within the term: after
		// a freeze, the renew deadline may have passed before anything
		// else ran. Leave the entry as it is for the next Run; this one
		// is over.
		e.set(flagProcessing, false)
		r.ready.shutDownLocked()
		return nil, stage{}, false, true
	}
	merged = e.has(flagMerged)
	e.set(flagMerged, false)
	if !e.idle() {
		var more bool
		p := e.events()
		s, more = p.pop()
		e.setEvents(p)
		if more {
			r.ready.addLocked(e)
		} else {
			q.waiting--
		}
	}
	r.ready.startCall(i, e, s.typ, e.lane)
	return e, s, merged, false
}

// dispatch calls the handler of event s of e and returns what to do next.
func (r *runner) dispatch(e *entry, s stage, merged bool) outcome {
	k := r.q.handlersOf(e.kind.String())
	var fn WorkQueueHandler
	var metrics *handlerMetrics
	if k != nil {
		fn, metrics = k.handlers[s.typ], k.metrics
		if merged && superseded(k, e, s) {
			// Put the event back; the newer one on its way merges with it
			// and queues the entry. The delayed requeue is a safety net for
			// an informer stopped before it delivers.
			e.defers++
			return outcome{putBack: true, ev: s, requeued: true, after: supersededRecheck}
		}
	}
	e.defers = 0
	if fn == nil {
		r.forget(e)
		r.logger.V(4).Info("No handler registered; event dropped", "key", e.key(), "event", s.typ)
		return outcome{release: s.typ == deleteEvent}
	}
	ctx := &callContext{runner: r, entry: e, obj: s.obj, typ: s.typ, retries: e.retries}
	var hctx context.Context = ctx
	if r.shard != nil {
		// In a ring, a call starts only under its slot's term, and its
		// context ends with the term (sharding.go).
		slot, parent, ok := r.shard.begin(e.kind.String(), s.obj)
		if !ok {
			r.forget(e)
			r.logger.V(4).Info("Not in a slot this replica holds; event dropped", "key", e.key(), "event", s.typ)
			return outcome{release: true}
		}
		defer r.shard.end(slot)
		if parent != nil {
			hctx = &slotContext{callContext: ctx, parent: parent}
		}
	}
	var start time.Time
	if metrics != nil {
		start = r.q.opts.clock.Now()
	}
	err := r.call(hctx, ctx, fn, e.key())
	o, result := r.settle(ctx, e, s, err)
	if metrics != nil {
		metrics.observe(s.typ, result, r.q.opts.clock.Since(start).Seconds())
	}
	return o
}

// call runs one handler call with context ctx (c, or c within its shard
// slot), turning a panic or an overrun deadline into an
// error (promise 4).
func (r *runner) call(ctx context.Context, c *callContext, fn WorkQueueHandler, key Key) (err error) {
	if logrContextKey == nil {
		// logr's context key was not found (see callcontext.go): attach the
		// call's logger the ordinary way.
		ctx = logr.NewContext(ctx, c.log())
	}
	if timeout := r.q.opts.handlerTimeout; timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
		defer func() {
			var p *panicError
			if errors.Is(ctx.Err(), context.DeadlineExceeded) && r.ctx.Err() == nil && !errors.As(err, &p) {
				err = &timeoutError{timeout: timeout, err: err}
			}
		}()
	}
	defer recoverPanic(&err)
	return fn(ctx, key.Namespace, key.Name)
}

// settle decides, from the outcome of a call of event s of e, whether to
// forget the key, requeue it, retry it or stop the loop, and returns that and
// the result to count.
func (r *runner) settle(ctx context.Context, e *entry, s stage, err error) (outcome, callResult) {
	done := outcome{release: s.typ == deleteEvent}
	if err == nil || IsSkipStep(err) || IsCancelChain(err) {
		r.forget(e)
		return done, callSuccess
	}
	var requeue *requeueAfterError
	if errors.As(err, &requeue) {
		r.forget(e)
		return outcome{putBack: true, ev: s, requeued: true, after: requeue.after}, callRequeue
	}

	result := callError
	var p *panicError
	var t *timeoutError
	switch {
	case errors.As(err, &p):
		result = callPanic
		utilruntime.HandleErrorWithContext(ctx, err, "Handler panicked", "stacktrace", string(p.stack))
	case errors.As(err, &t):
		result = callTimeout
	}

	if r.ctx.Err() != nil {
		// Run is stopping and the call most likely failed because of it:
		// keep the event for the next Run, whatever the ErrorHandler says.
		return outcome{putBack: true, ev: s}, result
	}
	if IsTerminal(err) {
		r.forget(e)
		utilruntime.HandleErrorWithContext(ctx, err, "Handler failed with a terminal error; event dropped")
		return done, callTerminal
	}
	retries := int(e.retries)
	switch action := r.q.opts.errorHandler(e.key(), retries, err); action {
	case ErrorActionIgnore:
		r.forget(e)
		utilruntime.HandleErrorWithContext(ctx, err, "Handler failed; error ignored", "retries", retries)
		return done, result
	case ErrorActionStop:
		utilruntime.HandleErrorWithContext(ctx, err, "Handler failed; stopping", "retries", retries)
		r.stopWith(fmt.Errorf("kubehandler: queue %q: %s failed after %d retries: %w", r.q.name, e.key(), retries, err))
		return outcome{}, result
	default:
		if action != ErrorActionRetry {
			r.logger.Error(nil, "Unknown ErrorAction; retrying", "action", action)
		}
		if result != callPanic {
			utilruntime.HandleErrorWithContext(ctx, err, "Handler failed; will retry", "retries", retries)
		}
		e.retries++
		// The rate limiter's delay is asked here, as AddRateLimited would
		// ask it, so that the failure can say when the retry is due.
		after := r.q.opts.rateLimiter.When(e.key())
		f := &failure{err: truncate(err.Error(), maxErrorText), typ: s.typ, retries: e.retries,
			due: r.q.opts.clock.Now().Add(after)}
		return outcome{putBack: true, ev: s, limited: true, after: after, failure: f}, result
	}
}

// forget resets e's retries and its backoff in the rate limiter, and drops
// its last failure. A key that never failed has nothing in the limiter and
// no failure, which spares the common case both locks.
func (r *runner) forget(e *entry) {
	if e.retries > 0 {
		r.delays.Forget(e)
		e.retries = 0
		r.q.mu.Lock()
		r.q.forgetFailure(e)
		r.q.mu.Unlock()
	}
}

// outcome is what a call's result asks of the queue.
type outcome struct {
	putBack  bool     // return the event to the entry, in front of newer ones
	ev       stage    // the event, when putBack
	release  bool     // a delete was handled: retire the entry if idle
	limited  bool     // a retry: requeue after after, the rate limiter's delay
	failure  *failure // when limited: the key's failure, for DebugHandler
	after    time.Duration
	requeued bool // requeue after after
}

// done applies o and marks worker i's entry e done, under one lock, then
// schedules the requeue o asks for.
func (r *runner) done(i int, e *entry, o outcome) {
	q := r.q
	q.mu.Lock()
	if o.putBack {
		// The event keeps its lane; newer events that arrived meanwhile
		// may have raised the entry's.
		callLane := r.ready.slots[i].lane
		if e.idle() {
			q.waiting++
			e.lane = callLane
		}
		e.lane = min(e.lane, callLane) // the higher: highLane is 0
		p := e.events()
		p.unpop(o.ev)
		e.setEvents(p)
		if o.limited {
			if q.failures == nil {
				q.failures = make(map[*entry]*failure)
			}
			q.failures[e] = o.failure
		}
	}
	if e.idle() && !e.has(flagRemoved) && (o.release || retireIdle && !e.has(flagDirty) && e.retries == 0) {
		// Retire the entry: a delete was handled, or the key has nothing
		// left to do (see workQueue). A later event for the key makes a new
		// one, and a delayed requeue of this one that still fires finds
		// nothing.
		q.entries.remove(e)
		q.forgetFailure(e)
		e.set(flagRemoved, true)
	}
	r.ready.endCall(i)
	if r.phase == phaseEnded {
		// This call outlived its Run (the drain timeout ran out): hand the
		// entry to the Run in progress, if any, which left it alone while
		// it was processing here. (A shut-down queue ignores it: the next
		// Run's claim queues it.)
		e.set(flagDirty, false)
		if q.active != nil && !e.idle() {
			q.active.ready.addLocked(e)
		}
	}
	q.mu.Unlock()
	if o.limited || o.requeued {
		r.delays.AddAfter(e, o.after)
	}
}

// maxErrorText bounds the error text kept of a key's last failure.
const maxErrorText = 1024

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut
// with an ellipsis.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}
