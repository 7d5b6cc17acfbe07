package kubehandler_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/internal/shard"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// selectorServer serves a kubehandlertest Source (which ignores shard
// selectors, as an API server without the ShardedListAndWatch gate does)
// as a server that honours them: lists and watches keep only the objects
// the selector matches, and lists echo it. It knows the selectors of one
// slot of rings of up to 64 slots, those a ShardedInformer and Detect
// send; any other is a BadRequest, so that a test sees it.
type selectorServer struct {
	source   *kubehandlertest.Source
	matchers map[string]func(types.UID) bool
	// block, if set, is called before a list of a slot's selector.
	block func(selector string)
}

func newSelectorServer(source *kubehandlertest.Source) *selectorServer {
	s := &selectorServer{source: source, matchers: map[string]func(types.UID) bool{}}
	for n := 1; n <= 64; n *= 2 {
		ring, _ := shard.NewRing(n)
		for slot := range n {
			set := shard.NewSet(slot)
			sel, err := ring.Selector(set)
			if err != nil {
				panic(err)
			}
			s.matchers[sel.String()] = func(uid types.UID) bool { return ring.Contains(set, uid) }
		}
	}
	return s
}

func (s *selectorServer) matcher(selector string) (func(types.UID) bool, error) {
	if selector == "" {
		return func(types.UID) bool { return true }, nil
	}
	m, ok := s.matchers[selector]
	if !ok {
		return nil, apierrors.NewBadRequest("selectorServer: unknown shard selector " + selector)
	}
	return m, nil
}

func (s *selectorServer) list(_ context.Context, o metav1.ListOptions) (runtime.Object, error) {
	match, err := s.matcher(o.ShardSelector)
	if err != nil {
		return nil, err
	}
	if s.block != nil && o.ShardSelector != "" {
		s.block(o.ShardSelector)
	}
	obj, err := s.source.List(o)
	if err != nil || o.ShardSelector == "" {
		return obj, err
	}
	list := obj.(*corev1.ConfigMapList)
	list.Items = slices.DeleteFunc(list.Items, func(cm corev1.ConfigMap) bool { return !match(cm.UID) })
	list.ShardInfo = &metav1.ShardInfo{Selector: o.ShardSelector}
	return list, nil
}

func (s *selectorServer) watch(_ context.Context, o metav1.ListOptions) (watch.Interface, error) {
	match, err := s.matcher(o.ShardSelector)
	if err != nil {
		return nil, err
	}
	w, err := s.source.Watch(o)
	if err != nil {
		return nil, err
	}
	return watch.Filter(w, func(ev watch.Event) (watch.Event, bool) {
		if m, err := meta.Accessor(ev.Object); err == nil && ev.Type != watch.Bookmark && ev.Type != watch.Error {
			return ev, match(m.GetUID())
		}
		return ev, true
	}), nil
}

// newShardedInformer returns a ShardedInformer of source's ConfigMaps with
// a namespace index, over a server that honours shard selectors or one
// that ignores them (the Source itself).
func newShardedInformer(t *testing.T, source *kubehandlertest.Source, server *selectorServer) *kubehandler.ShardedInformer {
	t.Helper()
	cfg := kubehandler.ShardedInformerConfig{
		List:     func(_ context.Context, o metav1.ListOptions) (runtime.Object, error) { return source.List(o) },
		Watch:    func(_ context.Context, o metav1.ListOptions) (watch.Interface, error) { return source.Watch(o) },
		Client:   source,
		Object:   &corev1.ConfigMap{},
		Indexers: cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
	}
	if server != nil {
		cfg.List, cfg.Watch = server.list, server.watch
	}
	inf, err := kubehandler.NewShardedInformer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return inf
}

// count returns how many lines logged contain substr.
func (l *logLines) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

// runInformer runs inf with a context that carries logger until the test
// ends; the cleanup waits for Run to return.
func runInformer(t *testing.T, inf cache.SharedInformer, logger logr.Logger) {
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), logger))
	var wg sync.WaitGroup
	wg.Go(func() { inf.RunWithContext(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if !inf.IsStopped() {
			t.Error("IsStopped is false after Run returned")
		}
	})
}

// eventCounts counts the events a handler added to an informer gets.
type eventCounts struct {
	initial, live, updates, deletes atomic.Int64
}

