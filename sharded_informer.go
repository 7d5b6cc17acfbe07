package kubehandler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/kubehandler/kubehandler/internal/shard"
)

// ShardedInformerConfig configures NewShardedInformer. List, Watch and
// Object are required.
type ShardedInformerConfig struct {
	// List and Watch reach the resource, as a cache.ListWatch's
	// ListWithContextFunc and WatchFuncWithContext do, e.g.
	//
	//	List: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
	//		return client.CoreV1().ConfigMaps(ns).List(ctx, o)
	//	},
	//
	// The ShardedInformer sets ListOptions.ShardSelector; the functions must
	// pass the options on as they get them.
	List  cache.ListWithContextFunc
	Watch cache.WatchFuncWithContext
	// Client is the client behind List and Watch, if any (the clientset).
	// As for client-go's informer factories, it tells whether the initial
	// list may be streamed through a watch: client-go's fake clientsets and
	// kubehandlertest's Source say it may not. Optional.
	Client any
	// Object is an object of the type listed, e.g. &corev1.ConfigMap{}.
	Object runtime.Object
	// Indexers are the indexers of every slot's cache, as in
	// cache.NewSharedIndexInformer; cache.NamespaceIndex is the one that
	// generated listers use. Optional.
	Indexers cache.Indexers
	// ResyncPeriod is the default resync period of the handlers, as in
	// cache.NewSharedIndexInformer; 0 for none.
	ResyncPeriod time.Duration
}

// ShardedInformer is a cache.SharedIndexInformer for a sharded EventLoop
// (WithSharding) that lists and watches only the slots its replica holds,
// through the API server's shard selectors (KEP-5866): each replica caches
// its share of the objects, not all of them. A handler returns it from
// GetInformer, and listers read its GetIndexer as any informer's:
//
//	inf, err := kubehandler.NewShardedInformer(kubehandler.ShardedInformerConfig{
//		List:     func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return cms.List(ctx, o) },
//		Watch:    func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return cms.Watch(ctx, o) },
//		Client:   clientset,
//		Object:   &corev1.ConfigMap{},
//		Indexers: cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
//	})
//	lister := corelisters.NewConfigMapLister(inf.GetIndexer())
//	go inf.RunWithContext(ctx)
//
// Inside, it runs one client-go informer per slot it is told, with that
// slot's shard selector. The loop tells it the slots it holds, and those
// whose calls have not returned yet, at every change: a slot's informer
// starts when the slot comes, and its initial list reaches the handlers as
// adds in the initial list (the low lane); the loop's own handler takes
// it in one piece, ahead of the events that follow it, and queues it
// newest first by resourceVersion, so that what changed while the slot
// was changing hands waits least. When the slot goes, its
// informer stops and its cache is dropped, with no delete events (the
// objects were not deleted; the replica that takes the slot lists them).
//
// At Run it asks the server whether it honours shard selectors
// (the ShardedListAndWatch feature gate), retrying while the server does not
// answer. If it does not, the ShardedInformer logs so once and runs one
// informer over every object, as a plain informer (a change of slots then
// changes nothing): each replica caches everything, and the loop's
// client-side filtering dispatches only the objects of its slots, which is
// always correct.
//
// Until a sharded loop tells it its slots it lists nothing, in either
// mode, so a loop without WithSharding, and a handler named in
// Sharding.Secondary, would get nothing from it: Run refuses such a
// handler; give it a plain informer. The loop tells it after its caches
// synced, at its first step in the ring, and again at every change of the
// slots it holds. HasSynced, of the informer and of each handler's
// registration, is true once Run has the server's answer and while every
// current slot's informer has synced (and delivered its initial list to
// the handler); with no slot, it is true. It can turn false again when a
// new slot comes, until that slot's informer syncs.
//
// Its store (GetStore, GetIndexer) is a read-only view over the slots'
// caches: reads (List, ListKeys, Get, GetByKey and the index reads) see
// every slot's objects; Add, Update, Delete and Replace return an error,
// Resync and Bookmark do nothing, and LastStoreSyncResourceVersion is "".
// Each handler added gets the events of every slot, one at a time, as
// client-go's informers deliver them. SetTransform and the watch error
// handlers must be set before Run. Once Run returns it holds nothing.
//
// Each slot held costs a list and a watch: a ring of 16 to 64 slots suits
// this as it suits the Leases.
type ShardedInformer struct {
	cfg ShardedInformerConfig

	mu        sync.Mutex
	ring      shard.Ring
	told      bool      // setSlots was called: ring and want are set
	want      shard.Set // the slots told
	mode      informerMode
	parts     map[int]*slotPart // the running informers by slot, fullSlot in the client-side mode
	regs      map[*shardedRegistration]bool
	indexers  cache.Indexers
	transform cache.TransformFunc
	watchErr  cache.WatchErrorHandlerWithContext
	synced    syncGate        // the informer's own sync
	ctx       context.Context // the Run's, once it decided the mode
	started   bool
	stopped   bool

	wg sync.WaitGroup // the slots' informers and sync watchers; Run waits for them
}

