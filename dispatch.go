package kubehandler

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/util/workqueue"
)

// ErrHandlerTimeout is wrapped by the error of a handler call that overran
// the deadline set with WithHandlerTimeout.
var ErrHandlerTimeout = errors.New("handler call overran its timeout")

// runner is one Run's dispatcher: the entry queue, client-go's delaying and
// rate-limiting queues around it, and the workers.
type runner struct {
	q      *workQueue
	base   *entryQueue
	queue  workqueue.TypedRateLimitingInterface[*entry] // base, with AddAfter and AddRateLimited
	logger logr.Logger

	// ctx is the parent of every handler call's context; it is cancelled
	// when Run's context is, when an ErrorHandler says stop, and when
	// leadership is lost.
	ctx    context.Context
	cancel context.CancelFunc

	workers sync.WaitGroup
	synced  atomic.Bool   // the caches have synced: workers may start
	leading atomic.Bool   // with leader election: this replica leads
	lease   *observedLock // with leader election; set before the runner is shared

	stopOnce sync.Once
	stopErr  error // set once, before cancel, by stop
}

func newRunner(ctx context.Context, q *workQueue, logger logr.Logger, threadiness int) *runner {
	base := newEntryQueue(&q.mu, q.opts.clock, threadiness, q.metrics, q.name,
		q.opts.livenessTimeout > 0 || q.opts.drainTimeout > 0)
	// client-go's delaying queue counts workqueue_retries_total when it has
	// a name and a provider; without WithMetrics it gets neither.
	delayingCfg := workqueue.TypedDelayingQueueConfig[*entry]{Logger: &logger, Clock: q.opts.clock, Queue: base}
	if q.metrics != nil {
		delayingCfg.Name, delayingCfg.MetricsProvider = q.name, queueMetrics{q.metrics}
	}
	r := &runner{
		q:    q,
		base: base,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig[*entry](keyLimiter{q.opts.rateLimiter},
			workqueue.TypedRateLimitingQueueConfig[*entry]{
				Clock:         q.opts.clock,
				DelayingQueue: workqueue.NewTypedDelayingQueueWithConfig(delayingCfg),
			}),
		logger: logger,
	}
	r.ctx, r.cancel = context.WithCancel(ctx)
	if le := q.opts.leaderElection; le != nil {
		r.lease = newObservedLock(le, q.opts.clock)
	}
	return r
}

// keyLimiter applies the user's rate limiter, which knows Keys, to entries.
type keyLimiter struct {
	limiter workqueue.TypedRateLimiter[Key]
}

func (l keyLimiter) When(e *entry) time.Duration { return l.limiter.When(e.key) }
func (l keyLimiter) Forget(e *entry)             { l.limiter.Forget(e.key) }
func (l keyLimiter) NumRequeues(e *entry) int    { return l.limiter.NumRequeues(e.key) }

// run dispatches with threadiness workers until the context is done, then
// stops them.
func (r *runner) run(threadiness int) error {
	r.startWorkers(threadiness)
	<-r.ctx.Done()
	return r.stopWorkers()
}

// startWorkers starts threadiness workers.
func (r *runner) startWorkers(threadiness int) {
	for i := range threadiness {
		r.workers.Go(func() { r.work(i) })
	}
	if r.base.series != nil {
		r.workers.Go(r.reportUnfinishedWork)
	}
}

// stopWorkers stops taking work (entries still queued keep their events),
// cancels the calls' context, and waits for the calls in flight to return:
// then no goroutine of the Run is left (promise 6). With WithDrainTimeout it
// waits that long at most, and returns an error naming the calls still
// running.
func (r *runner) stopWorkers() error {
	r.queue.ShutDown()
	r.cancel()
	d := r.q.opts.drainTimeout
	if d <= 0 {
		r.workers.Wait()
		return r.stopErr
	}
	drained := make(chan struct{})
	go func() {
		r.workers.Wait()
		close(drained)
	}()
	select {
	case <-drained:
		return r.stopErr
	case <-r.q.opts.clock.After(d):
		return errors.Join(r.stopErr, r.drainTimeoutError(d))
	}
}

// ErrDrainTimeout is wrapped by the error Run returns when handler calls were
// still running when the drain timeout set with WithDrainTimeout ran out.
var ErrDrainTimeout = errors.New("handler calls still running after the drain timeout")