func (c *eventCounts) OnAdd(_ interface{}, isInInitialList bool) {
	if isInInitialList {
		c.initial.Add(1)
	} else {
		c.live.Add(1)
	}
}
func (c *eventCounts) OnUpdate(_, _ interface{}) { c.updates.Add(1) }
func (c *eventCounts) OnDelete(interface{})      { c.deletes.Add(1) }

// replica is one replica of a ring whose ConfigMap handler reads a
// ShardedInformer.
type replica struct {
	id     string
	loop   kubehandler.EventLoop
	inf    *kubehandler.ShardedInformer
	run    *kubehandlertest.Running
	logs   *logLines
	events *eventCounts
}

func startReplica(t *testing.T, r *ring, cfg kubehandler.Sharding, source *kubehandlertest.Source, server *selectorServer, calls *ringCalls) *replica {
	t.Helper()
	rep := &replica{id: cfg.Identity, inf: newShardedInformer(t, source, server), logs: &logLines{}, events: &eventCounts{}}
	if _, err := rep.inf.AddEventHandler(rep.events); err != nil {
		t.Fatal(err)
	}
	runInformer(t, rep.inf, rep.logs.logger())
	rep.loop = kubehandler.NewEventLoop("ring-"+cfg.Identity, kubehandler.WithSharding(cfg))
	rep.loop.Register(calls.handler(cfg.Identity, rep.inf, 0))
	rep.run = kubehandlertest.Start(t, rep.loop, 2)
	return rep
}

// cachedNames returns the names inf caches.
func cachedNames(inf cache.SharedIndexInformer) []string {
	var names []string
	for _, obj := range inf.GetStore().List() {
		names = append(names, obj.(*corev1.ConfigMap).Name)
	}
	slices.Sort(names)
	return names
}

// partition returns, by holder, the names of source's objects in the
// slots each holds, and reports whether every slot is held.
func partition(t *testing.T, r *ring, slots int, source *kubehandlertest.Source) (map[string][]string, bool) {
	ringOf, _ := shard.NewRing(slots)
	holders := r.holders(t)
	list, _ := source.List(metav1.ListOptions{})
	out := map[string][]string{}
	all := len(holders) == slots
	for _, cm := range list.(*corev1.ConfigMapList).Items {
		h := holders[ringOf.SlotOf(cm.UID)]
		if h == "" {
			all = false
		}
		out[h] = append(out[h], cm.Name)
	}
	for _, names := range out {
		slices.Sort(names)
	}
	return out, all
}

// cachesMatch reports whether each replica caches exactly the objects of
// the slots it holds, every slot being held; else why not.
func cachesMatch(t *testing.T, r *ring, slots int, source *kubehandlertest.Source, replicas ...*replica) (bool, string) {
	want, all := partition(t, r, slots, source)
	if !all {
		return false, "not every slot is held"
	}
	for _, rep := range replicas {
		if got := cachedNames(rep.inf); !slices.Equal(got, want[rep.id]) {
			return false, fmt.Sprintf("%s caches %d objects, holds the slots of %d", rep.id, len(got), len(want[rep.id]))
		}
	}
	return true, ""
}

