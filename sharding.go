package kubehandler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	coordinationapiv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"

	"github.com/kubehandler/kubehandler/internal/lease"
	"github.com/kubehandler/kubehandler/internal/lease/shardleases"
	"github.com/kubehandler/kubehandler/internal/shard"
)

// Sharding configures WithSharding: a ring of replicas of one controller
// that split its objects between them, in slots of the hash of their UIDs
// whose ownership lives in coordination.k8s.io/v1 Leases.
type Sharding struct {
	// Client reaches the ring's Leases, e.g. clientset.CoordinationV1().
	// Required.
	Client coordinationv1.LeasesGetter
	// Namespace holds the ring's Leases. Required.
	Namespace string
	// Name is the ring's name: every replica of the controller uses the
	// same. It names and labels the ring's Leases, so it must be a valid
	// object name of at most 63 characters. Required.
	Name string
	// Identity names this replica in the Leases; it must differ between
	// replicas (a Pod's name is a good choice). Required.
	Identity string
	// Slots is the number of slots the hash space is cut into: a power of
	// two from 1 to 4096, the same on every replica. Slots bound the
	// number of replicas that get work (a replica beyond it is a spare)
	// and cost a Lease write each when they change hands (at rest only
	// the replicas' memberships are renewed): 16 to 64 suit most
	// controllers. Required.
	Slots int
	// Secondary names the handlers whose objects are not split: every
	// replica dispatches all their events. They are for secondary
	// resources (the Deployments a Foo owns), watched in full on every
	// replica, whose handlers Enqueue the owner: an Enqueue of a key this
	// replica does not hold returns false, and the replica that holds it
	// sees the same event and enqueues it there. Every name must be a
	// registered handler's: Run refuses an unknown one.
	Secondary []string
	// LeaseDuration, RenewDeadline and RetryPeriod are as in
	// LeaderElection, per Lease (defaults 15s, 10s, 2s). LeaseDuration is
	// a whole number of seconds, as a Lease records it. A replica that
	// dies loses its slots after LeaseDuration; one that stops hands them
	// over as soon as its calls have returned.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// FormationDelay is how long a replica that joins a ring no live
	// replica holds a slot of (it starts, or every holder died) waits
	// before it claims. Replicas that start within it find each other and
	// each claims its share, where the first would claim every slot and
	// hand most of them over a moment later (with a ShardedInformer,
	// after listing every object). A ring that has formed is joined
	// without it. 0 means RetryPeriod; negative, no wait.
	FormationDelay time.Duration
}

// Labels on a ring's Leases. Every Lease of a ring carries LabelShardRing
// with the ring's name and LabelShardRole, ShardRoleSlot or
// ShardRoleMember; a slot's Lease also carries LabelShardSlot with its
// number, and a replica's membership Lease carries LabelShardLeaving
// ("true") from the first renewal after its Run was cancelled. Select a
// ring's Leases by them: kubectl get leases -l kubehandler.io/shard-ring=NAME.
const (
	LabelShardRing    = shard.LabelRing
	LabelShardRole    = shard.LabelRole
	LabelShardSlot    = shard.LabelSlot
	LabelShardLeaving = shard.LabelLeaving
	ShardRoleSlot     = shard.RoleSlot
	ShardRoleMember   = shard.RoleMember
)