// drainTimeoutError names the calls still running.
func (r *runner) drainTimeoutError(d time.Duration) error {
	r.q.mu.Lock()
	defer r.q.mu.Unlock()
	now := r.q.opts.clock.Now()
	var running []string
	for _, s := range r.base.slots {
		if s.entry != nil {
			running = append(running, fmt.Sprintf("%s (running for %s)", s.entry.key, now.Sub(s.started).Round(time.Millisecond)))
		}
	}
	return fmt.Errorf("kubehandler: queue %q: %w (%s): %s", r.q.name, ErrDrainTimeout, d, strings.Join(running, ", "))
}

// shutDown ends a runner that never started its workers.
func (r *runner) shutDown() {
	r.cancel()
	r.queue.ShutDown()
}

// stop ends the Run with err (ErrorActionStop, or a worker that crashed).
func (r *runner) stop(err error) {
	r.stopOnce.Do(func() {
		r.stopErr = err
		r.cancel()
	})
}

// unfinishedWorkPeriod is how often the unfinished-work metrics are updated,
// as in client-go's workqueue.
const unfinishedWorkPeriod = 500 * time.Millisecond

func (r *runner) reportUnfinishedWork() {
	t := r.q.opts.clock.NewTicker(unfinishedWorkPeriod)
	defer t.Stop()
	for {
		select {
		case <-t.C():
			r.base.updateUnfinishedWork()
		case <-r.ctx.Done():
			return
		}
	}
}

// work is worker i: it dispatches entries until the queue shuts down.
func (r *runner) work(i int) {
	defer func() {
		// Handler panics are recovered in call; reaching here is a bug in
		// the loop itself. Stop the Run rather than lose a worker silently.
		if p := recover(); p != nil {
			err := fmt.Errorf("kubehandler: queue %q: worker panicked: %v", r.q.name, p)
			r.logger.Error(err, "Stopping", "stacktrace", string(debug.Stack()))
			r.stop(err)
		}
	}()
	for {
		e, s, merged, shutdown := r.next(i)
		if shutdown {
			return
		}
		var o outcome
		if s.typ != noEvent {
			o = r.dispatch(e, s, merged)
		}
		r.finish(i, e, o)
	}
}

// next takes the next queued entry and pops the event it dispatches now,
// under one lock. s is empty when the entry has nothing to dispatch (a
// delayed requeue of an entry whose events were handled since). When a
// second stage (the add after a delete) is left, the entry is marked to be
// queued again once this call is done.
func (r *runner) next(i int) (e *entry, s stage, merged, shutdown bool) {
	q := r.q
	q.mu.Lock()
	defer q.mu.Unlock()
	e, shutdown = r.base.getLocked()
	if shutdown {
		return nil, stage{}, false, true
	}
	merged, e.merged = e.merged, false
	if !e.events.empty() {
		var more bool
		s, more = e.events.pop()
		if more {
			r.base.addLocked(e)
		} else {
			q.waiting--
		}
	}
	r.base.start(i, e)
	return e, s, merged, false
}

// outcome is what a call's result asks of the queue.
type outcome struct {
	putBack  bool  // return the event to the entry, in front of newer ones
	ev       stage // the event, when putBack
	release  bool  // a delete was handled: retire the entry if idle
	limited  bool  // requeue through the rate limiter
	after    time.Duration
	requeued bool // requeue after after
}

// finish applies o and marks e done, under one lock, then schedules the
// requeue o asks for.
func (r *runner) finish(i int, e *entry, o outcome) {
	q := r.q
	q.mu.Lock()
	if o.putBack {
		if e.events.empty() {
			q.waiting++
		}
		e.events.unpop(o.ev)
	}
	if o.release && e.events.empty() && !e.removed {
		// Retire the entry: a later event for the key makes a new one, and
		// a delayed requeue of this one that still fires finds nothing.
		delete(q.entries, e.key)
		e.removed = true
	}
	r.base.finish(i)
	if q.active != r {
		// This call outlived its Run (the drain timeout ran out): hand the
		// entry to the Run in progress, if any, which left it alone while
		// it was processing here.
		e.dirty = false
		if q.active != nil && !e.events.empty() {
			q.active.base.addLocked(e)
		}
	}
	q.mu.Unlock()
	switch {
	case o.limited:
		r.queue.AddRateLimited(e)
	case o.requeued:
		r.queue.AddAfter(e, o.after)
	}
}

