package kubehandler

import (
	"iter"
	"slices"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
)

// entry is one key's place in the queue: its pending events, and the flags
// of the entry queue that stand for client-go's dirty and processing sets.
// The workQueue's map holds the key's entry from its first event until the
// key has nothing pending and no call in flight (see workQueue).
//
// Every queued key has one, so it is kept to 64 bytes (an allocation class
// of its own; TestEntrySize): what only some keys need lives elsewhere. A
// second pending stage is out of line (pendingEvents), a failure is in
// workQueue.failures, and the lane of the call in flight in the worker's
// slot. The key's kind is a kindID (4 bytes) rather than a string (16),
// and the pending events are two fields of the entry rather than a
// pendingEvents, whose type byte would pad to 8 on its own.
type entry struct {
	namespace, name string // the key's, and its kind:
	kind            kindID

	// Guarded by workQueue.mu:
	obj   interface{} // the pending events (pendingEvents.obj)
	typ   eventType   // and their type (pendingEvents.typ)
	lane  lane        // the highest lane of the pending events (promise 9)
	flags entryFlags  // the entry queue's state of the entry

	// Only the worker holding the entry reads or writes these:
	defers  uint8 // dispatches deferred in a row as superseded, at most maxDefers (see superseded.go)
	retries int32 // failures retried since the key last succeeded
}

// newEntry returns an entry of key k with nothing pending.
func newEntry(k Key) *entry {
	return &entry{namespace: k.Namespace, name: k.Name, kind: internKind(k.Kind)}
}

// key returns the entry's key.
func (e *entry) key() Key { return Key{Kind: e.kind.String(), Namespace: e.namespace, Name: e.name} }

// is reports whether the entry is k's.
func (e *entry) is(k Key) bool {
	return e.name == k.Name && e.namespace == k.Namespace && e.kind.String() == k.Kind
}

// events returns the entry's pending events; setEvents stores them back.
func (e *entry) events() pendingEvents { return pendingEvents{obj: e.obj, typ: e.typ} }

func (e *entry) setEvents(p pendingEvents) { e.obj, e.typ = p.obj, p.typ }

// idle reports whether the entry has no pending event.
func (e *entry) idle() bool { return e.typ == noEvent }

// entryFlags are an entry's yes-or-no states, one bit each, guarded by
// workQueue.mu.
type entryFlags uint8

const (
	flagInLow      entryFlags = 1 << iota // its place in the entry queue is in the low lane
	flagRemoved                           // no longer the key's entry
	flagDirty                             // needs processing (client-go's dirty set)
	flagProcessing                        // a worker has it (client-go's processing set)
	flagMerged                            // an event was merged into pending ones or arrived in flight since the last call
)

// has reports whether every flag of f is set on e.
func (e *entry) has(f entryFlags) bool { return e.flags&f == f }

// set sets the flags of f on e, or clears them.
func (e *entry) set(f entryFlags, on bool) {
	if on {
		e.flags |= f
	} else {
		e.flags &^= f
	}
}

// lane is a priority of the entry queue (promise 9). Live events go to the
// high lane; the informer's initial list, resyncs, background Enqueues and
// what a new leader finds queued go to the low lane. An entry's lane is the
// highest of its pending events'.
type lane uint8

const (
	highLane lane = iota
	lowLane
	numLanes
)

// laneNames label the lanes' metrics (kubehandler_queue_depth and
// kubehandler_queue_wait_seconds, label "priority").
var laneNames = [numLanes]string{"high", "low"}

// retireIdle is whether an entry is dropped as soon as its key has nothing
// pending, no call in flight and no retry owed. Kept, the entries of live
// objects cost about 200 bytes each beside the informer's cached objects
// (measured after a 100,000-object list, heap retained over a plain
// client-go loop: 201 bytes per object kept, 89 dropped, the rest being the
// map's buckets, which Go never shrinks: entryMap rebuilds them since);
// dropped, an event for an idle key
// costs one allocation and a map write more, as a client-go queue's Add
// does. The allocations per listed object were the same (12.9).
const retireIdle = true

// lowLaneTurn is the anti-starvation rule (promise 9): while both lanes have
// entries waiting, every lowLaneTurn-th dispatch takes the low lane's head.
// So the head of the low lane waits for at most lowLaneTurn-1 high-lane
// dispatches, and the low lane gets at least 1/lowLaneTurn of the workers
// however busy the high lane is; a live event waits for at most one more
// call than it would without the low lane.
const lowLaneTurn = 8