// eventuallyMatch waits until cachesMatch holds.
func eventuallyMatch(t *testing.T, r *ring, slots int, source *kubehandlertest.Source, replicas ...*replica) {
	t.Helper()
	var why string
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, w := cachesMatch(t, r, slots, source, replicas...)
		if ok {
			return
		}
		why = w
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for each replica to cache the objects of its slots: %s", why)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Over a server that honours shard selectors, each replica caches exactly
// the objects of the slots it holds, at every change of the ring: a slot
// that goes takes its objects out of the cache with no delete event, one
// that comes lists them as an initial list. Calls never overlap, and
// every object's last call sees its final state.
func TestShardedInformerCachesTheSlotsHeld(t *testing.T) {
	r := newRing()
	source := newConfigMaps(t, 200)
	server := newSelectorServer(source)
	calls := newRingCalls(t)
	const slots = 16
	a := startReplica(t, r, r.sharding("a"), source, server, calls)
	eventuallyMatch(t, r, slots, source, a)
	if n := len(cachedNames(a.inf)); n != 200 {
		t.Fatalf("alone, a caches %d objects, want 200", n)
	}
	b := startReplica(t, r, r.sharding("b"), source, server, calls)
	c := startReplica(t, r, r.sharding("c"), source, server, calls)
	eventually(t, "a, b and c hold their shares", func() bool {
		for _, rep := range []*replica{a, b, c} {
			if kubehandler.Readiness(rep.loop)(nil) != nil {
				return false
			}
		}
		return true
	})
	eventuallyMatch(t, r, slots, source, a, b, c)
	for _, rep := range []*replica{a, b, c} {
		n := len(cachedNames(rep.inf))
		t.Logf("%s caches %d of 200 objects", rep.id, n)
		if n == 0 || n > 120 {
			t.Errorf("%s caches %d of 200 objects, want about a third", rep.id, n)
		}
		// The cache fills before the slot's informer counts as synced (its
		// initial list is then still being delivered): wait for it.
		eventually(t, rep.id+" synced at rest", rep.inf.HasSynced)
	}

	for i := range 200 {
		bump(source, fmt.Sprintf("cm-%03d", i))
	}
	source.Create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "late"}})
	eventually(t, "every object final", func() bool { ok, _ := calls.final(source); return ok })
	eventuallyMatch(t, r, slots, source, a, b, c)

	if err := a.run.Stop(); err != nil {
		t.Fatalf("a's Run = %v", err)
	}
	eventually(t, "b and c took a's slots", func() bool {
		n := map[string]int{}
		for _, h := range r.holders(t) {
			n[h]++
		}
		return n["b"] == 8 && n["c"] == 8
	})
	eventuallyMatch(t, r, slots, source, b, c)
	if got := len(cachedNames(a.inf)); got != 0 {
		t.Errorf("a caches %d objects after it left the ring, want none", got)
	}
	for i := range 200 {
		bump(source, fmt.Sprintf("cm-%03d", i))
	}
	eventually(t, "every object final after a left", func() bool { ok, _ := calls.final(source); return ok })

	var live int64
	for _, rep := range []*replica{a, b, c} {
		if n := rep.events.deletes.Load(); n != 0 {
			t.Errorf("%s: %d delete events, want none: no object was deleted", rep.id, n)
		}
		if rep.events.initial.Load() == 0 {
			t.Errorf("%s: no add in an initial list", rep.id)
		}
		live += rep.events.live.Load()
		if n := rep.logs.count("falling back"); n != 0 {
			t.Errorf("%s logged a fallback %d times over a server that honours shard selectors", rep.id, n)
		}
	}
	if live != 1 {
		t.Errorf("the object created at rest reached %d handlers as a live add, want 1", live)
	}
	for id, n := range calls.replicas() {
		t.Logf("replica %s handled %d objects", id, n)
	}
	for _, rep := range []*replica{b, c} {
		if err := rep.run.Stop(); err != nil {
			t.Fatalf("Run = %v", err)
		}
	}
}

// A slot that comes is queued newest first by resourceVersion, over a
// server that honours shard selectors and over one that ignores them: the
// objects changed while the slot changed hands (here: before the replica
// started) are handled ahead of the slot's others, not in the list's order.
func TestShardedInformerQueuesASlotNewestFirst(t *testing.T) {
	for _, serverSide := range []bool{true, false} {
		t.Run(fmt.Sprintf("server-side=%v", serverSide), func(t *testing.T) {
			r := newRing()
			source := newConfigMaps(t, 200)
			var changed []string
			for i := 150; i < 160; i++ {
				name := fmt.Sprintf("cm-%03d", i)
				bump(source, name)
				changed = append([]string{name}, changed...) // the newest first
			}
			var server *selectorServer
			if serverSide {
				server = newSelectorServer(source)
			}
			inf := newShardedInformer(t, source, server)
			runInformer(t, inf, logr.Discard())
			var mu sync.Mutex
			var order []string
			cfg := r.sharding("a")
			cfg.Slots = 1
			loop := kubehandler.NewEventLoop("ring-a", kubehandler.WithSharding(cfg))
			loop.Register(&callHandler{DefaultHandler: kubehandler.DefaultHandler{Name: "cm", Informer: inf},
				call: func(_ context.Context, _, name string) error {
					mu.Lock()
					defer mu.Unlock()
					order = append(order, name)
					return nil
				}})
			run := kubehandlertest.Start(t, loop, 1)
			eventually(t, "every object handled", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(order) >= 200
			})
			mu.Lock()
			first := slices.Clone(order[:len(changed)])
			mu.Unlock()
			if !slices.Equal(first, changed) {
				t.Errorf("first calls %v, want the changed objects newest first, %v", first, changed)
			}
			if err := run.Stop(); err != nil {
				t.Fatalf("Run = %v", err)
			}
		})
	}
}

