// Package kubehandler is an event dispatcher for Kubernetes controllers.
//
// A controller embeds DefaultHandler in a type, overrides the callbacks it
// cares about, registers it on an EventLoop and runs the loop:
//
//	type DeploymentsHandler struct {
//		kubehandler.DefaultHandler
//	}
//
//	func (h *DeploymentsHandler) UpdateFunc(ctx context.Context, namespace, name string) error {
//		// reconcile namespace/name
//		return nil
//	}
//
//	loop := kubehandler.NewEventLoop("deployments")
//	loop.Register(&DeploymentsHandler{DefaultHandler: kubehandler.DefaultHandler{
//		Informer: deploymentInformer.Informer(),
//	}})
//	err := loop.Run(ctx, 2)
//
// Events from the handlers' client-go shared informers flow through one
// named workqueue, keyed by handler name, namespace and name (Key), to the
// handlers. The API is kubehandler v2's: v2 code compiles with only its
// import path changed.
//
// # Promises
//
//  1. One at a time per object. For one Key, at most one handler call is in
//     flight, whatever the threadiness.
//  2. Coalescing, in order. Events that arrive for a Key while it waits are
//     merged: add then update stays add; any then delete becomes delete;
//     delete then add (the object came back) is dispatched as delete, then
//     add. A burst of N updates to one object costs at most a few handler
//     calls, not N.
//  3. The last call tells the truth. After events stop, the last call a
//     handler got for a Key matches the object's final state: add or update
//     if it exists, delete if it does not.
//  4. Nothing is lost. A handler error is retried through the rate limiter
//     (per-item exponential backoff) until it succeeds, unless the
//     ErrorHandler says ignore or stop or the error is Terminal. Panics in
//     handlers are recovered, logged with their stack, and treated as
//     errors. Deletes seen as cache.DeletedFinalStateUnknown tombstones are
//     dispatched as deletes.
//  5. Fast path stays fast. Informer events are added to the queue directly;
//     only retries go through the rate limiter. No global token bucket
//     throttles normal traffic. A key in backoff never delays other keys.
//  6. Clean start and stop. Run waits until every registered handler's
//     informer has synced, then starts threadiness workers. When ctx is
//     cancelled, Run stops taking new work, waits for in-flight handler calls
//     to return, and returns. NewEventLoop and NewWorkQueue start no
//     goroutines; what the library starts ends when Run returns, whether by
//     cancel, stop or a misuse error. Misuse (nil informer, duplicate handler
//     names, threadiness < 1, a second concurrent Run) makes Run return a
//     clear error before it starts anything; it never panics.
//  7. Resyncs. A periodic resync (an update with an unchanged
//     resourceVersion) is dropped by default, for typed and unstructured
//     objects alike; WithResyncEvents delivers them as updates.
//  8. Names. A handler with an empty name gets its Go type's name. Two
//     handlers with the same name are an error, not a silent overwrite.
//  9. Live events first. Events of the informer's initial list (and
//     resyncs) wait in a low lane; live events are dispatched ahead of them.
//     A low-lane entry is never starved: past a stated bound it goes first.
//     On by default; an option turns it off. Promises 1-8 hold in both
//     settings.
//
// # Live events first
//
// The queue has two lanes. The low lane holds the adds of an informer's
// initial list (OnAdd's isInInitialList), resyncs delivered with
// WithResyncEvents, keys queued with EnqueueBackground, and, with leader
// election, whatever a replica has queued when it starts leading (the list
// it starts with). Everything else is live and goes to the high lane: adds,
// updates and deletes as they happen, Enqueue, and WorkQueue's Enqueue
// methods. A key's lane is the highest of its pending events': a live update
// of an object still waiting from the initial list moves it up, and events
// still merge across lanes (promise 2), one call in flight per key (promise
// 1). A retry or a RequeueAfter keeps the lane of the event it repeats.
//
// The bound: while both lanes have keys waiting, every 8th dispatch takes
// the low lane's oldest key; so the oldest low-lane key waits for at most 7
// high-lane dispatches, the low lane keeps at least an eighth of the workers
// however busy the high lane is, and a live event waits for at most one more
// call than with the high lane alone. Measured on the bench's backlog
// (10,000 listed objects, a 1ms handler, 4 workers, live adds at 100/s):
// live adds are handled within milliseconds instead of after the backlog's
// 3 seconds, and the list drains as fast as through a FIFO, since the rule
// costs no work, it only orders it. A share of dispatches rather than an age
// bound: an age bound would give the whole rest of a long list the first
// place once it is older than the bound, and live events would wait behind
// it again, which is the case the lanes are for (this was reasoned, not
// measured); a share needs no clock read and no timestamp per entry.
// WithPriorityLanes(false) makes the queue one FIFO, as client-go's.
//
// # Inside a handler call
//
// The context of a call carries the Event being handled (EventFromContext):
// its type, Key, the newest object seen (for a delete, the final state) and
// the number of retries so far. It also carries a logger
// (klog.FromContext(ctx)) with the handler, namespace, name and event type
// as values, and is cancelled when Run is stopping. Objects handed out come
// from the informer's cache: do not mutate them; DeepCopy first.
//
// A handler of a secondary resource hands work to the handler of the object
// that owns it with Enqueue(ctx, key): the owner's key is dispatched as an
// update, with all the guarantees above, instead of the secondary handler
// syncing the owner itself, alongside the owner's own calls.
//
// # Errors and retries
//
// A nil error means done. RequeueAfter(d) means done for now, dispatch the
// same event again after d. Terminal(err) is a failure retrying cannot fix:
// logged, counted and dropped. Any other error, or a panic, is passed to the
// ErrorHandler (WithErrorHandler; AlwaysRetry by default), which answers
// retry (through the rate limiter, WithRateLimiter), ignore, or stop (Run
// returns an error wrapping the handler's). RetryUpTo(n) retries n times,
// then stops. A retry dispatches the failed event merged with whatever
// arrived for the key since, so it sees the newest object. Retries count
// from 0: the first call of an event has Event.Retries 0, its first retry 1.
//
// Choices this package makes where Kubernetes leaves room:
//   - Run returns nil when its context is cancelled, also while it is still
//     waiting for caches to sync.
//   - When a handler fails because Run is stopping, the ErrorHandler is not
//     asked: the event is kept for the next Run.
//   - ErrorActionStop discards what is still queued (a restarted controller
//     relists it); an error from a handler of a stopping loop never stops it.
//   - A delete, then add, then delete of one name while it waits is one
//     delete, carrying the newest final state.
//   - Updates of objects without a resourceVersion (client-go's fake
//     clientsets make them) cannot be told from resyncs and are delivered.
//   - Run does not start informers; the caller starts them, as with client-go.
//   - A WorkQueue event of a kind with no handler for its type is dropped,
//     logged at verbosity 4.
//
// # Running in production
//
// WithLeaderElection lets several replicas of a controller take turns on a
// coordination.k8s.io Lease (client-go's tools/leaderelection): every
// replica runs its informers and queue, only the leader runs workers. The
// leader steps down the moment a read of the Lease shows another holder, or
// RenewDeadline has passed (on its own clock, WithClock) since it sent the
// last renewal that succeeded, whichever comes first: from then on no call
// starts, and the calls in flight have their context cancelled. It does not
// wait for client-go's elector to give up. It waits for its calls, releases
// the Lease only once every call of its term has returned and only if the
// Lease is still its own (and says so in the log; otherwise the Lease
// expires), and Run returns an error wrapping ErrLeaderElectionLost: exit,
// and let the process restart. On a cancelled context the leader waits for
// its calls, then releases the Lease, so a standby takes over without
// waiting for it to expire and never while the old leader still dispatches.
//
// The guarantee, for a leader whose last renewal that succeeded was sent at
// time R, with the replicas' clocks running at the same rate (Leases compare
// durations, each measured locally, never clock readings):
//
//	no call starts on the old leader after  min(R + RenewDeadline, T + RetryPeriod)
//	no call starts on a new leader before   T >= R + LeaseDuration
//
// where T is when another replica took the Lease (the old leader's next
// renewal, at most RetryPeriod later, fails and reads the new holder; add
// the time of one request to the API server). So new calls never overlap
// across replicas: only a call already running can. A call running when the
// leader stepped down has its context cancelled then, and may overlap the
// new leader's calls for one object for
//
//	max(0, D - (LeaseDuration - RenewDeadline))
//
// where D is how long it takes to return once cancelled: none for handlers
// that return within LeaseDuration - RenewDeadline (5s with the defaults).
// What no Lease can prevent: a process frozen in the middle of a call (a
// long GC pause, a stopped VM, a node under memory pressure) for longer than
// LeaseDuration resumes with the call still running, after another replica
// has taken over; it finishes after the freeze (the leader steps down as it
// resumes, its deadline long passed, and starts nothing new), for D again.
// Handlers make that harmless by honouring ctx (return when it is done) and
// by writing with resourceVersion preconditions (an Update of the object
// they read, not a blind Patch), as sample-controller does: the stale write
// then fails with a conflict instead of undoing the new leader's.
//
// Readiness and Liveness are checks for HTTP probes (ProbeHandler serves
// them): ready once the caches synced and, with leader election, while
// leading or a standby in touch with the lease; live unless a call has run
// longer than WithLivenessTimeout. All three take the loop as a Loop, which
// an EventLoop and a WorkQueue are. IsLeader tells whether the loop
// dispatches now: with leader election, while it holds the lease (with
// WithMetrics the gauge kubehandler_leader says so too); without, from the
// moment its workers start until Run stops them, a single replica being its
// own leader.
//
// WithHandlerTimeout gives each call a deadline (an overrun is counted,
// logged and retried); WithDrainTimeout bounds how long Run waits for calls
// when it stops, and then names the calls still running. Eventf records a
// Kubernetes Event about the object of a call (WithEventRecorder,
// NewEventRecorder).
//
// # Scaling out
//
// WithSharding splits one controller's objects across the replicas of a
// ring (promise 10), with no component beyond the replicas: each runs the
// same binary, keeps the full cache of its informers, and dispatches only
// the objects in the slots it holds, dropping the others' events before
// they reach its queue. A slot is a fixed range of the 64-bit FNV-1a hash of
// metadata.uid (k8s.io/apimachinery/pkg/sharding's, the function the API
// server evaluates for KEP-5866 shard selectors): Slots of them, a power of
// two, slot i being the top bits of the hash. Every slot has its own Lease,
// "<ring>-<slot>", and every replica a membership Lease; each replica
// computes the same assignment from the members and holders it reads
// (floor or ceil of Slots/replicas each, moving the fewest slots), gives up
// the slots that are no longer its own and takes those nobody alive holds.
// Only the membership is renewed: a replica holds each slot under its
// membership term, so a slot's Lease is written only when it changes hands,
// and the replicas read the ring through a watch of its Leases, not a LIST.
// At rest a ring costs replicas/RetryPeriod Lease writes a second (3
// replicas at the default 2 s: 1.5 a second, whatever the slot count) and
// no LIST. The Lease rule is leader election's, on the membership: a
// replica stops starting calls of every slot the moment a read shows its
// membership (or a slot) held by another or RenewDeadline passes since its
// last renewal, cancels the slot's calls in flight at its next step, and
// releases a slot only once every call of it has returned; a new holder
// takes a slot only when it is released or its holder's membership has not
// changed for LeaseDuration (by the taker's clock, confirmed by a read from
// the API server itself), with one compare-and-swap on the slot's Lease.
// So one call at a time per object holds across the ring, through
// scale-up, scale-down, a replica that stops (it hands its slots over as
// soon as its calls returned: the others, watching the Leases, take them
// within a round trip) and a replica that dies (its slots are taken after
// LeaseDuration), with the same window for calls of a frozen process as
// under leader election (see above; internal/shard's package doc gives the
// argument in full). Take-overs and hand-overs write up to 16 slot Leases
// at once. A ring that forms (no live replica holds a slot: it starts, or
// every holder died) is claimed a FormationDelay (default RetryPeriod)
// after a replica joins, not at once: replicas started together, as a
// Deployment's are, find each other first and each claims its share, where
// the first would otherwise claim every slot and hand most over a moment
// later (with a ShardedInformer, after listing every object). A replica
// joins as its Run starts, while its caches sync (so replicas whose initial
// lists take different times still form the ring together), and its
// workers start once they have synced. A replica that joins a ring already
// formed takes its share as soon as it is handed over.
//
// A replica that takes a slot queues every cached object of it as an add in
// the low lane, as a new leader does with its initial list: its handlers see
// each object's current state, live events go first. A delete that happened
// while the slot was changing hands is not seen by the new holder, as a
// controller does not see the deletes of its downtime: clean-up that must
// run belongs in a finalizer (handlers/cascade holds one). Slots follow the
// UID: an object deleted and created again under its name is a new object,
// possibly in another slot on another replica.
//
// Secondary resources (the Deployments a Foo owns) are usually watched in
// full and their handlers Enqueue the owner. Name their handlers in
// Sharding.Secondary: every replica dispatches their events, and Enqueue of
// an owner in a slot this replica does not hold returns false; the replica
// holding it saw the same event and enqueues it there. Every other handler
// is split by its objects' UIDs.
//
// A replica is ready (Readiness) once it holds its share and dispatches its
// events, or knows it is a spare (more replicas than slots). With WithMetrics, kubehandler_shard_slots
// is the number of slots a replica holds and
// kubehandler_shard_handovers_total{direction="in"|"out"} counts slots taken
// and given up; the handler metrics are per replica as before. Client-side
// filtering works on every cluster, and with plain informers each replica
// lists, watches and caches everything. A handler whose informer is a
// ShardedInformer caches only its replica's share: it runs one informer per
// slot the replica holds (or still has calls in), each listing and watching
// with the slot's KEP-5866 shard selector, started when the slot comes
// (its objects arrive as an initial list, in the low lane) and stopped when
// it goes (its cache dropped, with no delete events). It asks the API
// server at Run whether it honours shard selectors (the ShardedListAndWatch
// feature gate); if not, it logs so and caches everything, and the
// client-side filter alone keeps each object on one replica. Outside a
// sharded loop, and for secondary handlers, a ShardedInformer would list
// nothing: Run refuses it there; give those plain informers. Sharding and leader election
// exclude each other, and sharding is an option of an EventLoop (its
// informers' caches place a key and list a slot taken over), not of a
// WorkQueue.
//
// # Debug endpoint
//
// DebugHandler answers the operator's "why isn't my object handled?" with a
// live view of the loop, served where you mount it (next to /metrics, say
// at /debug/kubehandler; nothing is served unless you do). Per handler: the
// keys waiting and how many are ready for a worker, the calls in flight
// (key, event type, running time; longest first), the keys in backoff after
// a failure (retry count, last error cut to 1 KiB, when the next attempt is
// due; most retries first) and the key that has waited longest. A small
// HTML page for people (no scripts, no external assets); ?format=json for
// tools, a DebugReport, whose field names are stable. In a ring
// (WithSharding) it also shows the replica's view of it (DebugRing): slots
// held, its share, slots draining with their calls in flight, members, when
// its membership ends unless renewed, and the last Step's error. Each
// section lists at most DebugMaxKeys keys (50 by default) and says how many
// it left out.
//
// It shows keys and error texts, never objects; but an error text is
// whatever a handler put in it, and whoever reaches the endpoint reads it:
// serve it only to operators. Nothing is collected until a request comes:
// the request walks the keys under the loop's lock; what it shows of a
// failure is recorded on the failure path. Once DebugHandler is called, the
// loop records when keys are queued and calls start, as WithMetrics does.
//
// # Chains and typed handlers
//
// A Chain is one handler made of Steps run in order (every EventHandler is
// a Step; StepFunc and DeleteStepFunc adapt single functions). It is one
// Key, so still one call in flight per object. A TypedHandler hands its
// functions the object itself, typed (*appsv1.Deployment, or
// *unstructured.Unstructured with a dynamic informer), taken from the event
// (for a delete, its final state) or looked up by key. Both hand out the
// informer's cached objects: do not mutate them. Objects being deleted (a
// delete, or an object with a deletion timestamp that finalizers hold) go
// to the steps' DeleteFunc, which must therefore be idempotent. A Chain may
// own a finalizer (Chain.Finalizer, patched through Chain.Patch, see
// ClientPatch): it adds it to live objects and removes it only once every
// step's delete path returned nil or SkipStep. It does so with AddFinalizer
// and RemoveFinalizer, which any handler may use: a write that conflicts
// (the object changed since it was read) is not an error, since the newer
// version's event runs the handler again.
//
// A step controls the chain with what it returns, as any handler does:
//
//	nil, SkipStep()     done; the next step runs
//	CancelChain()       stop here, as a success (a paused object)
//	RequeueAfter(d)     done for now; the next steps run, then the event
//	                    comes back after the smallest d asked for
//	KeepFinalizer(d)    the same, said on a delete path: not cleaned up
//	                    yet, keep the finalizer (the deletion waits)
//	Terminal(err)       stop; failed, not retried
//	other error, panic  stop; failed, the whole chain retried
//
// These are errors, not flags set on the context (as operatorkit does).
// An error is what a step already returns: a decision made deep inside a
// helper travels up through ordinary "if err != nil { return err }" code,
// can be wrapped with context (errors.Is and errors.As see through the
// wrapping), and cannot be set and then lost, as a context flag can when
// the code after it returns a plain error. It is also the form
// RequeueAfter and Terminal already have, so a step is an ordinary
// handler: returned by a handler outside a chain, SkipStep and CancelChain
// are successes and KeepFinalizer is RequeueAfter. Unlike operatorkit, a
// cancelled delete path keeps the chain's finalizer: a cancelled cleanup
// has not cleaned up.
//
// # Metrics and logs
//
// WithMetrics registers, on a prometheus.Registerer of your choice, the
// standard workqueue metrics (workqueue_depth, workqueue_adds_total,
// workqueue_queue_duration_seconds, workqueue_work_duration_seconds,
// workqueue_retries_total, workqueue_unfinished_work_seconds,
// workqueue_longest_running_processor_seconds, labelled by queue name) and
// kubehandler_handler_calls_total (by queue name, handler, event and result:
// success, error, requeue, terminal, panic, timeout),
// kubehandler_handler_duration_seconds, the lanes' kubehandler_queue_depth
// and kubehandler_queue_wait_seconds (by queue name and priority: high or
// low; workqueue_depth counts both lanes, and keys that got an event during
// their call, which the lanes count once the call returns) and, with leader
// election, kubehandler_leader. Logs go through klog/v2's contextual
// logging: the logger of Run's context, or WithLogger's.
package kubehandler

