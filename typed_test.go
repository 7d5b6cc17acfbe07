package kubehandler_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// typedCall is one call of a TypedHandler's function.
type typedCall struct {
	fn     string // "sync" or "delete"
	event  string // Event.Type
	name   string
	rv     string
	value  string // data.value
	object runtime.Object
}

// typedCalls records typedCalls.
type typedCalls struct {
	mu    sync.Mutex
	calls []typedCall
}

func (c *typedCalls) record(ctx context.Context, fn string, obj runtime.Object) {
	ev, _ := kubehandler.EventFromContext(ctx)
	m := mustMeta(obj)
	value := ""
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		value = o.Data["value"]
	case *unstructured.Unstructured:
		value, _, _ = unstructured.NestedString(o.Object, "data", "value")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, typedCall{fn: fn, event: ev.Type, name: m.GetName(), rv: m.GetResourceVersion(), value: value, object: obj})
}

func (c *typedCalls) get() []typedCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// last returns the last call for name.
func (c *typedCalls) last(name string) (typedCall, bool) {
	calls := c.get()
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i].name == name {
			return calls[i], true
		}
	}
	return typedCall{}, false
}

// newTyped returns a TypedHandler of T recording its calls in calls.
func newTyped[T runtime.Object](informer kubehandler.EventHandler, calls *typedCalls) *kubehandler.TypedHandler[T] {
	return &kubehandler.TypedHandler[T]{
		DefaultHandler: kubehandler.DefaultHandler{Informer: informer.GetInformer(), Name: informer.GetName()},
		Sync:           func(ctx context.Context, obj T) error { calls.record(ctx, "sync", obj); return nil },
		Delete:         func(ctx context.Context, obj T) error { calls.record(ctx, "delete", obj); return nil },
	}
}

// objectKind is one kind of object a test runs over: typed ConfigMaps or
// unstructured ones.
type objectKind struct {
	name    string
	newList func() runtime.Object
	example runtime.Object
	make    func(namespace, name, value string) runtime.Object
	handler func(informer kubehandler.EventHandler, calls *typedCalls) kubehandler.EventHandler
}

var objectKinds = []objectKind{
	{
		name:    "typed",
		newList: func() runtime.Object { return &corev1.ConfigMapList{} },
		example: &corev1.ConfigMap{},
		make:    func(ns, name, value string) runtime.Object { return configMap(ns, name, value) },
		handler: func(i kubehandler.EventHandler, c *typedCalls) kubehandler.EventHandler {
			return newTyped[*corev1.ConfigMap](i, c)
		},
	},
	{
		name:    "unstructured",
		newList: func() runtime.Object { return &unstructured.UnstructuredList{} },
		example: &unstructured.Unstructured{},
		make:    func(ns, name, value string) runtime.Object { return unstructuredConfigMap(ns, name, value) },
		handler: func(i kubehandler.EventHandler, c *typedCalls) kubehandler.EventHandler {
			return newTyped[*unstructured.Unstructured](i, c)
		},
	},
}