var (
	_ cache.SharedIndexInformer = (*ShardedInformer)(nil)
	_ slotInformer              = (*ShardedInformer)(nil)
)

// informerMode is what Run decided from the server's answer.
type informerMode int

const (
	modeUndecided  informerMode = iota // Run has not asked yet
	modeServerSide                     // one informer per slot, with its shard selector
	modeClientSide                     // one informer of everything: the server ignores shard selectors
)

// fullSlot is the key of the one informer of the client-side mode.
const fullSlot = -1

// slotPart is the informer of one slot: its objects, and the
// registrations of the ShardedInformer's handlers on it.
type slotPart struct {
	slot     int
	informer cache.SharedIndexInformer
	ctx      context.Context
	cancel   context.CancelFunc
	regs     map[*shardedRegistration]cache.ResourceEventHandlerRegistration
	// The initialListers not yet handed the initial list (their listedLater
	// knows too, but its lock is taken before the store's, s.mu, not under it).
	unlisted map[*shardedRegistration]bool
}

// errReadOnly is returned by writes to a ShardedInformer's store.
var errReadOnly = errors.New("kubehandler: the store of a ShardedInformer is read-only: its slots' informers fill it")

// NewShardedInformer returns a ShardedInformer, or an error if cfg lacks
// List, Watch or Object. It starts nothing: run it with RunWithContext.
func NewShardedInformer(cfg ShardedInformerConfig) (*ShardedInformer, error) {
	var errs []error
	if cfg.List == nil {
		errs = append(errs, errors.New("no List"))
	}
	if cfg.Watch == nil {
		errs = append(errs, errors.New("no Watch"))
	}
	if cfg.Object == nil {
		errs = append(errs, errors.New("no Object"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("kubehandler: NewShardedInformer: %w", errors.Join(errs...))
	}
	indexers := cache.Indexers{}
	for name, f := range cfg.Indexers {
		indexers[name] = f
	}
	cfg.Indexers = nil
	return &ShardedInformer{
		cfg:      cfg,
		parts:    map[int]*slotPart{},
		regs:     map[*shardedRegistration]bool{},
		indexers: indexers,
		synced:   newSyncGate(),
	}, nil
}

// setSlots makes the informer list and watch the slots s of ring r, and no
// others (slotInformer). Before Run it is remembered; in the client-side
// mode its first call starts the informer of everything, and the others
// change nothing.
func (s *ShardedInformer) setSlots(r shard.Ring, set shard.Set) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.told && r != s.ring {
		// Another ring (a later Run with other Slots): start afresh.
		s.stopPartsLocked()
	}
	s.ring, s.want, s.told = r, set, true
	if !s.stopped {
		s.reconcileLocked()
	}
}

// Run runs the informer until stopCh is closed; see RunWithContext.
func (s *ShardedInformer) Run(stopCh <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-stopCh:
			cancel()
		case <-ctx.Done():
		}
	}()
	s.RunWithContext(ctx)
}

// detectRetry bounds the wait between two attempts to ask the server
// whether it honours shard selectors.
const (
	detectRetryFirst = 200 * time.Millisecond
	detectRetryMax   = 30 * time.Second
)

