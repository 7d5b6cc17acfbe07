package kubehandler

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/util/workqueue"
)

// The results a handler call is counted under in
// kubehandler_handler_calls_total.
const (
	resultSuccess  = "success"  // returned nil
	resultError    = "error"    // returned an error, retried or handled by the ErrorHandler
	resultRequeue  = "requeue"  // returned RequeueAfter
	resultTerminal = "terminal" // returned a Terminal error, dropped
	resultPanic    = "panic"    // panicked, treated as an error
	resultTimeout  = "timeout"  // overran WithHandlerTimeout, treated as an error
)

type callResult uint8

const (
	callSuccess callResult = iota
	callError
	callRequeue
	callTerminal
	callPanic
	callTimeout
	numCallResults
)

var callResultNames = [numCallResults]string{resultSuccess, resultError, resultRequeue, resultTerminal, resultPanic, resultTimeout}

// metrics is the set of collectors of one registerer. Loops that share a
// registerer share them (see register), each writing its own "name" label.
type metrics struct {
	depth, unfinished, longestRunning *prometheus.GaugeVec
	adds, retries                     *prometheus.CounterVec
	latency, workDuration             *prometheus.HistogramVec
	calls                             *prometheus.CounterVec
	callDuration                      *prometheus.HistogramVec
	leader                            *prometheus.GaugeVec
	shardSlots                        *prometheus.GaugeVec
	shardHandovers                    *prometheus.CounterVec
	laneDepth                         *prometheus.GaugeVec     // by name and priority (lane)
	laneWait                          *prometheus.HistogramVec // by name and priority (lane)
}

// newMetrics creates the collectors and registers them on reg; when reg
// already has a collector of the same description (another loop registered
// it), that one is used.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	queueDurations := prometheus.ExponentialBuckets(10e-9, 10, 12)
	m := &metrics{
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Subsystem: "workqueue", Name: "depth",
			Help: "Current depth of the workqueue: keys waiting to be dispatched.",
		}, []string{"name"}),
		adds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "workqueue", Name: "adds_total",
			Help: "Total number of keys added to the workqueue.",
		}, []string{"name"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: "workqueue", Name: "queue_duration_seconds",
			Help:    "How long in seconds a key stays in the workqueue before it is dispatched.",
			Buckets: queueDurations,
		}, []string{"name"}),
		workDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Subsystem: "workqueue", Name: "work_duration_seconds",
			Help:    "How long in seconds processing a key from the workqueue takes.",
			Buckets: queueDurations,
		}, []string{"name"}),
		unfinished: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Subsystem: "workqueue", Name: "unfinished_work_seconds",
			Help: "How many seconds of work are in progress and not yet observed by work_duration. " +
				"Large values indicate stuck handlers.",
		}, []string{"name"}),
		longestRunning: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Subsystem: "workqueue", Name: "longest_running_processor_seconds",
			Help: "How many seconds the longest running handler call has been running.",
		}, []string{"name"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Subsystem: "workqueue", Name: "retries_total",
			Help: "Total number of delayed requeues (retries and RequeueAfter) handled by the workqueue.",
		}, []string{"name"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kubehandler", Subsystem: "handler", Name: "calls_total",
			Help: "Handler calls by queue name, handler, event type and result " +
				"(success, error, requeue, terminal, panic, timeout).",
		}, []string{"name", "handler", "event", "result"}),
		callDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "kubehandler", Subsystem: "handler", Name: "duration_seconds",
			Help:    "How long handler calls take, by queue name, handler and event type.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 18),
		}, []string{"name", "handler", "event"}),
		leader: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "kubehandler", Name: "leader",
			Help: "1 while the loop of this name holds its leader election lease, 0 otherwise.",
		}, []string{"name"}),
		shardSlots: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "kubehandler", Subsystem: "shard", Name: "slots",
			Help: "Shard slots the loop of this name holds and dispatches (WithSharding).",
		}, []string{"name"}),
		shardHandovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "kubehandler", Subsystem: "shard", Name: "handovers_total",
			Help: "Shard slots taken over (direction in) and given up, lost or handed over (out) by the loop of this name.",
		}, []string{"name", "direction"}),
		laneDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "kubehandler", Subsystem: "queue", Name: "depth",
			Help: "Keys queued for dispatch, by queue name and priority lane (high: live events; " +
				"low: initial list, resyncs, background enqueues).",
		}, []string{"name", "priority"}),
		laneWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "kubehandler", Subsystem: "queue", Name: "wait_seconds",
			Help:    "How long in seconds a key waited in the queue before it was dispatched, by queue name and the priority lane it was dispatched from.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 12),
		}, []string{"name", "priority"}),
	}
	var err error
	for _, c := range []**prometheus.GaugeVec{&m.depth, &m.unfinished, &m.longestRunning, &m.leader, &m.laneDepth, &m.shardSlots} {
		err = errors.Join(err, register(reg, c))
	}
	for _, c := range []**prometheus.CounterVec{&m.adds, &m.retries, &m.calls, &m.shardHandovers} {
		err = errors.Join(err, register(reg, c))
	}
	for _, c := range []**prometheus.HistogramVec{&m.latency, &m.workDuration, &m.callDuration, &m.laneWait} {
		err = errors.Join(err, register(reg, c))
	}
	return m, err
}