// dispatch calls the handler of event s of e and returns what to do next.
// merged says whether events were merged into e since its last call.
func (r *runner) dispatch(e *entry, s stage, merged bool) outcome {
	k := r.q.kind(e.key.Kind)
	var fn WorkQueueHandler
	var metrics *handlerMetrics
	if k != nil {
		fn, metrics = k.handlers[s.typ], k.metrics
		if merged && r.superseded(k, e, s) {
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
		r.logger.V(4).Info("No handler registered; event dropped", "key", e.key, "event", s.typ)
		return outcome{release: s.typ == deleteEvent}
	}
	ctx := &callContext{runner: r, entry: e, obj: s.obj, typ: s.typ, retries: e.retries}
	var start time.Time
	if metrics != nil {
		start = r.q.opts.clock.Now()
	}
	err := r.call(ctx, fn, e.key)
	o, result := r.settle(ctx, e, s, err)
	if metrics != nil {
		metrics.observe(s.typ, result, r.q.opts.clock.Since(start).Seconds())
	}
	return o
}

// maxDefers bounds how many dispatches of one entry in a row are deferred as
// superseded, so that a key updated faster than the informer delivers is
// still handled now and then.
const maxDefers = 8

// supersededRecheck is when a deferred entry is dispatched anyway if the
// newer event it waits for has not arrived by then (the informer stopped,
// say): with no event merged since, it is not checked again.
const supersededRecheck = time.Second

// superseded reports whether the add or update s of e is already out of date:
// the handler's informer has stored a newer version of the object, or none,
// and so has still to deliver the event that brings it here (an informer
// updates its store before it notifies its handlers, and notifies every
// handler of every change). Calling the handler now would only be followed
// by another call; deferring to that one costs no latency for the newest
// state. It is checked only for entries whose events were merged since their
// last call (a storm), where it pays for the store lookup, at most maxDefers
// times in a row.
func (r *runner) superseded(k *kind, e *entry, s stage) bool {
	if k.store == nil || s.typ == deleteEvent || e.defers >= maxDefers {
		return false
	}
	mine, err := meta.Accessor(s.obj)
	if err != nil || mine.GetResourceVersion() == "" {
		return false
	}
	current, exists, err := k.store.GetByKey(e.key.storeKey())
	if err != nil {
		return false
	}
	if !exists {
		return true // a delete is on its way
	}
	theirs, err := meta.Accessor(current)
	return err == nil && theirs.GetResourceVersion() != mine.GetResourceVersion()
}

// forget resets e's retries and its backoff in the rate limiter. A key that
// never failed has nothing in the limiter, which spares the common case the
// limiter's lock.
func (r *runner) forget(e *entry) {
	if e.retries > 0 {
		r.queue.Forget(e)
		e.retries = 0
	}
}

// call runs one handler call, turning a panic or an overrun deadline into an
// error (promise 4).
func (r *runner) call(ctx context.Context, fn WorkQueueHandler, key Key) (err error) {
	if logrContextKey == nil {
		// logr's context key was not found (see handler.go): attach the
		// call's logger the ordinary way.
		ctx = logr.NewContext(ctx, ctx.(*callContext).log())
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
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{value: p, stack: debug.Stack()}
		}
	}()
	return fn(ctx, key.Namespace, key.Name)
}

// timeoutError is the error of a call that overran WithHandlerTimeout.
type timeoutError struct {
	timeout time.Duration
	err     error // what the handler returned, maybe nil
}

func (e *timeoutError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("%v (%s)", ErrHandlerTimeout, e.timeout)
	}
	return fmt.Sprintf("%v (%s): %v", ErrHandlerTimeout, e.timeout, e.err)
}

func (e *timeoutError) Unwrap() []error { return []error{ErrHandlerTimeout, e.err} }

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
	switch action := r.q.opts.errorHandler(e.key, retries, err); action {
	case ErrorActionIgnore:
		r.forget(e)
		utilruntime.HandleErrorWithContext(ctx, err, "Handler failed; error ignored", "retries", retries)
		return done, result
	case ErrorActionStop:
		utilruntime.HandleErrorWithContext(ctx, err, "Handler failed; stopping", "retries", retries)
		r.stop(fmt.Errorf("kubehandler: queue %q: %s failed after %d retries: %w", r.q.name, e.key, retries, err))
		return outcome{}, result
	default:
		if action != ErrorActionRetry {
			r.logger.Error(nil, "Unknown ErrorAction; retrying", "action", action)
		}
		if result != callPanic {
			utilruntime.HandleErrorWithContext(ctx, err, "Handler failed; will retry", "retries", retries)
		}
		e.retries++
		return outcome{putBack: true, ev: s, limited: true}, result
	}
}