// RunWithContext asks the server whether it honours shard selectors, then
// runs the slots' informers (or the one informer of everything) until ctx
// is done, and returns once they all stopped. It logs to ctx's logger. A
// second call returns at once.
func (s *ShardedInformer) RunWithContext(ctx context.Context) {
	logger := klog.FromContext(ctx)
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		utilruntime.HandleErrorWithContext(ctx, nil, "kubehandler: a ShardedInformer runs once; this Run returns")
		return
	}
	s.started = true
	s.mu.Unlock()

	d, ok := s.detect(ctx)
	s.mu.Lock()
	if ok {
		s.ctx = ctx
		if d.Honoured {
			logger.V(1).Info("The server honours shard selectors: listing and watching by shard slot", "reason", d.Reason)
			s.mode = modeServerSide
		} else {
			logger.Info("The server ignores shard selectors: falling back to client-side filtering over a full cache", "reason", d.Reason)
			s.mode = modeClientSide
		}
		s.reconcileLocked()
		s.mu.Unlock()
		<-ctx.Done()
		s.mu.Lock()
	}
	s.stopped = true
	s.stopPartsLocked()
	regs := make([]*shardedRegistration, 0, len(s.regs))
	for r := range s.regs {
		regs = append(regs, r)
	}
	s.mu.Unlock()
	for _, r := range regs {
		r.finish()
	}
	s.wg.Wait()
}

// detect asks the server whether it honours shard selectors until it
// answers; false if ctx ends first.
func (s *ShardedInformer) detect(ctx context.Context) (shard.Detection, bool) {
	delay := detectRetryFirst
	for {
		d, err := shard.Detect(ctx, s.cfg.List)
		if err == nil {
			return d, true
		}
		if ctx.Err() != nil {
			return shard.Detection{}, false
		}
		utilruntime.HandleErrorWithContext(ctx, err, "kubehandler: ShardedInformer: cannot tell whether the server honours shard selectors; asking again", "after", delay)
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return shard.Detection{}, false
		case <-t.C:
		}
		delay = min(2*delay, detectRetryMax)
	}
}

// reconcileLocked starts the informers of the slots wanted that do not
// run, and stops those that run and are not wanted; in the client-side
// mode, it starts the informer of everything once the slots were told.
// s.mu must be held.
func (s *ShardedInformer) reconcileLocked() {
	defer s.refreshLocked()
	switch {
	case s.mode == modeUndecided || !s.told:
		return
	case s.mode == modeClientSide:
		if _, ok := s.parts[fullSlot]; !ok {
			s.startPartLocked(fullSlot, "")
		}
		return
	}
	for slot, p := range s.parts {
		if !s.want.Has(slot) {
			s.stopPartLocked(p)
		}
	}
	for _, slot := range s.want.Intersect(s.ring.All()).Slots() {
		if _, ok := s.parts[slot]; ok {
			continue
		}
		sel, err := s.ring.Selector(shard.NewSet(slot))
		if err != nil {
			// A one-slot set of the ring always has a selector.
			utilruntime.HandleErrorWithContext(s.ctx, err, "kubehandler: ShardedInformer: no selector for a slot", "slot", slot)
			continue
		}
		s.startPartLocked(slot, sel.String())
	}
}

// startPartLocked starts the informer of slot, listing and watching with
// selector ("" for everything), with every handler added. s.mu must be
// held, and s.ctx set.
func (s *ShardedInformer) startPartLocked(slot int, selector string) {
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			if selector != "" {
				o.ShardSelector = selector
			}
			return s.cfg.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			if selector != "" {
				o.ShardSelector = selector
			}
			return s.cfg.Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformerWithOptions(cache.ToListWatcherWithWatchListSemantics(lw, s.cfg.Client), s.cfg.Object,
		cache.SharedIndexInformerOptions{ResyncPeriod: s.cfg.ResyncPeriod, Indexers: copyIndexers(s.indexers)})
	// Neither fails on an informer that has not started.
	if s.transform != nil {
		_ = inf.SetTransform(s.transform)
	}
	if s.watchErr != nil {
		_ = inf.SetWatchErrorHandlerWithContext(s.watchErr)
	}
	ctx, cancel := context.WithCancel(s.ctx)
	p := &slotPart{slot: slot, informer: inf, ctx: ctx, cancel: cancel, regs: map[*shardedRegistration]cache.ResourceEventHandlerRegistration{},
		unlisted: map[*shardedRegistration]bool{}}
	for r := range s.regs {
		s.addToPartLocked(p, r)
	}
	s.parts[slot] = p
	if slot != fullSlot {
		klog.FromContext(s.ctx).V(2).Info("Listing and watching a shard slot", "slot", slot, "selector", selector)
	}
	s.wg.Go(func() { inf.RunWithContext(ctx) })
	s.whenDone(ctx, inf.HasSyncedChecker())
}