// WithSharding splits the objects of an EventLoop across the replicas of
// a ring (DESIGN promise 10): each replica dispatches only the objects
// whose UID hashes into the slots it holds, and one call at a time per
// object holds across the ring. The package documentation ("Scaling out")
// explains the slots, the hand-over, and what holds when a replica stops
// or dies. Bad configuration, and sharding together with leader election
// or on a WorkQueue, is an error from Run.
func WithSharding(s Sharding) Option {
	return func(o *options) {
		cfg := s
		cfg.Secondary = slices.Clone(s.Secondary)
		defaultTimings(&cfg.LeaseDuration, &cfg.RenewDeadline, &cfg.RetryPeriod)
		if cfg.FormationDelay == 0 {
			cfg.FormationDelay = cfg.RetryPeriod
		}
		var errs []error
		if cfg.Client == nil {
			errs = append(errs, errors.New("no Client"))
		}
		if cfg.Namespace == "" {
			errs = append(errs, errors.New("no Namespace"))
		}
		if err := shard.ValidateRingName(cfg.Name); err != nil {
			errs = append(errs, err)
		}
		if cfg.Identity == "" {
			errs = append(errs, errors.New("no Identity"))
		}
		if _, err := shard.NewRing(cfg.Slots); err != nil {
			errs = append(errs, err)
		}
		switch {
		case cfg.LeaseDuration < 0 || cfg.RenewDeadline < 0 || cfg.RetryPeriod < 0:
			errs = append(errs, errors.New("negative durations"))
		case cfg.RenewDeadline >= cfg.LeaseDuration:
			errs = append(errs, fmt.Errorf("RenewDeadline (%s) must be shorter than LeaseDuration (%s)", cfg.RenewDeadline, cfg.LeaseDuration))
		case cfg.RetryPeriod >= cfg.RenewDeadline:
			errs = append(errs, fmt.Errorf("RetryPeriod (%s) must be shorter than RenewDeadline (%s)", cfg.RetryPeriod, cfg.RenewDeadline))
		}
		if _, err := cfg.newLeases(nil, logr.Discard(), nil); err != nil && len(errs) == 0 {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			o.errs = append(o.errs, fmt.Errorf("kubehandler: WithSharding: %w", errors.Join(errs...)))
			return
		}
		o.sharding = &cfg
	}
}

// splits reports whether a loop with s (nil: without WithSharding) splits
// the objects of the handler called name between its replicas.
func (s *Sharding) splits(name string) bool {
	return s != nil && !slices.Contains(s.Secondary, name)
}

// sharder is one Run's part in its ring: the shard.Replica that decides
// which slots it may dispatch, driven by a loop that Steps it every
// RetryPeriod and whenever a Lease of the ring changes hands or labels,
// and the snapshot of what it holds that the event path reads.
//
// The rule of the event path: an event of a slot this replica holds (at its
// last Step) is queued, any other is dropped before it reaches the queue
// (accepts); a call starts only under the slot's term (begin, through
// Replica.Begin), else its event is dropped; when a Step finds a slot under
// a term it did not hold before (newly acquired, or lost and taken again),
// it queues every cached object of that slot, as an initial list (low
// lane): whatever was dropped while the slot was not this replica's is
// dispatched from the cache's current state.
type sharder struct {
	cfg       *Sharding
	ring      shard.Ring
	replica   *shard.Replica
	secondary map[string]bool
	q         *workQueue
	logger    logr.Logger
	clock     clock.WithTicker

	held atomic.Pointer[shard.Set] // the slots held at the last Step

	poke chan struct{} // a Step is wanted soon (a drained slot, a Lease changed hands)

	// By slot, the term of the last Step and the context of its calls,
	// cancelled when the term ends. Only the Step loop writes them; mu
	// guards them against begin.
	mu     sync.Mutex
	terms  []shard.Term
	ctxs   []context.Context
	cancel []context.CancelFunc
	parent context.Context // the Run's: the parent of every call's context

	leases cache.SharedIndexInformer // on the ring's Leases: what Steps read

	lastErr atomic.Pointer[string] // the last Step's error, "" if none
}

// newSharder returns the sharder of a Run of q; it starts nothing.
func newSharder(ctx context.Context, q *workQueue, logger logr.Logger) (*sharder, error) {
	cfg := q.opts.sharding
	ring, err := shard.NewRing(cfg.Slots)
	if err != nil {
		return nil, err
	}
	inf := cfg.newLeaseInformer()
	leases, err := cfg.newLeases(q.opts.clock, logger, inf.GetStore())
	if err != nil {
		return nil, err
	}
	replica, err := shard.NewReplica(shard.Config{
		Ring: ring, Name: cfg.Name, Identity: cfg.Identity, Leases: leases,
		FormationDelay: max(cfg.FormationDelay, 0), Clock: q.opts.clock,
	})
	if err != nil {
		return nil, err
	}
	s := &sharder{
		cfg: cfg, ring: ring, replica: replica, q: q, clock: q.opts.clock,
		logger:    logger.WithValues("ring", cfg.Namespace+"/"+cfg.Name, "identity", cfg.Identity),
		secondary: make(map[string]bool, len(cfg.Secondary)),
		poke:      make(chan struct{}, 1),
		terms:     make([]shard.Term, ring.Slots()),
		ctxs:      make([]context.Context, ring.Slots()),
		cancel:    make([]context.CancelFunc, ring.Slots()),
		parent:    ctx,
		leases:    inf,
	}
	for _, name := range cfg.Secondary {
		s.secondary[name] = true
	}
	s.held.Store(&shard.Set{})
	return s, nil
}

