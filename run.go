package kubehandler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/kubehandler/kubehandler/internal/lease"
)

// The lifecycle of a Run, top to bottom in this file:
//
//	claim         refuse misuse; the Run's runner becomes q.active, the
//	              queue's one running state, and queues what is pending
//	hookAll       (EventLoop) attach the handlers to their informers
//	run           waitForSync, then
//	                runWorkers: startWorkers, wait for the end, stopWorkers
//	              or, with leader election, its variant
//	                lead: the same, while this replica holds the Lease
//	              then end: shut the queues down, settle the entries
//	unhookAll     (EventLoop) detach the handlers
//	release       q.active is nil again: the queue may Run again
//
// What a worker does with an entry is in worker.go.

// Run implements WorkQueue: the lifecycle above, waiting for the functions
// given to AddSynced.
func (q *workQueue) Run(ctx context.Context, threadiness int) error {
	r, err := q.claim(ctx, threadiness)
	if err != nil {
		return err
	}
	defer q.release(r)
	q.mu.Lock()
	w := syncWaits{synced: slices.Clone(q.synced)}
	q.mu.Unlock()
	return r.run(w)
}

// Run implements EventLoop: the lifecycle above, with the handlers hooked to
// their informers between claim and run, and unhooked before release. Both
// happen under l.mu, so a handler Registered meanwhile is hooked exactly once.
func (l *eventLoop) Run(ctx context.Context, threadiness int) error {
	l.mu.Lock()
	r, err := l.q.claim(ctx, threadiness)
	var w syncWaits
	if err == nil {
		if w, err = l.hookAll(); err != nil {
			r.end()
			l.q.release(r)
		}
	}
	l.mu.Unlock()
	if err != nil {
		return err
	}
	defer func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.unhookAll()
		l.q.release(r)
	}()
	return r.run(w)
}

// runner is one Run: its entry queue, client-go's queues over it for delayed
// requeues, its workers, and where it stands.
type runner struct {
	q *workQueue
	// ready is the entry queue: entries ready to be dispatched, and the
	// workers' slots.
	ready *entryQueue
	// delays is client-go's rate-limiting and delaying queue over ready:
	// retries (AddRateLimited) and RequeueAfter (AddAfter) go through it.
	// startWorkers makes it (it has a goroutine), stopWorkers shuts it down.
	delays      workqueue.TypedRateLimitingInterface[*entry]
	threadiness int
	logger      logr.Logger

	// ctx is the parent of every handler call's context; it is cancelled
	// when Run's context is, when an ErrorHandler says stop, and when
	// leadership is lost.
	ctx    context.Context
	cancel context.CancelFunc

	phase phase // guarded by q.mu
	// lease holds the Lease with leader election (nil without): workers
	// ask it before each call (get), and it ends the term (stepDown).
	lease    *lease.Holder
	leaseErr error // making lease failed; lead returns it
	// shard is this replica's part in its ring with WithSharding (nil
	// without): calls start only in the slots it holds (sharding.go).
	shard    *sharder
	shardErr error // making shard failed; runSharded returns it
	// The ring's goroutines (joinRing): its Steps, and the watch of its
	// Leases, which outlives them to serve the last Steps of leaveRing.
	ringSteps, ringWatch sync.WaitGroup
	stopRingWatch        context.CancelFunc
	// lostLease says why the term ended, set by stepDown before it cancels
	// ctx (so before the Holder's Done closes): "" while it has not.
	lostLease string // guarded by q.mu

	workers  sync.WaitGroup
	stopOnce sync.Once
	stopErr  error // set once, before cancel, by stopWith
}

// phase is where a Run stands; Readiness and IsLeader read it.
type phase uint8

const (
	phaseSyncing     phase = iota // claimed: hooking handlers, waiting for caches
	phaseStandby                  // synced; with leader election, not leading
	phaseDispatching              // workers run
	phaseEnded                    // workers stopped; Run is returning
)