// Over a server that ignores shard selectors, the ShardedInformer says so
// once and caches everything; the loop's client-side filtering still
// dispatches each object on one replica.
func TestShardedInformerFallsBackToClientSideFiltering(t *testing.T) {
	r := newRing()
	source := newConfigMaps(t, 100)
	calls := newRingCalls(t)
	a := startReplica(t, r, r.sharding("a"), source, nil, calls)
	b := startReplica(t, r, r.sharding("b"), source, nil, calls)
	eventually(t, "a and b hold their shares", func() bool {
		return kubehandler.Readiness(a.loop)(nil) == nil && kubehandler.Readiness(b.loop)(nil) == nil
	})
	for _, rep := range []*replica{a, b} {
		eventually(t, rep.id+" caches every object", func() bool { return len(cachedNames(rep.inf)) == 100 })
	}
	for i := range 100 {
		bump(source, fmt.Sprintf("cm-%03d", i))
	}
	eventually(t, "every object final", func() bool { ok, _ := calls.final(source); return ok })
	handled := calls.replicas()
	if handled["a"] == 0 || handled["b"] == 0 {
		t.Errorf("objects handled by replica: %v, want both to handle some", handled)
	}
	for _, rep := range []*replica{a, b} {
		if n := rep.logs.count("falling back to client-side filtering"); n != 1 {
			t.Errorf("%s logged the fallback %d times, want once", rep.id, n)
		}
		if rep.inf.LastSyncResourceVersion() == "" {
			t.Errorf("%s: no LastSyncResourceVersion from the informer of everything", rep.id)
		}
		if err := rep.run.Stop(); err != nil {
			t.Fatalf("Run = %v", err)
		}
	}
}

// The store is a read-only view over every slot's cache, with its
// indexes: generated listers work over it.
func TestShardedInformerStore(t *testing.T) {
	r := newRing()
	source := kubehandlertest.NewSource(func() runtime.Object { return &corev1.ConfigMapList{} })
	for _, ns := range []string{"ns", "other"} {
		for i := range 10 {
			source.Create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("cm-%03d", i)}})
		}
	}
	cfg := r.sharding("a")
	cfg.Slots = 4
	rep := startReplica(t, r, cfg, source, newSelectorServer(source), newRingCalls(t))
	eventuallyMatch(t, r, 4, source, rep)
	store := rep.inf.GetIndexer()

	if got := len(store.List()); got != 20 {
		t.Errorf("List: %d objects, want 20", got)
	}
	keys := store.ListKeys()
	slices.Sort(keys)
	if len(keys) != 20 || keys[0] != "ns/cm-000" || keys[19] != "other/cm-009" {
		t.Errorf("ListKeys = %v", keys)
	}
	lister := corelisters.NewConfigMapLister(rep.inf.GetIndexer())
	if cms, err := lister.ConfigMaps("other").List(labels.Everything()); err != nil || len(cms) != 10 {
		t.Errorf("lister: %d ConfigMaps in other (%v), want 10", len(cms), err)
	}
	if cm, err := lister.ConfigMaps("ns").Get("cm-003"); err != nil || cm.Name != "cm-003" {
		t.Errorf("lister Get = %v, %v", cm, err)
	}
	if _, err := lister.ConfigMaps("ns").Get("missing"); !apierrors.IsNotFound(err) {
		t.Errorf("lister Get of a missing object: %v, want NotFound", err)
	}
	obj, _ := source.Get("other", "cm-004")
	if item, ok, err := store.Get(obj); err != nil || !ok || item.(*corev1.ConfigMap).UID != obj.(*corev1.ConfigMap).UID {
		t.Errorf("Get = %v, %t, %v", item, ok, err)
	}
	if _, ok, err := store.GetByKey("other/missing"); ok || err != nil {
		t.Errorf("GetByKey of a missing key = %t, %v", ok, err)
	}
	if items, err := store.Index(cache.NamespaceIndex, obj); err != nil || len(items) != 10 {
		t.Errorf("Index = %d items, %v; want 10", len(items), err)
	}
	if keys, err := store.IndexKeys(cache.NamespaceIndex, "ns"); err != nil || len(keys) != 10 {
		t.Errorf("IndexKeys = %v, %v", keys, err)
	}
	if values := store.ListIndexFuncValues(cache.NamespaceIndex); !slices.Equal(values, []string{"ns", "other"}) {
		t.Errorf("ListIndexFuncValues = %v", values)
	}
	if _, err := store.ByIndex("no-such-index", "ns"); err == nil {
		t.Error("ByIndex of an unknown index: no error")
	}
	if _, ok := store.GetIndexers()[cache.NamespaceIndex]; !ok {
		t.Errorf("GetIndexers = %v", store.GetIndexers())
	}

	// An index added to a running informer indexes what is cached.
	byName := cache.Indexers{"name": func(obj interface{}) ([]string, error) {
		return []string{obj.(*corev1.ConfigMap).Name}, nil
	}}
	if err := rep.inf.AddIndexers(byName); err != nil {
		t.Fatal(err)
	}
	if items, err := store.ByIndex("name", "cm-007"); err != nil || len(items) != 2 {
		t.Errorf("ByIndex of an added index = %d items, %v; want 2", len(items), err)
	}
	if err := store.AddIndexers(cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}); err == nil {
		t.Error("AddIndexers of a taken name: no error")
	}

	// Writes fail and change nothing.
	extra := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "extra"}}
	for name, err := range map[string]error{
		"Add": store.Add(extra), "Update": store.Update(obj), "Delete": store.Delete(obj),
		"Replace": store.Replace([]interface{}{extra}, "1"),
	} {
		if err == nil {
			t.Errorf("%s on the view: no error", name)
		}
	}
	if got := len(store.List()); got != 20 {
		t.Errorf("after the writes: %d objects, want 20", got)
	}
	if err := rep.run.Stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if got := len(store.List()); got != 0 {
		t.Errorf("after the replica left its ring: %d objects cached, want none", got)
	}
}