// register registers *c on reg, or replaces *c with the collector reg already
// has under the same description.
func register[C prometheus.Collector](reg prometheus.Registerer, c *C) error {
	err := reg.Register(*c)
	var already prometheus.AlreadyRegisteredError
	if errors.As(err, &already) {
		if existing, ok := already.ExistingCollector.(C); ok {
			*c = existing
			return nil
		}
	}
	return err
}

// queueMetrics adapts m to client-go's workqueue.MetricsProvider, so the
// queue reports the standard workqueue metrics under its name.
type queueMetrics struct{ m *metrics }

var _ workqueue.MetricsProvider = queueMetrics{}

func (p queueMetrics) NewDepthMetric(name string) workqueue.GaugeMetric {
	return p.m.depth.WithLabelValues(name)
}

func (p queueMetrics) NewAddsMetric(name string) workqueue.CounterMetric {
	return p.m.adds.WithLabelValues(name)
}

func (p queueMetrics) NewLatencyMetric(name string) workqueue.HistogramMetric {
	return p.m.latency.WithLabelValues(name)
}

func (p queueMetrics) NewWorkDurationMetric(name string) workqueue.HistogramMetric {
	return p.m.workDuration.WithLabelValues(name)
}

func (p queueMetrics) NewUnfinishedWorkSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.m.unfinished.WithLabelValues(name)
}

func (p queueMetrics) NewLongestRunningProcessorSecondsMetric(name string) workqueue.SettableGaugeMetric {
	return p.m.longestRunning.WithLabelValues(name)
}

func (p queueMetrics) NewRetriesMetric(name string) workqueue.CounterMetric {
	return p.m.retries.WithLabelValues(name)
}

// handlerMetrics are one handler's series, resolved once when the handler is
// registered so that a call costs an atomic add, not a label lookup.
type handlerMetrics struct {
	calls    [deleteEvent + 1][numCallResults]prometheus.Counter
	duration [deleteEvent + 1]prometheus.Observer
}

// forHandler returns the series of handler on the queue called name. A nil m
// (no WithMetrics) gives nil, which records nothing.
func (m *metrics) forHandler(name, handler string) *handlerMetrics {
	if m == nil {
		return nil
	}
	h := &handlerMetrics{}
	for t := addEvent; t <= deleteEvent; t++ {
		for r := range numCallResults {
			h.calls[t][r] = m.calls.WithLabelValues(name, handler, t.String(), callResultNames[r])
		}
		h.duration[t] = m.callDuration.WithLabelValues(name, handler, t.String())
	}
	return h
}

// observe records one call.
func (h *handlerMetrics) observe(t eventType, r callResult, seconds float64) {
	if h == nil {
		return
	}
	h.calls[t][r].Inc()
	h.duration[t].Observe(seconds)
}