// syncWaits is what a Run waits for before its workers start.
type syncWaits struct {
	checkers []cache.DoneChecker    // informer registrations: their initial list was delivered
	synced   []cache.InformerSynced // handlers' Synced and AddSynced functions
}

// claim checks what makes a Run impossible and, if nothing does, makes the
// Run's runner the queue's active one. From then on events are queued for
// the Run as they arrive (the initial list too, rather than in one go once
// the caches synced), and what was pending is queued now. It starts nothing,
// so a refused Run leaves nothing behind (promise 6).
func (q *workQueue) claim(ctx context.Context, threadiness int) (*runner, error) {
	if q.err != nil {
		return nil, q.err
	}
	if threadiness < 1 {
		return nil, fmt.Errorf("kubehandler: queue %q: threadiness must be at least 1, got %d", q.name, threadiness)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.active != nil {
		return nil, fmt.Errorf("kubehandler: queue %q is already running: Run must not be called again until it returns", q.name)
	}
	r := newRunner(ctx, q, threadiness)
	q.active = r
	if q.debugged {
		r.ready.recordTimesLocked()
	}
	for e := range q.entries.all() {
		if !e.idle() {
			r.ready.addLocked(e)
		}
	}
	return r, nil
}

func newRunner(ctx context.Context, q *workQueue, threadiness int) *runner {
	logger := klog.FromContext(ctx)
	if q.opts.logger != nil {
		logger = *q.opts.logger
	}
	logger = logger.WithValues("queue", q.name)
	r := &runner{
		q: q,
		ready: newEntryQueue(&q.mu, q.opts.clock, threadiness, q.metrics, q.name,
			q.opts.livenessTimeout > 0 || q.opts.drainTimeout > 0, !q.opts.noLanes),
		threadiness: threadiness,
		logger:      logger,
	}
	r.ctx, r.cancel = context.WithCancel(klog.NewContext(ctx, logger))
	if le := q.opts.leaderElection; le != nil {
		r.lease, r.leaseErr = le.newHolder(q.opts.clock, logger, r.stepDown)
	}
	if sh := q.opts.sharding; sh != nil {
		r.shard, r.shardErr = newSharder(r.ctx, q, logger)
	}
	return r
}

// run waits for the caches to sync, then dispatches until ctx is done or a
// handler's error stops the loop. The caller has claimed the queue.
func (r *runner) run(w syncWaits) error {
	defer r.end()
	// A replica joins its ring while its caches sync: replicas that start
	// together form the ring together (FormationDelay), however long each
	// one's initial list takes, and the slots are claimed by the time the
	// workers start.
	inRing := r.shard != nil && r.shardErr == nil
	if inRing {
		r.joinRing()
	}
	if !waitForSync(r.ctx, r.logger, w) {
		// Only a cancelled ctx ends the wait early: a normal shutdown.
		if inRing {
			r.leaveRing(func() error { return nil })
		}
		return nil
	}
	switch {
	case r.lease != nil:
		return r.lead()
	case r.shard != nil || r.shardErr != nil:
		return r.runSharded()
	}
	return r.runWorkers()
}

// syncPollPeriod is how often waitForSync polls InformerSynced functions;
// they are usually true already once the checkers are done.
const syncPollPeriod = 10 * time.Millisecond

// waitForSync waits until every checker is done (without polling: informer
// registrations close a channel once their initial list is delivered), then
// until every synced function returns true. It returns false if ctx ends
// first.
func waitForSync(ctx context.Context, logger logr.Logger, w syncWaits) bool {
	if len(w.checkers) == 0 && len(w.synced) == 0 {
		return true
	}
	logger.V(2).Info("Waiting for caches to sync")
	for _, c := range w.checkers {
		select {
		case <-c.Done():
		case <-ctx.Done():
			return false
		}
	}
	allSynced := func(context.Context) (bool, error) {
		for _, s := range w.synced {
			if !s() {
				return false, nil
			}
		}
		return true, nil
	}
	if err := wait.PollUntilContextCancel(ctx, syncPollPeriod, true, allSynced); err != nil {
		return false
	}
	logger.V(2).Info("Caches are synced")
	return true
}

// runWorkers dispatches with the Run's workers until its context is done,
// then stops them.
func (r *runner) runWorkers() error {
	r.setPhase(phaseDispatching)
	r.logger.V(2).Info("Starting workers", "count", r.threadiness)
	r.startWorkers()
	<-r.ctx.Done()
	err := r.stopWorkers()
	r.logger.V(2).Info("Workers stopped")
	return err
}

// joinRing starts the replica's part in its ring (WithSharding), before the
// caches have synced: the watch of the ring's Leases and the Steps, which
// run until the Run's context is done. Events of slots it does not hold
// are dropped before the queue from here on; a slot it gains is queued
// from the cache then, and the rest of its initial list as it arrives.
func (r *runner) joinRing() {
	sh := r.shard
	r.q.sharder.Store(sh)
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(r.ctx))
	r.stopRingWatch = stopWatch
	r.ringWatch.Go(func() { sh.watchLeases(watchCtx) })
	r.ringSteps.Go(func() { sh.run(r.ctx) })
}