// Reading the code: the path an event takes, one file per stage, each read
// top to bottom in the order it runs (this comment is for maintainers; it is
// not part of the package documentation).
//
//	informer.go    informerHandler.OnAdd/OnUpdate/OnDelete: an informer
//	               event enters (resyncs dropped here); WorkQueue's Enqueue
//	               methods and Enqueue (enqueue.go) enter at the next stage
//	workqueue.go   workQueue.enqueue: key the object (key.go), merge the
//	               event into its key's entry (coalesce.go; entrymap.go
//	               finds the entry), queue the entry
//	entryqueue.go  entryQueue: client-go's queue algorithm over entries
//	               (dirty/processing as flags) in two lanes (promise 9),
//	               the workers' slots, the standard workqueue metrics
//	worker.go      runner.worker: get -> dispatch -> call -> settle -> done,
//	               requeues through client-go's delaying and rate-limiting
//	               queues; superseded.go is the storm deferral dispatch may
//	               make, callcontext.go the context a handler call gets
//
// and around it, the life of a Run:
//
//	run.go         claim -> (EventLoop: hookAll, eventloop.go) -> run:
//	               waitForSync, runWorkers or its variants lead (leader
//	               election) and runSharded, end -> (unhookAll) -> release; leaderelection.go
//	               holds the Lease's configuration, internal/lease the
//	               term of one Lease (step-down, release after the drain)
//	sharding.go    runSharded's sharder (WithSharding): Steps the ring's
//	               internal/shard Replica on internal/lease's Pool, keeps
//	               the held slots that enqueue filters by (accepts) and
//	               dispatch asks (begin/end), and lists a slot taken over;
//	               sharded_informer.go is the informer per slot held that
//	               it narrows (setSlots) in the server-side mode
//	health.go      Readiness, Liveness and IsLeader read the Run's phase and
//	               the workers' slots
//	debug.go       DebugHandler reads them too, the entries' pending
//	               events, and the queue's failures (recorded by done, in
//	               worker.go)
//
// errors.go has every error type and sentinel; errorhandler.go what the loop
// does with a failure.