// failure is what DebugHandler shows of a key waiting for a retry
// (workQueue.failures).
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
// The FIFO is two, one per lane (promise 9): workers take the high lane
// first, the low lane when the high one is empty or when it is the low
// lane's turn (lowLaneTurn). An entry is placed in the lane of its pending
// events; a live event for an entry waiting in the low lane moves it up: it
// is placed in the high lane, and the place it leaves in the low lane's
// slice is skipped when reached (inLow says which place is the entry's). So
// an entry is queued once, in one lane, and the lane is chosen under the
// lock the event already holds, without an allocation. Without lanes
// (WithPriorityLanes(false)) every entry goes to the high lane: client-go's
// FIFO.
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

	// fifos[l] holds the entries placed in lane l, in order; the low
	// lane's may also hold places its entries left (see entryQueue).
	fifos [numLanes]fifo
	// queued[l] is the number of entries whose place is in lane l.
	queued       [numLanes]int
	lanes        bool // WithPriorityLanes: use the low lane
	highRun      int  // high-lane dispatches in a row while the low lane waited
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
	lane    lane      // the event's lane, which its retry or RequeueAfter keeps
	started time.Time // when timed
}

// queueSeries are one queue's standard workqueue metrics, and its lanes'.
type queueSeries struct {
	depth                      workqueue.GaugeMetric
	adds                       workqueue.CounterMetric
	latency, workDuration      workqueue.HistogramMetric
	unfinished, longestRunning workqueue.SettableGaugeMetric
	laneDepth                  [numLanes]workqueue.GaugeMetric
	laneWait                   [numLanes]workqueue.HistogramMetric
}

// fifo is one lane's queue: a chain of fixed blocks, filled at the tail
// and consumed from the head. A long queue (an initial list: every key
// queued at once) grows a block at a time, so it is never copied, leaves no
// grown-out slices behind as garbage and never has room for more than a
// block beyond what it holds; a consumed block is dropped at once, and a
// drained queue keeps one block. The zero value is an empty fifo.
type fifo struct {
	head, tail  *fifoBlock
	first, last int // head.items[first:] and tail.items[:last] are queued
}

// fifoBlock is one block of a fifo: with its next pointer, 4 KiB, an
// allocation class of its own.
type fifoBlock struct {
	items [511]*entry
	next  *fifoBlock
}

func (f *fifo) push(e *entry) {
	switch {
	case f.tail == nil:
		f.head = &fifoBlock{}
		f.tail = f.head
	case f.last == len(f.tail.items):
		f.tail.next = &fifoBlock{}
		f.tail, f.last = f.tail.next, 0
	}
	f.tail.items[f.last] = e
	f.last++
}

// pop removes and returns the first entry; f must not be empty.
func (f *fifo) pop() *entry {
	e := f.head.items[f.first]
	f.head.items[f.first] = nil
	f.first++
	switch {
	case f.head == f.tail && f.first == f.last:
		f.first, f.last = 0, 0 // drained: keep the one block
	case f.first == len(f.head.items):
		f.head, f.first = f.head.next, 0
	}
	return e
}

// all ranges over the queued entries, first to last.
func (f *fifo) all() iter.Seq[*entry] {
	return func(yield func(*entry) bool) {
		for b, i := f.head, f.first; b != nil; b, i = b.next, 0 {
			end := len(b.items)
			if b == f.tail {
				end = f.last
			}
			for _, e := range b.items[i:end] {
				if !yield(e) {
					return
				}
			}
		}
	}
}

var _ workqueue.TypedInterface[*entry] = (*entryQueue)(nil)