// Sync follows the slots: vacuously true before any slot, false while a
// new slot's informer lists, true again once it listed, for the informer
// and for each handler's registration.
func TestShardedInformerSyncFollowsTheSlots(t *testing.T) {
	r := newRing()
	source := newConfigMaps(t, 20)
	server := newSelectorServer(source)
	listing, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	half, _ := shard.NewRing(2)
	detectSel, _ := half.Selector(shard.NewSet(0))
	server.block = func(sel string) {
		if sel == detectSel.String() {
			return // Detect's list
		}
		once.Do(func() { close(listing) })
		<-release
	}
	inf := newShardedInformer(t, source, server)
	events := &eventCounts{}
	reg, err := inf.AddEventHandler(events)
	if err != nil {
		t.Fatal(err)
	}
	if inf.HasSynced() || reg.HasSynced() {
		t.Fatal("synced before Run")
	}
	runInformer(t, inf, logr.Discard())
	select {
	case <-reg.HasSyncedChecker().Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the registration did not sync with no slot")
	}
	if !inf.HasSynced() || !reg.HasSynced() {
		t.Fatal("not synced with no slot")
	}

	cfg := r.sharding("a")
	cfg.Slots = 2
	loop := kubehandler.NewEventLoop("ring-a", kubehandler.WithSharding(cfg))
	calls := newRingCalls(t)
	loop.Register(calls.handler("a", inf, 0))
	run := kubehandlertest.Start(t, loop, 1)
	<-listing // a slot's informer lists, and cannot finish
	checker := reg.HasSyncedChecker()
	select {
	case <-checker.Done():
		t.Error("the registration's checker is done while a slot lists")
	default:
	}
	if inf.HasSynced() || reg.HasSynced() {
		t.Error("synced while a slot lists")
	}
	close(release)
	select {
	case <-checker.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the registration did not sync once the slots listed")
	}
	if !inf.HasSynced() {
		t.Error("the informer is not synced once its registration is")
	}
	eventually(t, "every object handled", func() bool { ok, _ := calls.final(source); return ok })
	if n := events.initial.Load(); n != 20 {
		t.Errorf("%d adds in initial lists, want 20", n)
	}
	if err := run.Stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
}