// addToPartLocked adds the registration r's handler to p's informer.
// An initialLister gets the initial list in one piece (listedLater),
// before the registration counts as synced (regSyncedLocked).
// s.mu must be held.
func (s *ShardedInformer) addToPartLocked(p *slotPart, r *shardedRegistration) {
	var handler cache.ResourceEventHandler = r
	lister, lists := r.handler.(initialLister)
	var later *listedLater
	if lists {
		later = &listedLater{shardedRegistration: r, lister: lister, store: shardedIndexer{s}}
		handler = later
	}
	h, err := p.informer.AddEventHandlerWithOptions(handler, r.opts)
	if err != nil {
		// Only a stopped informer refuses, and a stopped part is gone.
		utilruntime.HandleErrorWithContext(p.ctx, err, "kubehandler: ShardedInformer: adding a handler to a slot's informer", "slot", p.slot)
		return
	}
	p.regs[r] = h
	if !lists {
		s.whenDone(p.ctx, h.HasSyncedChecker())
		return
	}
	p.unlisted[r] = true
	s.wg.Go(func() {
		select {
		case <-h.HasSyncedChecker().Done():
		case <-p.ctx.Done():
			return
		}
		// Outside s.mu: the handler reads the store, whose reads take it.
		later.hand()
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(p.unlisted, r)
		s.refreshLocked()
	})
}

// stopPartLocked stops p's informer and drops its cache; its handlers get
// no delete: the objects were not deleted. s.mu must be held.
func (s *ShardedInformer) stopPartLocked(p *slotPart) {
	p.cancel()
	delete(s.parts, p.slot)
	if p.slot != fullSlot && !s.stopped {
		klog.FromContext(s.ctx).V(2).Info("Stopped listing and watching a shard slot", "slot", p.slot)
	}
}

func (s *ShardedInformer) stopPartsLocked() {
	for _, p := range s.parts {
		s.stopPartLocked(p)
	}
}

// whenDone refreshes the sync gates once c is done, unless ctx ends first.
func (s *ShardedInformer) whenDone(ctx context.Context, c cache.DoneChecker) {
	s.wg.Go(func() {
		select {
		case <-c.Done():
			s.mu.Lock()
			s.refreshLocked()
			s.mu.Unlock()
		case <-ctx.Done():
		}
	})
}

// refreshLocked opens or closes the sync gates of the informer and of each
// registration. s.mu must be held.
func (s *ShardedInformer) refreshLocked() {
	s.synced.set(s.syncedLocked())
	for r := range s.regs {
		r.synced.set(s.regSyncedLocked(r))
	}
}

// syncedLocked reports whether Run decided its mode and every slot's
// informer synced.
func (s *ShardedInformer) syncedLocked() bool {
	if s.mode == modeUndecided {
		return false
	}
	for _, p := range s.parts {
		if !p.informer.HasSynced() {
			return false
		}
	}
	return true
}

// regSyncedLocked reports whether Run decided its mode and every slot's
// informer delivered its initial list to r.
func (s *ShardedInformer) regSyncedLocked(r *shardedRegistration) bool {
	if s.mode == modeUndecided {
		return false
	}
	for _, p := range s.parts {
		h, ok := p.regs[r]
		if !ok || !h.HasSynced() || p.unlisted[r] {
			return false
		}
	}
	return true
}

// AddEventHandler adds handler with the default resync period; see
// AddEventHandlerWithOptions.
func (s *ShardedInformer) AddEventHandler(handler cache.ResourceEventHandler) (cache.ResourceEventHandlerRegistration, error) {
	return s.AddEventHandlerWithOptions(handler, cache.HandlerOptions{})
}

