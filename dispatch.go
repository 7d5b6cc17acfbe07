package kubehandler

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/go-logr/logr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/util/workqueue"
)

// ErrHandlerTimeout is wrapped by the error of a handler call that overran
// the deadline set with WithHandlerTimeout.
var ErrHandlerTimeout = errors.New("handler call overran its timeout")

// runner is one Run's dispatcher: a client-go rate-limiting workqueue of keys
// and the workers that take keys from it.
type runner struct {
	q      *workQueue
	queue  workqueue.TypedRateLimitingInterface[Key]
	logger logr.Logger

	// ctx is the parent of every handler call's context; it is cancelled
	// when Run's context is, or when an ErrorHandler says stop.
	ctx    context.Context
	cancel context.CancelFunc

	stopOnce sync.Once
	stopErr  error // set once, before cancel, by stop
}

func newRunner(ctx context.Context, q *workQueue, logger logr.Logger) *runner {
	cfg := workqueue.TypedRateLimitingQueueConfig[Key]{Name: q.name, Clock: q.opts.clock}
	if q.metrics != nil {
		cfg.MetricsProvider = queueMetrics{q.metrics}
	}
	r := &runner{
		q:      q,
		queue:  workqueue.NewTypedRateLimitingQueueWithConfig(q.opts.rateLimiter, cfg),
		logger: logger,
	}
	r.ctx, r.cancel = context.WithCancel(ctx)
	return r
}

// run starts threadiness workers and returns once the context is done and
// every worker has returned: no handler call outlives it (promise 6).
func (r *runner) run(threadiness int) error {
	var wg sync.WaitGroup
	for range threadiness {
		wg.Go(r.work)
	}
	<-r.ctx.Done()
	// Stop taking work: workers drain what Get still hands out without
	// dispatching it (its events stay pending), and return.
	r.queue.ShutDown()
	wg.Wait()
	r.cancel()
	return r.stopErr
}

// stop ends the Run with err (ErrorActionStop, or a worker that crashed).
func (r *runner) stop(err error) {
	r.stopOnce.Do(func() {
		r.stopErr = err
		r.cancel()
	})
}

// work is a worker: it dispatches keys until the queue shuts down.
func (r *runner) work() {
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
		key, shutdown := r.queue.Get()
		if shutdown {
			return
		}
		r.process(key)
	}
}

// process dispatches the pending event of key, then marks it Done so that
// the workqueue may hand it out again.
func (r *runner) process(key Key) {
	defer r.queue.Done(key)
	if r.ctx.Err() != nil {
		return // stopping: the key's events stay pending for the next Run
	}
	s, ok := r.q.take(key)
	if !ok {
		return // a delayed requeue of a key whose events were already handled
	}
	fn, metrics := r.q.handler(key.Kind, s.typ)
	if fn == nil {
		r.queue.Forget(key)
		r.logger.V(4).Info("No handler registered; event dropped", "key", key, "event", s.typ)
		return
	}
	ev := Event{Type: s.typ.String(), Key: key, Object: s.obj, Retries: r.queue.NumRequeues(key)}
	ctx := newCallContext(r.ctx, r.logger, ev)
	var start time.Time
	if metrics != nil {
		start = r.q.opts.clock.Now()
	}
	err := r.call(ctx, fn, key)
	result := r.settle(ctx, key, s, ev.Retries, err)
	if metrics != nil {
		metrics.observe(s.typ, result, r.q.opts.clock.Since(start).Seconds())
	}
}

// call runs one handler call, turning a panic or an overrun deadline into an
// error (promise 4).
func (r *runner) call(ctx context.Context, fn WorkQueueHandler, key Key) (err error) {
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

// settle acts on the outcome of a call of event s of key: forget the key,
// requeue it, retry it or stop the loop, and returns the result to count.
func (r *runner) settle(ctx context.Context, key Key, s stage, retries int, err error) callResult {
	if err == nil {
		r.queue.Forget(key)
		return callSuccess
	}
	var requeue *requeueAfterError
	if errors.As(err, &requeue) {
		r.queue.Forget(key)
		r.q.putBack(key, s)
		r.queue.AddAfter(key, requeue.after)
		return callRequeue
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
		r.q.putBack(key, s)
		return result
	}
	if IsTerminal(err) {
		r.queue.Forget(key)
		utilruntime.HandleErrorWithContext(ctx, err, "Handler failed with a terminal error; event dropped")
		return callTerminal
	}
	switch action := r.q.opts.errorHandler(key, retries, err); action {
	case ErrorActionIgnore:
		r.queue.Forget(key)
		utilruntime.HandleErrorWithContext(ctx, err, "Handler failed; error ignored", "retries", retries)
	case ErrorActionStop:
		utilruntime.HandleErrorWithContext(ctx, err, "Handler failed; stopping", "retries", retries)
		r.stop(fmt.Errorf("kubehandler: queue %q: %s failed after %d retries: %w", r.q.name, key, retries, err))
	default:
		if action != ErrorActionRetry {
			r.logger.Error(nil, "Unknown ErrorAction; retrying", "action", action)
		}
		r.q.putBack(key, s)
		r.queue.AddRateLimited(key)
		if result != callPanic {
			utilruntime.HandleErrorWithContext(ctx, err, "Handler failed; will retry", "retries", retries)
		}
	}
	return result
}