// uidOf returns the UID of an event's object, false when it has none to
// read (a key without object).
func uidOf(obj interface{}) (types.UID, bool) {
	if obj == nil {
		return "", false
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", false
	}
	return m.GetUID(), true
}

// accepts reports whether an event of kind about obj is queued: always for
// a secondary handler, otherwise when the object's slot was held at the
// last Step. (An EventLoop's events all carry their object: informers
// deliver it, Enqueue reads it from the cache.)
func (s *sharder) accepts(kind string, obj interface{}) bool {
	if s.secondary[kind] {
		return true
	}
	uid, ok := uidOf(obj)
	return ok && s.held.Load().Has(s.ring.SlotOf(uid))
}

// noSlot is begin's slot for a call that counts under no slot: a secondary
// handler's.
const noSlot = -1

// begin reports whether the call of an event of kind about obj may start,
// and if so under which slot and with which parent context; the caller
// calls end(slot) when it returns.
func (s *sharder) begin(kind string, obj interface{}) (int, context.Context, bool) {
	if s.secondary[kind] {
		return noSlot, nil, true
	}
	uid, ok := uidOf(obj)
	if !ok {
		return noSlot, nil, false
	}
	slot := s.ring.SlotOf(uid)
	if !s.replica.Begin(slot) {
		return slot, nil, false
	}
	s.mu.Lock()
	ctx := s.ctxs[slot]
	s.mu.Unlock()
	if ctx == nil {
		// Begun under a term the loop has not seen yet: the Run's context.
		ctx = s.parent
	}
	return slot, ctx, true
}

// end ends a call that begin allowed; the last call of a slot being handed
// over asks for a Step, which releases it.
func (s *sharder) end(slot int) {
	if slot != noSlot && s.replica.End(slot) {
		s.wake()
	}
}

// wake asks the loop for a Step soon.
func (s *sharder) wake() {
	select {
	case s.poke <- struct{}{}:
	default:
	}
}

