package kubehandler

import (
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// Option configures an EventLoop or a WorkQueue; pass options to NewEventLoop
// or NewWorkQueue. An option given a value it cannot use (a negative timeout,
// say) makes Run return an error; a nil value means "the default".
type Option func(*options)

// options holds the configuration, filled with defaults by newOptions.
type options struct {
	rateLimiter    workqueue.TypedRateLimiter[Key]
	errorHandler   ErrorHandler
	resyncEvents   bool
	noLanes        bool // WithPriorityLanes(false)
	clock          clock.WithTicker
	registerer     prometheus.Registerer
	logger         *logr.Logger
	handlerTimeout time.Duration
	drainTimeout   time.Duration
	// livenessTimeout is how long a call may run before Liveness fails.
	livenessTimeout time.Duration
	leaderElection  *LeaderElection
	sharding        *Sharding
	recorder        record.EventRecorder

	// errs are the mistakes found while applying options; Run reports them.
	errs []error
}

// Default backoff for retries: per-item exponential, without a global token
// bucket (promise 5), from 5ms doubling up to 5 minutes.
const (
	defaultBaseDelay = 5 * time.Millisecond
	defaultMaxDelay  = 5 * time.Minute
)

// lanesByDefault is whether a loop has priority lanes unless an option says
// otherwise; tests run the whole suite without them by setting it (see
// lanes_internal_test.go).
var lanesByDefault = true

func newOptions(opts []Option) options {
	o := options{noLanes: !lanesByDefault}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.rateLimiter == nil {
		o.rateLimiter = workqueue.NewTypedItemExponentialFailureRateLimiter[Key](defaultBaseDelay, defaultMaxDelay)
	}
	if o.errorHandler == nil {
		o.errorHandler = AlwaysRetry
	}
	if o.clock == nil {
		o.clock = clock.RealClock{}
	}
	if o.sharding != nil && o.leaderElection != nil {
		o.errs = append(o.errs, errors.New("kubehandler: WithSharding and WithLeaderElection exclude each other: "+
			"a ring shares the work between its replicas, leader election gives it all to one"))
	}
	return o
}

// WithRateLimiter sets the rate limiter used for retries of failed keys. It
// is never applied to informer events, which go to the queue directly
// (promise 5). The default is per-item exponential backoff from 5ms to 5
// minutes. Avoid limiters with a shared token bucket: one failing key would
// then delay the retries of all the others.
func WithRateLimiter(limiter workqueue.TypedRateLimiter[Key]) Option {
	return func(o *options) { o.rateLimiter = limiter }
}

// WithErrorHandler sets what happens when a handler fails. The default is
// AlwaysRetry.
func WithErrorHandler(handler ErrorHandler) Option {
	return func(o *options) { o.errorHandler = handler }
}

// WithResyncEvents delivers an informer's periodic resyncs (updates whose
// object has the same resourceVersion as before) as update events. By default
// they are dropped (promise 7). Delivered resyncs wait in the low lane
// (promise 9).
func WithResyncEvents() Option {
	return func(o *options) { o.resyncEvents = true }
}

// WithPriorityLanes turns the priority lanes (promise 9) on or off; they are
// on by default. With lanes, events of an informer's initial list, resyncs
// delivered by WithResyncEvents, EnqueueBackground, and what a new leader
// finds queued wait in a low lane, and live events are dispatched ahead of
// them; every 8th dispatch goes to the low lane while both have keys
// waiting, so it is never starved. WithPriorityLanes(false) makes the queue
// one FIFO, as client-go's is.
func WithPriorityLanes(enabled bool) Option {
	return func(o *options) { o.noLanes = !enabled }
}

// WithClock sets the clock used for delayed requeues and durations; tests of
// backoff and RequeueAfter pass a fake clock (k8s.io/utils/clock/testing).
func WithClock(c clock.WithTicker) Option {
	return func(o *options) { o.clock = c }
}

// WithMetrics registers the loop's Prometheus metrics on reg: the standard
// workqueue metrics (workqueue_depth, workqueue_adds_total, ...) labelled by
// the queue's name, and the handler metrics kubehandler_handler_calls_total and
// kubehandler_handler_duration_seconds. Loops sharing a registerer share the
// collectors. Without this option nothing is registered anywhere.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(o *options) { o.registerer = reg }
}

// WithLogger sets the logger of the loop and of its handler calls. By default
// it is the logger of Run's context (klog.FromContext).
func WithLogger(logger logr.Logger) Option {
	return func(o *options) { o.logger = &logger }
}

// WithDrainTimeout bounds how long Run waits, once it stops (its context is
// cancelled, an ErrorHandler says stop, or leadership is lost), for the
// handler calls in flight. When d runs out, Run returns an error wrapping
// ErrDrainTimeout that names the calls still running, and those calls go on
// in the background, their context cancelled; a later Run of the same loop
// leaves their keys alone until they return. Zero, the default, waits for
// as long as the calls take.
func WithDrainTimeout(d time.Duration) Option {
	return timeout("WithDrainTimeout", d, func(o *options) *time.Duration { return &o.drainTimeout })
}

// WithLivenessTimeout makes Liveness fail while a handler call has been
// running for longer than d: a worker stuck for good (a call that ignores its
// context and never returns) is worth a restart. Zero, the default, never
// fails for that.
func WithLivenessTimeout(d time.Duration) Option {
	return timeout("WithLivenessTimeout", d, func(o *options) *time.Duration { return &o.livenessTimeout })
}

// WithEventRecorder gives handler calls a recorder of Kubernetes Events:
// Eventf(ctx, ...) records an Event about the object of the call. See
// NewEventRecorder for one that writes to the API server.
func WithEventRecorder(r record.EventRecorder) Option {
	return func(o *options) { o.recorder = r }
}

// WithHandlerTimeout gives each handler call a context with a deadline d
// after it starts. A call that returns after its deadline has passed counts as
// failed (result "timeout" in the metrics, an error wrapping
// ErrHandlerTimeout) and is retried, whatever it returned. Zero, the default,
// means no deadline.
func WithHandlerTimeout(d time.Duration) Option {
	return timeout("WithHandlerTimeout", d, func(o *options) *time.Duration { return &o.handlerTimeout })
}

// timeout returns an option setting the duration field returns to d, or
// recording an error for Run if d is negative.
func timeout(option string, d time.Duration, field func(*options) *time.Duration) Option {
	return func(o *options) {
		if d < 0 {
			o.errs = append(o.errs, fmt.Errorf("kubehandler: %s(%s): the timeout must not be negative", option, d))
			return
		}
		*field(o) = d
	}
}