// newEntryQueue returns an entry queue for workers workers; lanes says
// whether the low lane is used (WithPriorityLanes).
func newEntryQueue(mu *sync.Mutex, c clock.Clock, workers int, m *metrics, name string, timed, lanes bool) *entryQueue {
	eq := &entryQueue{mu: mu, cond: sync.NewCond(mu), clock: c, slots: make([]slot, workers), timed: timed || m != nil, lanes: lanes}
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
		for l := range numLanes {
			eq.series.laneDepth[l] = m.laneDepth.WithLabelValues(name, laneNames[l])
			eq.series.laneWait[l] = m.laneWait.WithLabelValues(name, laneNames[l])
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

// addLocked is Add with mu held. An entry already queued in the low lane
// whose lane is now high (a live event arrived) moves up.
func (eq *entryQueue) addLocked(e *entry) {
	if eq.shuttingDown || e.has(flagRemoved) {
		return
	}
	if e.has(flagDirty) {
		if e.has(flagInLow) && e.lane == highLane {
			eq.unplace(lowLane)
			e.set(flagInLow, false)
			eq.place(e, highLane)
		}
		return
	}
	e.set(flagDirty, true)
	if eq.addedAt != nil { // with metrics or a DebugHandler
		if eq.series != nil {
			eq.series.adds.Inc()
			eq.series.depth.Inc()
		}
		if _, ok := eq.addedAt[e]; !ok {
			eq.addedAt[e] = eq.clock.Now()
		}
	}
	if e.has(flagProcessing) {
		return // queued again when Done
	}
	eq.place(e, e.lane)
}

// place queues e at the back of lane l (the high lane without lanes).
func (eq *entryQueue) place(e *entry, l lane) {
	if !eq.lanes {
		l = highLane
	}
	e.set(flagInLow, l == lowLane)
	eq.fifos[l].push(e)
	eq.queued[l]++
	if eq.series != nil {
		eq.series.laneDepth[l].Inc()
	}
	eq.cond.Signal()
}

// unplace counts one entry out of lane l.
func (eq *entryQueue) unplace(l lane) {
	eq.queued[l]--
	if eq.series != nil {
		eq.series.laneDepth[l].Dec()
	}
}

// Len returns the number of entries queued.
func (eq *entryQueue) Len() int {
	eq.mu.Lock()
	defer eq.mu.Unlock()
	return eq.queued[highLane] + eq.queued[lowLane]
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
	for eq.queued[highLane]+eq.queued[lowLane] == 0 && !eq.shuttingDown {
		eq.cond.Wait()
	}
	if eq.shuttingDown {
		// Stop taking work at once; queued entries keep their events
		// for the next Run.
		return nil, true
	}
	l := eq.nextLane()
	e := eq.fifos[l].pop()
	for l == lowLane && !e.has(flagInLow) {
		e = eq.fifos[l].pop() // a place its entry left when it moved up
	}
	e.set(flagInLow, false)
	eq.unplace(l)
	e.set(flagProcessing, true)
	e.set(flagDirty, false)
	if eq.addedAt != nil { // with metrics or a DebugHandler
		added, ok := eq.addedAt[e]
		if ok {
			delete(eq.addedAt, e)
		}
		if eq.series != nil {
			eq.series.depth.Dec()
			if ok {
				waited := eq.clock.Since(added).Seconds()
				eq.series.latency.Observe(waited)
				eq.series.laneWait[l].Observe(waited)
			}
		}
	}
	return e, false
}

// queuedEntries returns the entries queued, the high lane's first, each
// once (the places left in the low lane skipped). mu must be held.
func (eq *entryQueue) queuedEntries() []*entry {
	out := slices.Collect(eq.fifos[highLane].all())
	seen := make(map[*entry]bool, eq.queued[lowLane])
	for e := range eq.fifos[lowLane].all() {
		if e.has(flagInLow) && !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}

// nextLane returns the lane the next dispatch takes, by the rule of
// lowLaneTurn; at least one lane has an entry queued.
func (eq *entryQueue) nextLane() lane {
	switch {
	case eq.queued[lowLane] == 0:
		eq.highRun = 0
		return highLane
	case eq.queued[highLane] == 0 || eq.highRun >= lowLaneTurn-1:
		eq.highRun = 0
		return lowLane
	default:
		eq.highRun++
		return highLane
	}
}

// demoteAll moves every queued entry to the low lane, behind what is there,
// and makes the lane of every entry with pending events low: a replica that
// starts leading finds them queued, and they are its initial list.
func (eq *entryQueue) demoteAll(entries *entryMap) {
	eq.mu.Lock()
	defer eq.mu.Unlock()
	if !eq.lanes {
		return
	}
	for e := range entries.all() {
		if !e.idle() {
			e.lane = lowLane
		}
	}
	for eq.queued[highLane] > 0 {
		e := eq.fifos[highLane].pop()
		eq.unplace(highLane)
		eq.place(e, lowLane)
	}
	eq.highRun = 0
}

// startCall records that worker i is processing event typ of e, which it
// got from getLocked, from lane l. mu must be held.
func (eq *entryQueue) startCall(i int, e *entry, typ eventType, l lane) {
	s := slot{entry: e, typ: typ, lane: l}
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
	e.set(flagProcessing, false)
	if e.has(flagDirty) {
		eq.place(e, e.lane)
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
// the next Run starts from the entries' pending events alone (and their
// lanes). An entry still processing (a call that outlived its Run's drain
// timeout) stays so: the next Run leaves it alone until that call returns.
// mu must be held.
func resetEntries(entries *entryMap) {
	for e := range entries.all() {
		e.set(flagInLow, false)
		if !e.has(flagProcessing) {
			e.set(flagDirty, false)
		}
	}
}