// run Steps the replica until ctx is done: once the informer on the ring's
// Leases has synced, at once, every RetryPeriod, when woken, and when the
// ring's formation delay ends.
func (s *sharder) run(ctx context.Context) {
	if !cache.WaitForCacheSync(ctx.Done(), s.leases.HasSynced) {
		return
	}
	t := s.clock.NewTicker(s.cfg.RetryPeriod)
	defer t.Stop()
	for {
		s.step(ctx)
		var formed clock.Timer
		var formedC <-chan time.Time
		if until, ok := s.replica.FormingUntil(); ok {
			formed = s.clock.NewTimer(until.Sub(s.clock.Now()))
			formedC = formed.C()
		}
		select {
		case <-ctx.Done():
		case <-t.C():
		case <-s.poke:
		case <-formedC:
		}
		if formed != nil {
			formed.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// step makes one Step of the protocol, then applies what it changed: the
// held snapshot, the slots' contexts, the metrics, and the listing of the
// slots it newly holds.
func (s *sharder) step(ctx context.Context) {
	stepCtx, cancel := context.WithTimeout(ctx, s.cfg.RenewDeadline)
	err := s.replica.Step(stepCtx)
	cancel()
	msg := ""
	if err != nil && ctx.Err() == nil {
		s.logger.V(1).Info("Shard step incomplete; the next one tries again", "err", err)
		msg = err.Error()
	}
	s.lastErr.Store(&msg)
	s.apply(s.replica.Terms())
}

// apply moves the sharder to the terms Step left: it closes the slots whose
// term ended (cancelling their calls), opens the new ones, and lists the
// cached objects of those.
func (s *sharder) apply(terms []shard.Term) {
	var gained, lost shard.Set
	var held shard.Set
	s.mu.Lock()
	for slot, t := range terms {
		if t != nil {
			held = held.Add(slot)
		}
		if t == s.terms[slot] {
			continue
		}
		if s.terms[slot] != nil {
			s.cancel[slot]()
			s.ctxs[slot], s.cancel[slot] = nil, nil
			lost = lost.Add(slot)
		}
		if t != nil {
			s.ctxs[slot], s.cancel[slot] = context.WithCancel(s.parent)
			gained = gained.Add(slot)
		}
		s.terms[slot] = t
	}
	s.mu.Unlock()
	// First the snapshot, so that events of the new slots are queued from
	// here on, then the listing: nothing falls between the two.
	s.held.Store(&held)
	if m := s.q.metrics; m != nil {
		m.shardSlots.WithLabelValues(s.q.name).Set(float64(held.Len()))
		if lost.Len() > 0 {
			m.shardHandovers.WithLabelValues(s.q.name, "out").Add(float64(lost.Len()))
		}
		if gained.Len() > 0 {
			m.shardHandovers.WithLabelValues(s.q.name, "in").Add(float64(gained.Len()))
		}
	}
	s.narrow(held)
	if lost.Len() > 0 {
		s.logger.Info("Stopped dispatching shard slots", "slots", lost.String(), "held", held.String())
	}
	if gained.Len() > 0 {
		n := s.list(gained)
		s.logger.Info("Dispatching shard slots", "slots", gained.String(), "held", held.String(), "queued", n)
	}
}

// slotInformer is an informer that lists and watches only the slots it is
// told (the server-side shard selectors of ShardedInformer).
type slotInformer interface {
	// setSlots makes the informer list and watch the slots s of ring r,
	// and no others: it starts what is new and stops the rest.
	setSlots(r shard.Ring, s shard.Set)
}

// narrow tells the sharded handlers' informers which slots to list and
// watch: those held, and those whose calls have not all returned yet (a
// call of a slot being handed over still finds its object in the cache).
func (s *sharder) narrow(held shard.Set) {
	keep := held
	for slot := range s.ring.Slots() {
		if s.replica.InFlight(slot) > 0 {
			keep = keep.Add(slot)
		}
	}
	for kind, k := range *s.q.kinds.Load() {
		if si, ok := k.informer.(slotInformer); ok && !s.secondary[kind] {
			si.setSlots(s.ring, keep)
		}
	}
}

// list queues, in the low lane, an add of every cached object of the
// sharded handlers that falls in slots, newest first (queueListed), and
// returns how many.
func (s *sharder) list(slots shard.Set) int {
	n := 0
	for kind, k := range *s.q.kinds.Load() {
		if s.secondary[kind] || k.store == nil {
			continue
		}
		var objs []interface{}
		for _, obj := range k.store.List() {
			if uid, ok := uidOf(obj); ok && slots.Has(s.ring.SlotOf(uid)) {
				objs = append(objs, obj)
			}
		}
		n += s.q.queueListed(kind, objs, k.store)
	}
	return n
}

// leave hands every slot over: after the workers stopped (their calls
// returned), Steps release the membership and every slot, so the other
// replicas take them over at once. A slot whose calls did not return (the
// drain timeout ran out) is left to expire.
func (s *sharder) leave(ctx context.Context) {
	s.replica.Leave()
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RenewDeadline)
	defer cancel()
	for !s.replica.Left() && ctx.Err() == nil {
		if err := s.replica.Step(ctx); err != nil {
			s.logger.V(1).Info("Leaving the ring: a step failed", "err", err)
		}
		if !s.replica.Left() {
			// Calls of the drain timeout are still running: wait for them,
			// or let the Leases expire.
			select {
			case <-ctx.Done():
			case <-s.poke:
			case <-s.clock.After(s.cfg.RetryPeriod):
			}
		}
	}
	s.apply(make([]shard.Term, s.ring.Slots()))
	if s.replica.Left() {
		s.logger.Info("Left the ring: every slot released")
	} else {
		s.logger.Info("Left the ring: slots still in use are left to expire")
	}
}

// debugRing is the replica's ring for DebugHandler.
func (s *sharder) debugRing() *DebugRing {
	rep := s.replica
	d := &DebugRing{
		Namespace: s.cfg.Namespace, Name: s.cfg.Name, Identity: s.cfg.Identity, Slots: s.ring.Slots(),
		Held: rep.Held().String(), Target: rep.Target().String(), Members: rep.Members(),
		Ready: rep.Ready(), Draining: []DebugDrainingSlot{},
	}
	if d.Members == nil {
		d.Members = []string{}
	}
	for _, slot := range rep.Draining().Slots() {
		d.Draining = append(d.Draining, DebugDrainingSlot{Slot: slot, InFlight: rep.InFlight(slot)})
	}
	if m := rep.Membership(); m != nil && m.Dispatching() {
		d.MembershipDeadline = m.Deadline()
	}
	if e := s.lastErr.Load(); e != nil {
		d.LastStepError = *e
	}
	return d
}

// readiness says whether the replica holds its share of the ring and
// dispatches it, or knows it is a spare. A Step claims slots before apply
// opens them to events: until then the replica holds its share but drops
// its events, and is not ready.
func (s *sharder) readiness() error {
	if s.replica.Ready() && *s.held.Load() == s.replica.Target() {
		return nil
	}
	return fmt.Errorf("holds slots %s of ring %s/%s, not yet its share %s",
		s.replica.Held(), s.cfg.Namespace, s.cfg.Name, s.replica.Target())
}

// newLeaseInformer returns the informer on the ring's Leases (those with
// its LabelRing) that a Run reads them through: its store is the lease
// Pool's Cache, so a Step reads the ring without a request.
func (s *Sharding) newLeaseInformer() cache.SharedIndexInformer {
	leases := s.Client.Leases(s.Namespace)
	sel := labels.Set{shard.LabelRing: s.Name}.String()
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return leases.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return leases.Watch(ctx, o)
		},
	}
	// A ring has a few dozen Leases: a plain LIST starts the watch, which
	// also serves fake clients that cannot stream the list.
	return cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, plainList{}), &coordinationapiv1.Lease{}, 0, cache.Indexers{})
}