// AddEventHandlerWithResyncPeriod adds handler with its own resync period;
// see AddEventHandlerWithOptions.
func (s *ShardedInformer) AddEventHandlerWithResyncPeriod(handler cache.ResourceEventHandler, resyncPeriod time.Duration) (cache.ResourceEventHandlerRegistration, error) {
	return s.AddEventHandlerWithOptions(handler, cache.HandlerOptions{ResyncPeriod: &resyncPeriod})
}

// AddEventHandlerWithOptions adds handler to every slot's informer, those
// running and those to come, with options. The handler is called one
// event at a time, the events of all slots mixed (each object's in order:
// an object stays in its slot). It returns an error once Run returned.
func (s *ShardedInformer) AddEventHandlerWithOptions(handler cache.ResourceEventHandler, options cache.HandlerOptions) (cache.ResourceEventHandlerRegistration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return nil, fmt.Errorf("kubehandler: handler %T was not added to the ShardedInformer: it has stopped", handler)
	}
	r := &shardedRegistration{
		s: s, handler: handler, opts: options, synced: newSyncGate(),
		finished: make(chan struct{}), shutdown: make(chan struct{}),
	}
	s.regs[r] = true
	for _, p := range s.parts {
		s.addToPartLocked(p, r)
	}
	r.synced.set(s.regSyncedLocked(r))
	return r, nil
}

// RemoveEventHandler removes a handler that AddEventHandler added: no
// event is delivered to it once a call in progress has returned
// (cache.ShutDownEventHandler waits for that). It is idempotent, and an
// error for a registration of another informer.
func (s *ShardedInformer) RemoveEventHandler(handle cache.ResourceEventHandlerRegistration) error {
	r, ok := handle.(*shardedRegistration)
	if !ok || r.s != s {
		return fmt.Errorf("kubehandler: ShardedInformer: %T is not a registration of this informer", handle)
	}
	s.mu.Lock()
	if s.regs[r] {
		delete(s.regs, r)
		for _, p := range s.parts {
			if h, ok := p.regs[r]; ok {
				_ = p.informer.RemoveEventHandler(h) // a registration of p's informer
				delete(p.regs, r)
			}
		}
	}
	s.mu.Unlock()
	r.finish()
	return nil
}

// GetStore returns the read-only view over the slots' caches; see
// ShardedInformer.
func (s *ShardedInformer) GetStore() cache.Store { return shardedIndexer{s} }

// GetIndexer returns the read-only view over the slots' caches, with
// their indexes: generated listers work over it.
func (s *ShardedInformer) GetIndexer() cache.Indexer { return shardedIndexer{s} }

// AddIndexers adds indexers to every slot's cache, those running and those
// to come. An indexer whose name is taken is an error, and nothing is
// added.
func (s *ShardedInformer) AddIndexers(indexers cache.Indexers) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range indexers {
		if _, ok := s.indexers[name]; ok {
			return fmt.Errorf("kubehandler: ShardedInformer: indexer conflict: %s", name)
		}
	}
	for _, p := range s.parts {
		if err := p.informer.AddIndexers(indexers); err != nil {
			return err
		}
	}
	for name, f := range indexers {
		s.indexers[name] = f
	}
	return nil
}

// GetController returns a controller that does nothing but report the
// informer's sync, as client-go's informers do (the method is deprecated).
func (s *ShardedInformer) GetController() cache.Controller { return shardedController{s} }

// HasSynced reports whether Run has the server's answer and every current
// slot's informer has synced: true with no slot.
func (s *ShardedInformer) HasSynced() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.syncedLocked()
}

// HasSyncedChecker is HasSynced as a DoneChecker: its Done channel is
// closed while the informer is synced.
func (s *ShardedInformer) HasSyncedChecker() cache.DoneChecker {
	return gateChecker{s: s, gate: &s.synced, name: "ShardedInformer"}
}

// LastSyncResourceVersion returns the resourceVersion the informer of
// everything last synced at in the client-side mode; "" otherwise (each
// slot has its own).
func (s *ShardedInformer) LastSyncResourceVersion() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.parts[fullSlot]; ok {
		return p.informer.LastSyncResourceVersion()
	}
	return ""
}