// On an EventLoop, a TypedHandler gets the cached object, typed, for adds
// and updates, and the final state for deletes, including deletes the
// informer saw only as tombstones.
func TestTypedHandlerOnEventLoop(t *testing.T) {
	for _, kind := range objectKinds {
		t.Run(kind.name, func(t *testing.T) {
			f := newFixtureWith(t, 0, kind.newList, kind.example)
			calls := &typedCalls{}
			h := kind.handler(&kubehandler.DefaultHandler{Informer: f.informer, Name: "cm"}, calls)
			loop := kubehandler.NewEventLoop("typed")
			loop.Register(h)
			kubehandlertest.Start(t, loop, 2)

			f.source.Create(kind.make("ns", "a", "1"))
			f.source.Create(kind.make("ns", "b", "1"))
			eventually(t, "adds", func() bool {
				a, okA := calls.last("a")
				b, okB := calls.last("b")
				return okA && okB && a.event == kubehandler.WorkqueueAddEvent && b.event == kubehandler.WorkqueueAddEvent
			})
			a, _ := calls.last("a")
			if a.fn != "sync" || a.value != "1" {
				t.Errorf("add: %+v, want sync of value 1", a)
			}
			if cached, _, _ := f.informer.GetStore().GetByKey("ns/a"); cached != a.object {
				t.Errorf("sync got %p, not the cached object %p", a.object, cached)
			}

			rv := f.source.Update(kind.make("ns", "a", "2"))
			eventually(t, "update", func() bool { c, _ := calls.last("a"); return c.rv == rv })
			if c, _ := calls.last("a"); c.fn != "sync" || c.event != kubehandler.WorkqueueUpdateEvent || c.value != "2" {
				t.Errorf("update: %+v, want sync of value 2", c)
			}

			f.source.Update(kind.make("ns", "a", "3"))
			f.source.Delete("ns", "a")
			eventually(t, "delete", func() bool { c, _ := calls.last("a"); return c.fn == "delete" })
			if c, _ := calls.last("a"); c.event != kubehandler.WorkqueueDeleteEvent || c.value != "3" {
				t.Errorf("delete: %+v, want the final state, value 3", c)
			}

			// A deletion the watch missed arrives as a tombstone.
			f.source.DeleteUnseen("ns", "b")
			eventually(t, "tombstone delete", func() bool { c, _ := calls.last("b"); return c.fn == "delete" })
			if c, _ := calls.last("b"); c.value != "1" {
				t.Errorf("tombstone delete: %+v, want the last known state, value 1", c)
			}
		})
	}
}