// plainList tells a reflector to start with a LIST, not a watch-list.
type plainList struct{}

func (plainList) IsWatchListSemanticsUnSupported() bool { return true }

// watchLeases runs the informer on the ring's Leases until ctx is done and
// wakes the loop whenever one of them changes hands or labels (a replica
// leaving); a renewal does not: a released slot is taken over within a
// round trip, not a RetryPeriod.
func (s *sharder) watchLeases(ctx context.Context) {
	_, _ = s.leases.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(interface{}) { s.wake() },
		UpdateFunc: func(oldObj, newObj interface{}) {
			o, ok1 := oldObj.(*coordinationapiv1.Lease)
			n, ok2 := newObj.(*coordinationapiv1.Lease)
			if !ok1 || !ok2 || ptr.Deref(o.Spec.HolderIdentity, "") != ptr.Deref(n.Spec.HolderIdentity, "") || !maps.Equal(o.Labels, n.Labels) {
				s.wake()
			}
		},
		DeleteFunc: func(interface{}) { s.wake() },
	})
	s.leases.RunWithContext(ctx)
}

// newLeases returns the Leases of the ring for one Run: a lease.Pool, the
// Lease mechanism leader election uses too, reading the ring through
// cache (the store of the Run's informer on the ring's Leases; nil: with
// requests). It makes no request.
func (s *Sharding) newLeases(c clock.Clock, logger logr.Logger, cache lease.Cache) (shard.Leases, error) {
	pool, err := lease.NewPool(lease.PoolConfig{
		Client:        s.Client,
		Namespace:     s.Namespace,
		Identity:      s.Identity,
		LeaseDuration: s.LeaseDuration,
		RenewDeadline: s.RenewDeadline,
		Clock:         c,
		Logger:        logger,
		Cache:         cache,
	})
	if err != nil {
		return nil, err
	}
	return shardleases.New(pool), nil
}