// SetWatchErrorHandler sets the handler of every slot's watch errors; see
// SetWatchErrorHandlerWithContext.
func (s *ShardedInformer) SetWatchErrorHandler(handler cache.WatchErrorHandler) error {
	return s.SetWatchErrorHandlerWithContext(func(_ context.Context, r *cache.Reflector, err error) { handler(r, err) })
}

// SetWatchErrorHandlerWithContext sets the handler of every slot's watch
// errors (cache.SharedInformer's). It is an error once Run started.
func (s *ShardedInformer) SetWatchErrorHandlerWithContext(handler cache.WatchErrorHandlerWithContext) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("kubehandler: ShardedInformer: the watch error handler must be set before Run")
	}
	s.watchErr = handler
	return nil
}

// SetTransform sets the transform of every slot's informer
// (cache.SharedInformer's). It is an error once Run started.
func (s *ShardedInformer) SetTransform(handler cache.TransformFunc) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return errors.New("kubehandler: ShardedInformer: the transform must be set before Run")
	}
	s.transform = handler
	return nil
}

// IsStopped reports whether Run has stopped (or is stopping).
func (s *ShardedInformer) IsStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// indexersLocked returns the slots' caches, in slot order. s.mu must be
// held.
func (s *ShardedInformer) indexersLocked() []cache.Indexer {
	slots := make([]int, 0, len(s.parts))
	for slot := range s.parts {
		slots = append(slots, slot)
	}
	slices.Sort(slots)
	out := make([]cache.Indexer, len(slots))
	for i, slot := range slots {
		out[i] = s.parts[slot].informer.GetIndexer()
	}
	return out
}

func copyIndexers(in cache.Indexers) cache.Indexers {
	out := make(cache.Indexers, len(in))
	for name, f := range in {
		out[name] = f
	}
	return out
}

// shardedIndexer is the read-only view over a ShardedInformer's slots'
// caches. A key is in one slot's cache at most, except for a moment when
// an object deleted and created again under its name (a new UID) is in the
// new slot before the old slot saw the delete: Get then returns the one of
// the lower slot.
type shardedIndexer struct {
	s *ShardedInformer
}

var _ cache.Indexer = shardedIndexer{}

func (v shardedIndexer) caches() []cache.Indexer {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	return v.s.indexersLocked()
}

// Add returns an error: the view is read-only.
func (v shardedIndexer) Add(interface{}) error { return errReadOnly }

// Update returns an error: the view is read-only.
func (v shardedIndexer) Update(interface{}) error { return errReadOnly }

// Delete returns an error: the view is read-only.
func (v shardedIndexer) Delete(interface{}) error { return errReadOnly }

// Replace returns an error: the view is read-only.
func (v shardedIndexer) Replace([]interface{}, string) error { return errReadOnly }

// Resync does nothing: the slots' informers resync their own caches.
func (v shardedIndexer) Resync() error { return nil }

// Bookmark does nothing: the slots' informers track their own versions.
func (v shardedIndexer) Bookmark(string) {}

// LastStoreSyncResourceVersion is "": each slot has its own.
func (v shardedIndexer) LastStoreSyncResourceVersion() string { return "" }

// List returns the objects of every slot.
func (v shardedIndexer) List() []interface{} {
	var out []interface{}
	for _, c := range v.caches() {
		out = append(out, c.List()...)
	}
	return out
}

// ListKeys returns the keys of every slot's objects.
func (v shardedIndexer) ListKeys() []string {
	var out []string
	for _, c := range v.caches() {
		out = append(out, c.ListKeys()...)
	}
	return out
}

// Get returns the cached object with obj's key, from whichever slot holds
// it.
func (v shardedIndexer) Get(obj interface{}) (interface{}, bool, error) {
	key, err := cache.MetaNamespaceKeyFunc(obj)
	if err != nil {
		return nil, false, cache.KeyError{Obj: obj, Err: err}
	}
	return v.GetByKey(key)
}