// Without an object in the event, a TypedHandler looks it up with Get or in
// the informer's store; what it cannot find is skipped on add and update,
// and a Terminal error on delete, as is an object of another type.
func TestTypedHandlerLookups(t *testing.T) {
	f := syncedFixture(t, func() runtime.Object { return &corev1.ConfigMapList{} }, &corev1.ConfigMap{}, configMap("ns", "cm", "1"))
	cached, _, _ := f.informer.GetStore().GetByKey("ns/cm")
	notFound := apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, "x")
	tests := []struct {
		name    string
		handler func(calls *typedCalls) kubehandler.EventHandler
		call    func(h kubehandler.EventHandler, ctx context.Context) error
		check   func(error) bool
		want    []string // fn:value of each call
	}{
		{"add from the store",
			func(c *typedCalls) kubehandler.EventHandler {
				return newTyped[*corev1.ConfigMap](&kubehandler.DefaultHandler{Informer: f.informer}, c)
			},
			func(h kubehandler.EventHandler, ctx context.Context) error { return h.AddFunc(ctx, "ns", "cm") },
			isNilErr, []string{"sync:1"}},
		{"update of an object not in the store: skipped",
			func(c *typedCalls) kubehandler.EventHandler {
				return newTyped[*corev1.ConfigMap](&kubehandler.DefaultHandler{Informer: f.informer}, c)
			},
			func(h kubehandler.EventHandler, ctx context.Context) error { return h.UpdateFunc(ctx, "ns", "other") },
			isNilErr, nil},
		{"delete of an object in the store (being deleted, in a chain)",
			func(c *typedCalls) kubehandler.EventHandler {
				return newTyped[*corev1.ConfigMap](&kubehandler.DefaultHandler{Informer: f.informer}, c)
			},
			func(h kubehandler.EventHandler, ctx context.Context) error { return h.DeleteFunc(ctx, "ns", "cm") },
			isNilErr, []string{"delete:1"}},
		{"delete without a final state: terminal",
			func(c *typedCalls) kubehandler.EventHandler {
				return newTyped[*corev1.ConfigMap](&kubehandler.DefaultHandler{Informer: f.informer}, c)
			},
			func(h kubehandler.EventHandler, ctx context.Context) error { return h.DeleteFunc(ctx, "ns", "other") },
			kubehandler.IsTerminal, nil},
		{"no informer, no object: skipped",
			func(c *typedCalls) kubehandler.EventHandler {
				return newTyped[*corev1.ConfigMap](&kubehandler.DefaultHandler{}, c)
			},
			func(h kubehandler.EventHandler, ctx context.Context) error { return h.AddFunc(ctx, "ns", "cm") },
			isNilErr, nil},
		{"another type: terminal",
			func(c *typedCalls) kubehandler.EventHandler {
				return newTyped[*appsv1.Deployment](&kubehandler.DefaultHandler{Informer: f.informer}, c)
			},
			func(h kubehandler.EventHandler, ctx context.Context) error { return h.AddFunc(ctx, "ns", "cm") },
			kubehandler.IsTerminal, nil},
		{"get from a lister",
			func(c *typedCalls) kubehandler.EventHandler {
				h := newTyped[*corev1.ConfigMap](&kubehandler.DefaultHandler{}, c)
				h.Get = func(ns, name string) (*corev1.ConfigMap, error) { return configMap(ns, name, "lister"), nil }
				return h
			},
			func(h kubehandler.EventHandler, ctx context.Context) error { return h.UpdateFunc(ctx, "ns", "cm") },
			isNilErr, []string{"sync:lister"}},
		{"lister says not found: skipped",
			func(c *typedCalls) kubehandler.EventHandler {
				h := newTyped[*corev1.ConfigMap](&kubehandler.DefaultHandler{Informer: f.informer}, c)
				h.Get = func(string, string) (*corev1.ConfigMap, error) { return nil, notFound }
				return h
			},
			func(h kubehandler.EventHandler, ctx context.Context) error { return h.UpdateFunc(ctx, "ns", "cm") },
			isNilErr, nil},
		{"lister fails: retried",
			func(c *typedCalls) kubehandler.EventHandler {
				h := newTyped[*corev1.ConfigMap](&kubehandler.DefaultHandler{}, c)
				h.Get = func(string, string) (*corev1.ConfigMap, error) { return nil, errBoom }
				return h
			},
			func(h kubehandler.EventHandler, ctx context.Context) error { return h.UpdateFunc(ctx, "ns", "cm") },
			func(err error) bool { return errors.Is(err, errBoom) && !kubehandler.IsTerminal(err) }, nil},
		{"nil functions do nothing",
			func(*typedCalls) kubehandler.EventHandler {
				return &kubehandler.TypedHandler[*corev1.ConfigMap]{DefaultHandler: kubehandler.DefaultHandler{Informer: f.informer}}
			},
			func(h kubehandler.EventHandler, ctx context.Context) error {
				return errors.Join(h.AddFunc(ctx, "ns", "cm"), h.UpdateFunc(ctx, "ns", "cm"), h.DeleteFunc(ctx, "ns", "other"))
			},
			isNilErr, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := &typedCalls{}
			if err := tt.call(tt.handler(calls), t.Context()); !tt.check(err) {
				t.Errorf("unexpected result %v", err)
			}
			var got []string
			for _, c := range calls.get() {
				got = append(got, c.fn+":"+c.value)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
	// The store's object is handed out as is, not copied.
	calls := &typedCalls{}
	if err := newTyped[*corev1.ConfigMap](&kubehandler.DefaultHandler{Informer: f.informer}, calls).AddFunc(t.Context(), "ns", "cm"); err != nil {
		t.Fatal(err)
	}
	if got := calls.get()[0].object; got != cached {
		t.Errorf("got %p, want the cached object %p", got, cached)
	}
}

func isNilErr(err error) bool { return err == nil }

// On a WorkQueue given bare keys, events carry no object: adds and updates
// are looked up in the store; a delete never is (a same-named object there
// is not the deleted one's final state) and is a Terminal error.
func TestTypedHandlerBareKeys(t *testing.T) {
	f := syncedFixture(t, func() runtime.Object { return &corev1.ConfigMapList{} }, &corev1.ConfigMap{}, configMap("ns", "cm", "1"))
	reg, gather := newRegistry()
	q := kubehandler.NewWorkQueue("bare", kubehandler.WithMetrics(reg))
	calls := &typedCalls{}
	h := newTyped[*corev1.ConfigMap](&kubehandler.DefaultHandler{Informer: f.informer}, calls)
	q.RegisterAddHandler("cm", h.AddFunc)
	q.RegisterDeleteHandler("cm", h.DeleteFunc)
	q.EnqueueAdd("cm", "ns/cm")
	q.EnqueueAdd("cm", "ns/gone")
	kubehandlertest.Start(t, q, 1)
	eventually(t, "adds handled", func() bool { return gather().calls("bare", "cm", "add", "success") == 2 })
	q.EnqueueDelete("cm", cache.ObjectName{Namespace: "ns", Name: "cm"})
	eventually(t, "delete handled", func() bool { return gather().calls("bare", "cm", "delete", "terminal") == 1 })
	var got []string
	for _, c := range calls.get() {
		got = append(got, c.fn+":"+c.name)
	}
	if diff := cmp.Diff([]string{"sync:cm"}, got); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

// snapshots holds a deep copy of each object written to a source, taken
// before any informer could see it, to check later that nothing mutated the
// objects the informers cached and handed out.
type snapshots struct {
	mu     sync.Mutex
	copies map[runtime.Object]snapshot
}

type snapshot struct {
	obj runtime.Object
	// finalizers is a ConfigMap's finalizer array up to its capacity: an
	// append that writes past the length of the cached object's slice shows
	// here and nowhere else.
	finalizers []string
}

func newSnapshots() *snapshots { return &snapshots{copies: make(map[runtime.Object]snapshot)} }

// write stores obj with store and records a copy of it as stored, taken
// before any informer could see it. Handlers that see obj meanwhile wait in
// seen until the copy is recorded.
func (s *snapshots) write(obj runtime.Object, store func(runtime.Object) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.copy(obj)
	rv := store(obj)
	m := mustMeta(c.obj)
	m.SetResourceVersion(rv)
	m.SetUID(mustMeta(obj).GetUID()) // set by the source if it had none
	s.copies[obj] = c
}

// copy returns a snapshot of obj.
func (s *snapshots) copy(obj runtime.Object) snapshot {
	c := snapshot{obj: obj.DeepCopyObject()}
	if cm, ok := obj.(*corev1.ConfigMap); ok && cap(cm.Finalizers) > 0 {
		c.finalizers = slices.Clone(cm.Finalizers[:cap(cm.Finalizers)])
	}
	return c
}

// seen records obj, handed out to a handler, if it was not written through
// s: the final state of a delete, which the source copies itself. The copy
// is taken when the first step sees it.
func (s *snapshots) seen(obj runtime.Object) (written bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.copies[obj]; ok {
		return true
	}
	s.copies[obj] = s.copy(obj)
	return false
}

// mutated describes each object that differs from its snapshot.
func (s *snapshots) mutated() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for obj, c := range s.copies {
		m := mustMeta(obj)
		if diff := cmp.Diff(c.obj, obj); diff != "" {
			out = append(out, fmt.Sprintf("%s at %s mutated (-before +after):\n%s", m.GetName(), m.GetResourceVersion(), diff))
		}
		if cm, ok := obj.(*corev1.ConfigMap); ok && c.finalizers != nil {
			if diff := cmp.Diff(c.finalizers, cm.Finalizers[:cap(cm.Finalizers)]); diff != "" {
				out = append(out, fmt.Sprintf("%s at %s: finalizer array written past its length (-before +after):\n%s", m.GetName(), m.GetResourceVersion(), diff))
			}
		}
	}
	return out
}

// The library never mutates the objects of the informer's cache: a chain
// with a finalizer (added and removed, over finalizer slices with spare
// capacity) and typed steps, beside a standalone typed handler, handle
// adds, updates, deletions held by the finalizer and deletes; every object
// cached is then compared with a deep copy taken before it was cached.
func TestCachedObjectsAreNotMutated(t *testing.T) {
	const ours = "example.com/cleanup"
	for _, kind := range objectKinds {
		t.Run(kind.name, func(t *testing.T) {
			f := newFixtureWith(t, 0, kind.newList, kind.example)
			// Synced first, so objects reach the cache through the watch, as
			// written: a list would cache copies.
			eventually(t, "informer synced", f.informer.HasSynced)
			snap := newSnapshots()
			server := &fakeServer{source: f.source, snap: snap}
			var handedOut, finals int // objects the chain's first step saw; how many were deletes' final states
			var mu sync.Mutex
			firstSight := func(ctx context.Context, _, _ string) error {
				ev, _ := kubehandler.EventFromContext(ctx)
				if obj, ok := ev.Object.(runtime.Object); ok {
					written := snap.seen(obj)
					mu.Lock()
					handedOut++
					if !written {
						finals++
					}
					mu.Unlock()
				}
				return nil
			}
			var kept sync.Map
			keepOnce := func(_ context.Context, _, name string) error {
				if _, done := kept.LoadOrStore(name, true); !done {
					return kubehandler.KeepFinalizer(time.Millisecond)
				}
				return nil
			}
			chainCalls, standaloneCalls := &typedCalls{}, &typedCalls{}
			c := &kubehandler.Chain{
				DefaultHandler: kubehandler.DefaultHandler{Informer: f.informer, Name: "chain"},
				Steps: []kubehandler.Step{
					kubehandler.StepFunc(firstSight), kubehandler.DeleteStepFunc(firstSight),
					kind.handler(&kubehandler.DefaultHandler{}, chainCalls),
					kubehandler.DeleteStepFunc(keepOnce),
				},
				Finalizer: ours,
				Patch:     server.Patch,
			}
			loop := kubehandler.NewEventLoop("deepcopy", fastRetries())
			loop.Register(c)
			loop.Register(kind.handler(&kubehandler.DefaultHandler{Informer: f.informer, Name: "typed"}, standaloneCalls))
			kubehandlertest.Start(t, loop, 2)

			names := []string{"a", "b", "c"}
			for _, n := range names {
				obj := kind.make("ns", n, "1")
				if cm, ok := obj.(*corev1.ConfigMap); ok {
					cm.Finalizers = make([]string, 0, 4) // room to append into
				}
				server.Create(obj)
			}
			eventually(t, "finalizers added", func() bool {
				for _, n := range names {
					obj, ok := f.source.Get("ns", n)
					if !ok || !slices.Contains(mustMeta(obj).GetFinalizers(), ours) {
						return false
					}
				}
				return true
			})
			server.Set("ns", "a", func(obj runtime.Object) { mustMeta(obj).SetAnnotations(map[string]string{"x": "y"}) })
			for _, n := range names {
				server.Delete("ns", n)
			}
			eventually(t, "objects gone, deletes handled", func() bool {
				for _, n := range names {
					if _, ok := f.source.Get("ns", n); ok {
						return false
					}
					if c, _ := standaloneCalls.last(n); c.event != kubehandler.WorkqueueDeleteEvent {
						return false
					}
					if c, _ := chainCalls.last(n); c.event != kubehandler.WorkqueueDeleteEvent {
						return false
					}
				}
				return true
			})

			for _, p := range snap.mutated() {
				t.Error(p)
			}
			// What was checked is what was handed out: the cache's objects,
			// not copies of them.
			for _, call := range append(chainCalls.get(), standaloneCalls.get()...) {
				snap.mu.Lock()
				_, known := snap.copies[call.object]
				snap.mu.Unlock()
				if !known {
					t.Errorf("%s %s at %s: the object handed out was never checked", call.event, call.name, call.rv)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if finals != len(names) || handedOut <= finals {
				t.Errorf("the chain saw %d objects, %d of them final states: want written objects and %d final states", handedOut, finals, len(names))
			}
		})
	}
}

// The check above sees a mutated field and an append past a cached slice's
// length.
func TestSnapshotsCatchMutations(t *testing.T) {
	snap := newSnapshots()
	cm := configMap("ns", "cm", "1")
	cm.Finalizers = make([]string, 0, 2)
	snap.write(cm, func(obj runtime.Object) string {
		mustMeta(obj).SetResourceVersion("1")
		return "1"
	})
	if p := snap.mutated(); len(p) != 0 {
		t.Fatalf("unchanged object reported: %v", p)
	}
	_ = append(cm.Finalizers, "sneaky")
	if p := snap.mutated(); len(p) != 1 {
		t.Errorf("append into the cached array: %d problems, want 1: %v", len(p), p)
	}
	cm.Finalizers[:1][0] = "" // the array as it was
	cm.Data["value"] = "2"
	if p := snap.mutated(); len(p) != 1 {
		t.Errorf("changed data: %d problems, want 1: %v", len(p), p)
	}
}