// Outside a sharded loop, and for a secondary handler of one, nothing
// would tell a ShardedInformer its slots: it lists nothing, and Run refuses
// such a handler.
func TestShardedInformerOutsideARing(t *testing.T) {
	for _, honoured := range []bool{true, false} {
		t.Run(fmt.Sprintf("honoured=%t", honoured), func(t *testing.T) {
			source := newConfigMaps(t, 10)
			var server *selectorServer
			if honoured {
				server = newSelectorServer(source)
			}
			inf := newShardedInformer(t, source, server)
			runInformer(t, inf, logr.Discard())
			calls := newRingCalls(t)

			plain := kubehandler.NewEventLoop("plain")
			plain.Register(calls.handler("plain", inf, 0))
			if err := plain.Run(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "ShardedInformer") {
				t.Errorf("Run without sharding = %v, want an error about the ShardedInformer", err)
			}
			r := newRing()
			cfg := r.sharding("a")
			cfg.Secondary = []string{"cm"}
			secondary := kubehandler.NewEventLoop("secondary", kubehandler.WithSharding(cfg))
			secondary.Register(calls.handler("a", inf, 0))
			if err := secondary.Run(context.Background(), 1); err == nil || !strings.Contains(err.Error(), "Secondary") {
				t.Errorf("Run with a secondary handler = %v, want an error about the ShardedInformer", err)
			}

			eventually(t, "the informer has the server's answer", inf.HasSynced)
			if n := len(inf.GetStore().List()); n != 0 {
				t.Errorf("caches %d objects outside a ring, want none", n)
			}
			if n := len(calls.replicas()); n != 0 {
				t.Errorf("calls on %d replicas outside a ring, want none", n)
			}
		})
	}
}

// A server that fails to answer at first is asked again.
func TestShardedInformerAsksAgain(t *testing.T) {
	source := newConfigMaps(t, 10)
	var attempts atomic.Int32
	inf, err := kubehandler.NewShardedInformer(kubehandler.ShardedInformerConfig{
		List: func(_ context.Context, o metav1.ListOptions) (runtime.Object, error) {
			if attempts.Add(1) <= 2 {
				return nil, apierrors.NewServiceUnavailable("not yet")
			}
			return source.List(o)
		},
		Watch:  func(_ context.Context, o metav1.ListOptions) (watch.Interface, error) { return source.Watch(o) },
		Client: source,
		Object: &corev1.ConfigMap{},
	})
	if err != nil {
		t.Fatal(err)
	}
	runInformer(t, inf, logr.Discard())
	eventually(t, "synced once the server answered", inf.HasSynced)
	if n := attempts.Load(); n < 3 {
		t.Errorf("%d lists, want at least 3", n)
	}
}

// Misuse is an error, never a panic.
func TestShardedInformerMisuse(t *testing.T) {
	if _, err := kubehandler.NewShardedInformer(kubehandler.ShardedInformerConfig{}); err == nil ||
		!strings.Contains(err.Error(), "no List") || !strings.Contains(err.Error(), "no Watch") || !strings.Contains(err.Error(), "no Object") {
		t.Errorf("NewShardedInformer of nothing = %v", err)
	}
	source := newConfigMaps(t, 1)
	inf := newShardedInformer(t, source, nil)
	other := newShardedInformer(t, source, nil)
	reg, err := other.AddEventHandler(&eventCounts{})
	if err != nil {
		t.Fatal(err)
	}
	if err := inf.RemoveEventHandler(reg); err == nil {
		t.Error("RemoveEventHandler of another informer's registration: no error")
	}
	if err := other.RemoveEventHandler(reg); err != nil {
		t.Errorf("RemoveEventHandler = %v", err)
	}
	if err := other.RemoveEventHandler(reg); err != nil {
		t.Errorf("a second RemoveEventHandler = %v", err)
	}
	if err := cache.ShutDownEventHandler(other, reg); err != nil {
		t.Errorf("ShutDownEventHandler = %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { inf.RunWithContext(ctx) })
	eventually(t, "synced", inf.HasSynced)
	if err := inf.SetTransform(nil); err == nil {
		t.Error("SetTransform after Run: no error")
	}
	if err := inf.SetWatchErrorHandler(func(*cache.Reflector, error) {}); err == nil {
		t.Error("SetWatchErrorHandler after Run: no error")
	}
	inf.RunWithContext(ctx) // a second Run returns at once
	cancel()
	wg.Wait()
	if _, err := inf.AddEventHandler(&eventCounts{}); err == nil {
		t.Error("AddEventHandler after Run returned: no error")
	}
	if !errors.Is(context.Cause(ctx), context.Canceled) {
		t.Fatal("the context is not cancelled")
	}
}