// GetByKey returns the cached object of key, from whichever slot holds it.
func (v shardedIndexer) GetByKey(key string) (interface{}, bool, error) {
	for _, c := range v.caches() {
		if item, ok, err := c.GetByKey(key); err != nil || ok {
			return item, ok, err
		}
	}
	return nil, false, nil
}

// index checks that the index named exists, as a client-go store does
// even when it is empty, and returns the slots' caches.
func (v shardedIndexer) index(name string) ([]cache.Indexer, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	if _, ok := v.s.indexers[name]; !ok {
		return nil, fmt.Errorf("index with name %s does not exist", name)
	}
	return v.s.indexersLocked(), nil
}

// Index returns, from every slot, the objects whose values of the index
// named intersect obj's.
func (v shardedIndexer) Index(indexName string, obj interface{}) ([]interface{}, error) {
	return v.collect(indexName, func(c cache.Indexer) ([]interface{}, error) { return c.Index(indexName, obj) })
}

// ByIndex returns, from every slot, the objects whose values of the index
// named include indexedValue.
func (v shardedIndexer) ByIndex(indexName, indexedValue string) ([]interface{}, error) {
	return v.collect(indexName, func(c cache.Indexer) ([]interface{}, error) { return c.ByIndex(indexName, indexedValue) })
}

func (v shardedIndexer) collect(indexName string, f func(cache.Indexer) ([]interface{}, error)) ([]interface{}, error) {
	caches, err := v.index(indexName)
	if err != nil {
		return nil, err
	}
	var out []interface{}
	for _, c := range caches {
		items, err := f(c)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
	}
	return out, nil
}

// IndexKeys returns, from every slot, the keys of the objects whose values
// of the index named include indexedValue.
func (v shardedIndexer) IndexKeys(indexName, indexedValue string) ([]string, error) {
	caches, err := v.index(indexName)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, c := range caches {
		keys, err := c.IndexKeys(indexName, indexedValue)
		if err != nil {
			return nil, err
		}
		out = append(out, keys...)
	}
	return out, nil
}

// ListIndexFuncValues returns the values of the index named over every
// slot, each once.
func (v shardedIndexer) ListIndexFuncValues(indexName string) []string {
	values := sets.New[string]()
	for _, c := range v.caches() {
		values.Insert(c.ListIndexFuncValues(indexName)...)
	}
	return sets.List(values)
}

// GetIndexers returns the indexers of the slots' caches.
func (v shardedIndexer) GetIndexers() cache.Indexers {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	return copyIndexers(v.s.indexers)
}

// AddIndexers adds indexers to every slot's cache; see
// ShardedInformer.AddIndexers.
func (v shardedIndexer) AddIndexers(indexers cache.Indexers) error { return v.s.AddIndexers(indexers) }

// shardedRegistration is a handler added to a ShardedInformer: it is added
// to every slot's informer, and calls the handler one event at a time.
type shardedRegistration struct {
	s       *ShardedInformer
	handler cache.ResourceEventHandler
	opts    cache.HandlerOptions
	synced  syncGate // guarded by s.mu

	mu       sync.Mutex  // held during a call of handler
	removed  atomic.Bool // no more calls
	finished chan struct{}
	finish1  sync.Once
	shutdown chan struct{} // closed once removed and no call is in progress
	watch1   sync.Once
}

// OnAdd passes an add on, unless the handler was removed.
func (r *shardedRegistration) OnAdd(obj interface{}, isInInitialList bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.removed.Load() {
		r.handler.OnAdd(obj, isInInitialList)
	}
}

