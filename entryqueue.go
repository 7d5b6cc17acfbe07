package kubehandler

import (
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// entry is one key's place in the queue: its pending events, and the flags
// of the entry queue that stand for client-go's dirty and processing sets.
// The workQueue's map holds the key's entry from its first event until a
// delete of the key has been handled and nothing is pending (then removed).
type entry struct {
	key Key

	// Guarded by workQueue.mu:
	events     pendingEvents
	removed    bool // no longer the key's entry
	dirty      bool // needs processing (client-go's dirty set)
	processing bool // a worker has it (client-go's processing set)
	merged     bool // an event was merged into pending ones or arrived in flight since the last call
	// failure is the last failed call, from its retry's scheduling until
	// the key stops failing (forget): what DebugHandler shows of keys in
	// backoff. Written on the failure path only; nil for keys that never
	// failed.
	failure *failure

	// Only the worker holding the entry reads or writes these:
	retries int32 // failures retried since the key last succeeded
	defers  int32 // dispatches deferred in a row as superseded (see superseded.go)
}

// failure is what DebugHandler shows of a key waiting for a retry.
type failure struct {
	err     string    // the error's text, cut to maxErrorText
	typ     eventType // the event that failed
	retries int32     // the retry's Event.Retries: failures in a row
	due     time.Time // when the rate limiter lets the retry be queued
}

// entryQueue is the base layer of each Run's workqueue. It runs client-go's
// queue algorithm (a FIFO; a dirty set of items that need processing; a
// processing set; an item added while processing is queued again when Done)
// with the two sets kept as flags on the entries, under the lock that also
// guards their pending events. An informer event therefore costs one lock and
// one map lookup, and a dispatch two locks and none. client-go's delaying and
// rate-limiting queues wrap it (it implements workqueue.TypedInterface) for
// retries and RequeueAfter.
//
// It reports the standard workqueue metrics, as client-go's queue does: the
// time each entry was added is kept in a map only with metrics or a
// DebugHandler, and when each call started in the workers' slots, which also
// serve Liveness, the drain timeout's report and DebugHandler. What the workers hold is there and nowhere else:
// slots[i] is worker i's entry, under the same lock as the entries' flags.
type entryQueue struct {
	mu    *sync.Mutex // the workQueue's mu
	cond  *sync.Cond
	clock clock.Clock

	fifo         []*entry
	head         int // fifo[head:] are queued
	shuttingDown bool

	// slots[i] is what worker i is processing, and since when (metrics,
	// Liveness, the drain timeout's report, DebugHandler); nil when idle.
	slots []slot

	series *queueSeries // nil without WithMetrics
	timed  bool         // record when each call starts (metrics, liveness, drain, DebugHandler)
	// addedAt holds when queued entries were added, for the latency metric
	// and DebugHandler's oldest waiting key; kept only with metrics (as
	// client-go does) or a DebugHandler, nil otherwise.
	addedAt map[*entry]time.Time
}

// slot is one worker's current call.
type slot struct {
	entry   *entry
	typ     eventType // the event being dispatched (DebugHandler)
	started time.Time // when timed
}

// queueSeries are one queue's standard workqueue metrics.
type queueSeries struct {
	depth                      workqueue.GaugeMetric
	adds                       workqueue.CounterMetric
	latency, workDuration      workqueue.HistogramMetric
	unfinished, longestRunning workqueue.SettableGaugeMetric
}

var _ workqueue.TypedInterface[*entry] = (*entryQueue)(nil)

func newEntryQueue(mu *sync.Mutex, c clock.Clock, workers int, m *metrics, name string, timed bool) *entryQueue {
	eq := &entryQueue{mu: mu, cond: sync.NewCond(mu), clock: c, slots: make([]slot, workers), timed: timed || m != nil}
	if m != nil {
		eq.addedAt = make(map[*entry]time.Time)
		p := queueMetrics{m}
		eq.series = &queueSeries{
			depth:          p.NewDepthMetric(name),
			adds:           p.NewAddsMetric(name),
			latency:        p.NewLatencyMetric(name),
			workDuration:   p.NewWorkDurationMetric(name),
			unfinished:     p.NewUnfinishedWorkSecondsMetric(name),
			longestRunning: p.NewLongestRunningProcessorSecondsMetric(name),
		}
	}
	return eq
}

// recordTimesLocked makes the queue record, from now on, when entries are
// added and when calls start, as it does with metrics: DebugHandler shows
// them. mu must be held, or the queue not yet shared.
func (eq *entryQueue) recordTimesLocked() {
	eq.timed = true
	if eq.addedAt == nil {
		eq.addedAt = make(map[*entry]time.Time)
	}
}

// Add marks e as needing processing. mu must not be held.
func (eq *entryQueue) Add(e *entry) {
	eq.mu.Lock()
	defer eq.mu.Unlock()
	eq.addLocked(e)
}

// addLocked is Add with mu held.
func (eq *entryQueue) addLocked(e *entry) {
	if eq.shuttingDown || e.removed || e.dirty {
		return
	}
	e.dirty = true
	if eq.addedAt != nil { // with metrics or a DebugHandler
		if eq.series != nil {
			eq.series.adds.Inc()
			eq.series.depth.Inc()
		}
		if _, ok := eq.addedAt[e]; !ok {
			eq.addedAt[e] = eq.clock.Now()
		}
	}
	if e.processing {
		return // queued again when Done
	}
	eq.fifo = append(eq.fifo, e)
	eq.cond.Signal()
}

// Len returns the number of entries queued.
func (eq *entryQueue) Len() int {
	eq.mu.Lock()
	defer eq.mu.Unlock()
	return len(eq.fifo) - eq.head
}

// Get blocks until an entry is queued and returns it, marked processing; it
// returns shutdown once the queue is shutting down. Workers use getLocked
// through runner.get, which also pops the entry's event under the same lock
// and records the entry in the worker's slot (startCall).
func (eq *entryQueue) Get() (e *entry, shutdown bool) {
	eq.mu.Lock()
	defer eq.mu.Unlock()
	return eq.getLocked()
}

// getLocked is Get with mu held.
func (eq *entryQueue) getLocked() (*entry, bool) {
	for eq.head == len(eq.fifo) && !eq.shuttingDown {
		eq.cond.Wait()
	}
	if eq.shuttingDown {
		// Stop taking work at once; queued entries keep their events
		// for the next Run.
		return nil, true
	}
	e := eq.fifo[eq.head]
	eq.fifo[eq.head] = nil
	eq.head++
	if eq.head == len(eq.fifo) {
		eq.fifo, eq.head = eq.fifo[:0], 0
	} else if eq.head >= 1024 && eq.head*2 >= len(eq.fifo) {
		// Reclaim the consumed front of a long queue.
		n := copy(eq.fifo, eq.fifo[eq.head:])
		clear(eq.fifo[n:])
		eq.fifo, eq.head = eq.fifo[:n], 0
	}
	e.processing = true
	e.dirty = false
	if eq.addedAt != nil { // with metrics or a DebugHandler
		added, ok := eq.addedAt[e]
		if ok {
			delete(eq.addedAt, e)
		}
		if eq.series != nil {
			eq.series.depth.Dec()
			if ok {
				eq.series.latency.Observe(eq.clock.Since(added).Seconds())
			}
		}
	}
	return e, false
}

// startCall records that worker i is processing event typ of e, which it
// got from getLocked. mu must be held.
func (eq *entryQueue) startCall(i int, e *entry, typ eventType) {
	s := slot{entry: e, typ: typ}
	if eq.timed {
		s.started = eq.clock.Now()
	}
	eq.slots[i] = s
}

// endCall empties worker i's slot and marks its entry done (doneLocked). mu
// must be held.
func (eq *entryQueue) endCall(i int) {
	e, started := eq.slots[i].entry, eq.slots[i].started
	eq.slots[i] = slot{}
	if eq.series != nil {
		eq.series.workDuration.Observe(eq.clock.Since(started).Seconds())
	}
	eq.doneLocked(e)
}

// Done marks the processing of e finished; if e was added meanwhile it is
// queued again.
func (eq *entryQueue) Done(e *entry) {
	eq.mu.Lock()
	defer eq.mu.Unlock()
	eq.doneLocked(e)
}

// doneLocked is Done with mu held.
func (eq *entryQueue) doneLocked(e *entry) {
	e.processing = false
	if e.dirty {
		eq.fifo = append(eq.fifo, e)
		eq.cond.Signal()
	}
}

// ShutDown makes the queue ignore new entries and workers return: Get
// returns shutdown at once, even with entries queued (they keep their
// events for the next Run).
func (eq *entryQueue) ShutDown() {
	eq.mu.Lock()
	defer eq.mu.Unlock()
	eq.shutDownLocked()
}

// shutDownLocked is ShutDown with mu held.
func (eq *entryQueue) shutDownLocked() {
	eq.shuttingDown = true
	eq.cond.Broadcast()
}

// ShutDownWithDrain is ShutDown: the loop waits for its workers itself.
func (eq *entryQueue) ShutDownWithDrain() { eq.ShutDown() }

// ShuttingDown reports whether ShutDown was called.
func (eq *entryQueue) ShuttingDown() bool {
	eq.mu.Lock()
	defer eq.mu.Unlock()
	return eq.shuttingDown
}

// updateUnfinishedWork sets the unfinished-work metrics from the workers'
// slots.
func (eq *entryQueue) updateUnfinishedWork() {
	eq.mu.Lock()
	defer eq.mu.Unlock()
	var total, oldest float64
	now := eq.clock.Now()
	for _, s := range eq.slots {
		if s.entry == nil {
			continue
		}
		age := now.Sub(s.started).Seconds()
		total += age
		oldest = max(oldest, age)
	}
	eq.series.unfinished.Set(total)
	eq.series.longestRunning.Set(oldest)
}

// resetEntries clears the queue flags of every entry once a Run is over, so
// the next Run starts from the entries' pending events alone. An entry still
// processing (a call that outlived its Run's drain timeout) stays so: the
// next Run leaves it alone until that call returns. mu must be held.
func resetEntries(entries map[Key]*entry) {
	for _, e := range entries {
		if !e.processing {
			e.dirty = false
		}
	}
}