// runSharded is runWorkers in a ring of replicas (WithSharding): the
// workers dispatch only the slots the sharder holds, which Steps beside
// them (joinRing). When the Run's context is done the replica leaves the
// ring: no call starts, the calls in flight are cancelled and waited for,
// and then every slot is released for the others to take at once.
func (r *runner) runSharded() error {
	if r.shardErr != nil {
		return fmt.Errorf("kubehandler: queue %q: WithSharding: %w", r.q.name, r.shardErr)
	}
	sh := r.shard
	r.setPhase(phaseDispatching)
	r.logger.V(2).Info("Starting workers in a ring", "count", r.threadiness, "ring", sh.cfg.Namespace+"/"+sh.cfg.Name, "slots", sh.ring.Slots())
	r.startWorkers()
	<-r.ctx.Done()
	return r.leaveRing(r.stopWorkers)
}

// leaveRing leaves the ring once the Run's context is done: it waits for
// the last Step, stops new calls, stops the workers (stopWorkers: their
// calls are cancelled and waited for), releases every slot and the
// membership, and stops the watch of the ring's Leases.
func (r *runner) leaveRing(stopWorkers func() error) error {
	sh := r.shard
	<-r.ctx.Done()
	r.ringSteps.Wait() // the Steps of sh.run end with the context
	sh.replica.Leave()
	err := stopWorkers()
	sh.leave(context.WithoutCancel(r.ctx))
	r.stopRingWatch()
	r.ringWatch.Wait()
	return err
}

// setPhase records where the Run stands.
func (r *runner) setPhase(p phase) {
	r.q.mu.Lock()
	defer r.q.mu.Unlock()
	r.phase = p
}

// startWorkers makes the delaying queues and starts the workers (worker.go),
// and, with metrics, the reporter of unfinished work.
func (r *runner) startWorkers() {
	r.delays = newDelays(r.q, r.ready, r.logger)
	for i := range r.threadiness {
		r.workers.Go(func() {
			if err := r.worker(i); err != nil {
				r.crashed(err)
			}
		})
	}
	if r.ready.series != nil {
		r.workers.Go(r.reportUnfinishedWork)
	}
}