// OnUpdate passes an update on, unless the handler was removed.
func (r *shardedRegistration) OnUpdate(oldObj, newObj interface{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.removed.Load() {
		r.handler.OnUpdate(oldObj, newObj)
	}
}

// OnDelete passes a delete on, unless the handler was removed.
func (r *shardedRegistration) OnDelete(obj interface{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.removed.Load() {
		r.handler.OnDelete(obj)
	}
}

// initialLister is a handler that takes a slot's initial list in one
// piece, once the slot's informer has delivered it, rather than add by
// add in the informer's order: the loop's own (informerHandler), which queues it
// newest first (workQueue.queueListed).
type initialLister interface {
	listed(objs []interface{}, store cache.Store)
}

// listedLater is the registration of an initialLister on one slot's
// informer. It gathers the adds of the initial list rather than pass them
// on, and hands them over in one piece (hand): once the registration has
// synced, or before the first event after the list if that comes first.
// So the handler gets the list exactly, before anything that happened
// after it, as it would have add by add.
type listedLater struct {
	*shardedRegistration
	lister initialLister
	store  cache.Store

	mu     sync.Mutex // held while the list is handed over
	list   []interface{}
	handed bool
}

func (l *listedLater) OnAdd(obj interface{}, isInInitialList bool) {
	if isInInitialList && l.gather(obj) {
		return
	}
	l.hand()
	l.shardedRegistration.OnAdd(obj, isInInitialList)
}

func (l *listedLater) OnUpdate(oldObj, newObj interface{}) {
	l.hand()
	l.shardedRegistration.OnUpdate(oldObj, newObj)
}

func (l *listedLater) OnDelete(obj interface{}) {
	l.hand()
	l.shardedRegistration.OnDelete(obj)
}

// gather keeps obj for the list, unless the list was handed over.
func (l *listedLater) gather(obj interface{}) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.handed {
		l.list = append(l.list, obj)
	}
	return !l.handed
}

// hand hands the list gathered to the handler, the first time it is
// called, unless the handler was removed.
func (l *listedLater) hand() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.handed {
		return
	}
	l.handed = true
	objs := l.list
	l.list = nil
	l.shardedRegistration.mu.Lock()
	defer l.shardedRegistration.mu.Unlock()
	if !l.removed.Load() {
		l.lister.listed(objs, l.store)
	}
}

// finish ends the registration's calls: removed, or its informer stopped.
func (r *shardedRegistration) finish() {
	r.finish1.Do(func() {
		r.removed.Store(true)
		close(r.finished)
	})
}

// HasSynced reports whether every current slot's informer delivered its
// initial list to the handler.
func (r *shardedRegistration) HasSynced() bool {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	return r.s.regSyncedLocked(r)
}

// HasSyncedChecker is HasSynced as a DoneChecker.
func (r *shardedRegistration) HasSyncedChecker() cache.DoneChecker {
	return gateChecker{s: r.s, gate: &r.synced, name: fmt.Sprintf("ShardedInformer + event handler %T", r.handler)}
}

// ShutdownChan is closed once the handler was removed (or the informer
// stopped) and its call in progress, if any, returned: what
// cache.ShutDownEventHandler waits for.
func (r *shardedRegistration) ShutdownChan() <-chan struct{} {
	r.watch1.Do(func() {
		go func() {
			<-r.finished
			r.mu.Lock() // the call in progress returns; later ones do nothing
			defer r.mu.Unlock()
			close(r.shutdown)
		}()
	})
	return r.shutdown
}

// syncGate is a sync state as a channel: closed while synced, a new open
// one once it turns unsynced again.
type syncGate struct {
	ch     chan struct{}
	closed bool
}

func newSyncGate() syncGate { return syncGate{ch: make(chan struct{})} }

func (g *syncGate) set(synced bool) {
	switch {
	case synced && !g.closed:
		close(g.ch)
		g.closed = true
	case !synced && g.closed:
		g.ch, g.closed = make(chan struct{}), false
	}
}

// gateChecker is a cache.DoneChecker over a syncGate of s.
type gateChecker struct {
	s    *ShardedInformer
	gate *syncGate
	name string
}

func (c gateChecker) Name() string { return c.name }

func (c gateChecker) Done() <-chan struct{} {
	c.s.mu.Lock()
	defer c.s.mu.Unlock()
	return c.gate.ch
}

// shardedController is GetController's: it runs nothing.
type shardedController struct {
	s *ShardedInformer
}

func (c shardedController) RunWithContext(context.Context)      {}
func (c shardedController) Run(<-chan struct{})                 {}
func (c shardedController) HasSynced() bool                     { return c.s.HasSynced() }
func (c shardedController) HasSyncedChecker() cache.DoneChecker { return c.s.HasSyncedChecker() }
func (c shardedController) LastSyncResourceVersion() string     { return c.s.LastSyncResourceVersion() }