// newDelays returns client-go's rate-limiting queue, over its delaying
// queue, over ready: the layers that time retries and RequeueAfter.
func newDelays(q *workQueue, ready *entryQueue, logger logr.Logger) workqueue.TypedRateLimitingInterface[*entry] {
	// client-go's delaying queue counts workqueue_retries_total when it has
	// a name and a provider; without WithMetrics it gets neither.
	delayingCfg := workqueue.TypedDelayingQueueConfig[*entry]{Logger: &logger, Clock: q.opts.clock, Queue: ready}
	if q.metrics != nil {
		delayingCfg.Name, delayingCfg.MetricsProvider = q.name, queueMetrics{q.metrics}
	}
	return workqueue.NewTypedRateLimitingQueueWithConfig[*entry](keyLimiter{q.opts.rateLimiter},
		workqueue.TypedRateLimitingQueueConfig[*entry]{
			Clock:         q.opts.clock,
			DelayingQueue: workqueue.NewTypedDelayingQueueWithConfig(delayingCfg),
		})
}

// keyLimiter applies the user's rate limiter, which knows Keys, to entries.
type keyLimiter struct {
	limiter workqueue.TypedRateLimiter[Key]
}

func (l keyLimiter) When(e *entry) time.Duration { return l.limiter.When(e.key()) }
func (l keyLimiter) Forget(e *entry)             { l.limiter.Forget(e.key()) }
func (l keyLimiter) NumRequeues(e *entry) int    { return l.limiter.NumRequeues(e.key()) }

// crashed stops the Run after a worker panicked. Handler panics are
// recovered in call; one that reaches the worker is a bug in the loop
// itself: the Run stops rather than lose a worker silently.
func (r *runner) crashed(err error) {
	var p *panicError
	if errors.As(err, &p) {
		err = fmt.Errorf("kubehandler: queue %q: worker panicked: %v", r.q.name, p.value)
		r.logger.Error(err, "Stopping", "stacktrace", string(p.stack))
	}
	r.stopWith(err)
}

// stopWith ends the Run with err (ErrorActionStop, or a worker that
// crashed): its context is cancelled, and Run returns err.
func (r *runner) stopWith(err error) {
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
			r.ready.updateUnfinishedWork()
		case <-r.ctx.Done():
			return
		}
	}
}

// stopWorkers stops taking work (entries still queued keep their events),
// cancels the calls' context, and waits for the calls in flight to return:
// then no goroutine of the Run is left (promise 6). With WithDrainTimeout it
// waits that long at most, and returns an error naming the calls still
// running.
func (r *runner) stopWorkers() error {
	r.delays.ShutDown() // and ready under it
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

// drainTimeoutError names the calls still running.
func (r *runner) drainTimeoutError(d time.Duration) error {
	r.q.mu.Lock()
	defer r.q.mu.Unlock()
	now := r.q.opts.clock.Now()
	var running []string
	for _, s := range r.ready.slots {
		if s.entry != nil {
			running = append(running, fmt.Sprintf("%s (running for %s)", s.entry.key(), now.Sub(s.started).Round(time.Millisecond)))
		}
	}
	return fmt.Errorf("kubehandler: queue %q: %w (%s): %s", r.q.name, ErrDrainTimeout, d, strings.Join(running, ", "))
}

// lead is runWorkers with leader election: it campaigns for the Lease and,
// while this replica holds it, runs the workers. The caches have synced;
// until it leads, the replica is a standby that keeps its queue.
//
// The term ends (r.lease.Done) the moment a read of the Lease shows another
// holder or the renew deadline passes since the last renewal; stepDown then
// stops the dispatch at once, and the workers ask the lease before each
// call besides (get). Then lead waits for the calls in flight, and only
// then releases the Lease, if they all returned and it is still ours.
// Cancelling Run's context does the same, except that the Lease is kept
// with KeepLeaseOnCancel; while the calls drain the elector goes on
// renewing, so no standby takes over before they returned.
func (r *runner) lead() error {
	if r.leaseErr != nil {
		return fmt.Errorf("kubehandler: queue %q: %w", r.q.name, r.leaseErr)
	}
	r.setPhase(phaseStandby)
	le := r.q.opts.leaderElection
	h := r.lease
	// The Lease is released without the Run's context, which is cancelled
	// by then.
	stopCtx := context.WithoutCancel(r.ctx)
	h.Start(r.ctx)
	r.logger.V(2).Info("Standing by for the lease", "lease", le.Namespace+"/"+le.Name, "identity", le.Identity)

	select {
	case <-r.ctx.Done():
		// Never dispatched: nothing to drain.
		h.Stop(stopCtx, !le.KeepLeaseOnCancel)
		return r.stopErr
	case <-h.Done():
		h.Stop(stopCtx, false)
		return fmt.Errorf("kubehandler: queue %q: %w before leading", r.q.name, ErrLeaderElectionLost)
	case <-h.Acquired():
	}
	r.logger.Info("Leading: starting workers", "count", r.threadiness)
	// What the standby queued is the new leader's initial list (promise 9).
	r.ready.demoteAll(&r.q.entries)
	r.setLeading(true)
	r.startWorkers()
	select {
	case <-r.ctx.Done():
	case <-h.Done():
	}
	// The step-down cancels ctx before the Holder's Done closes: ask the
	// runner, not Done, whether the term ended.
	r.q.mu.Lock()
	reason := r.lostLease
	r.q.mu.Unlock()
	lost := reason != ""
	if lost {
		r.logger.Info("Lost the lease: waiting for the calls in flight", "reason", reason)
	}
	err := r.stopWorkers()
	r.setLeading(false)
	drained := !errors.Is(err, ErrDrainTimeout)
	h.Stop(stopCtx, drained && (lost || !le.KeepLeaseOnCancel))
	if lost {
		return errors.Join(fmt.Errorf("kubehandler: queue %q: %w (%s)", r.q.name, ErrLeaderElectionLost, reason), err)
	}
	return err
}

// stepDown is the lease's OnStepDown: the term ended, so no call starts from
// now on (the entry queue shuts down: workers get nothing more), and the
// calls in flight have their context cancelled. It runs in the goroutine
// that found out, before the lease says so anywhere else.
func (r *runner) stepDown(reason string) {
	r.q.mu.Lock()
	r.lostLease = reason
	r.ready.shutDownLocked()
	if r.phase == phaseDispatching {
		r.phase = phaseStandby
	}
	r.q.mu.Unlock()
	r.cancel()
	if r.q.metrics != nil {
		r.q.metrics.leader.WithLabelValues(r.q.name).Set(0)
	}
}

// setLeading records whether this replica leads (and dispatches), in the
// Run's phase and the kubehandler_leader gauge.
func (r *runner) setLeading(leading bool) {
	p, v := phaseStandby, 0.0
	if leading {
		p, v = phaseDispatching, 1
	}
	r.setPhase(p)
	if r.q.metrics != nil {
		r.q.metrics.leader.WithLabelValues(r.q.name).Set(v)
	}
}

// end closes the Run: it cancels its context, shuts its entry queue down
// (a standby never started the delaying queues, a stopped leader's are shut
// down already: either way none is left) and leaves the entries for the
// next Run: their queue flags cleared or, after ErrorActionStop, discarded.
// A call that outlived the Run (the drain timeout ran out) finds the phase
// ended when it returns (see runner.done).
func (r *runner) end() {
	r.cancel()
	q := r.q
	q.sharder.CompareAndSwap(r.shard, nil)
	q.mu.Lock()
	defer q.mu.Unlock()
	r.ready.shutDownLocked()
	r.phase = phaseEnded
	resetEntries(&q.entries)
	if r.stopErr != nil {
		// ErrorActionStop: what is still queued is discarded; a restarted
		// controller relists it.
		for e := range q.entries.all() {
			e.set(flagRemoved, true)
		}
		q.entries.clear()
		q.failures = nil
		q.waiting = 0
	}
}

// release ends r's claim on the queue: a new Run may start.
func (q *workQueue) release(r *runner) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.active == r {
		q.active = nil
	}
}
