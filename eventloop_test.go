package kubehandler_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// Promise 1: one call in flight per key at threadiness 8, with calls slow
// enough that overlapping would be seen, and the final state reached.
func TestOneInFlightPerKey(t *testing.T) {
	f := newFixture(t)
	h := newRecorder(f.informer, "cm")
	h.Fn = func(context.Context, kubehandler.Event) error {
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		return nil
	}
	loop := kubehandler.NewEventLoop("one-in-flight")
	loop.Register(h)
	kubehandlertest.Start(t, loop, 8)

	names := make(map[cache.ObjectName]bool)
	for i := range 20 {
		names[cache.ObjectName{Namespace: "ns", Name: fmt.Sprint("cm-", i)}] = true
		f.source.Create(configMap("ns", fmt.Sprint("cm-", i), "0"))
	}
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			for v := range 50 {
				f.source.Update(configMap("ns", fmt.Sprint("cm-", i), strconv.Itoa(v)))
				time.Sleep(50 * time.Microsecond)
			}
		})
	}
	wg.Wait()
	eventually(t, "final state of every key", func() bool { ok, _ := h.Matches(sourceState("cm", f.source, names)); return ok })
	if o := h.Overlaps(); len(o) > 0 {
		t.Fatalf("%d calls overlapped another call of the same key, first %s", len(o), o[0])
	}
	t.Logf("%d calls for %d keys", len(h.Calls()), len(names))
}

// Promise 2: a burst of 1,000 updates while the key's handler is busy costs
// a handful of calls, and the last call sees the final object.
func TestCoalescing(t *testing.T) {
	f := newFixture(t)
	h := newRecorder(f.informer, "cm")
	started, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	h.Fn = func(ctx context.Context, ev kubehandler.Event) error {
		if ev.Key.Name == "busy" && first.CompareAndSwap(false, true) {
			close(started)
			<-release
		}
		return nil
	}
	loop := kubehandler.NewEventLoop("coalescing")
	loop.Register(h)
	kubehandlertest.Start(t, loop, 4)

	f.source.Create(configMap("ns", "marker", "0"))
	f.source.Create(configMap("ns", "busy", "0"))
	<-started
	var last string
	for v := range 1000 {
		last = f.source.Update(configMap("ns", "busy", strconv.Itoa(v+1)))
	}
	// The informer delivers one handler's events in order: once the
	// marker's update is dispatched (by another worker), every update of
	// the busy key is in the loop's queue. Then the busy call may return.
	f.source.Update(configMap("ns", "marker", "1"))
	marker := kubehandler.Key{Kind: "cm", Namespace: "ns", Name: "marker"}
	eventually(t, "marker update dispatched", func() bool { return len(h.CallsFor(marker)) == 2 })
	close(release)

	key := kubehandler.Key{Kind: "cm", Namespace: "ns", Name: "busy"}
	eventually(t, "a call with the final object", func() bool {
		calls := h.CallsFor(key)
		return calls[len(calls)-1].ResourceVersion() == last
	})
	calls := h.CallsFor(key)
	if len(calls) != 2 {
		t.Errorf("the add and 1,000 updates while busy cost %d calls, want 2 (the add, then one update): %+v", len(calls), calls)
	}
	if calls[0].Type != kubehandler.WorkqueueAddEvent {
		t.Errorf("first call = %s, want add", calls[0].Type)
	}
	t.Logf("1,000 updates while busy: %d calls", len(calls))
}

// Promise 2: an object deleted and created again while its key waits is
// dispatched as delete (with the old object), then add (with the new one).
func TestDeleteThenRecreate(t *testing.T) {
	f := newFixture(t)
	h := newRecorder(f.informer, "cm")
	block := make(chan struct{})
	blocked := make(chan struct{}, 1)
	h.Fn = func(ctx context.Context, ev kubehandler.Event) error {
		if ev.Type == kubehandler.WorkqueueUpdateEvent {
			blocked <- struct{}{}
			<-block
		}
		return nil
	}
	loop := kubehandler.NewEventLoop("recreate")
	loop.Register(h)
	kubehandlertest.Start(t, loop, 2)

	key := kubehandler.Key{Kind: "cm", Namespace: "ns", Name: "phoenix"}
	f.source.Create(configMap("ns", "phoenix", "old"))
	eventually(t, "add dispatched", func() bool { return len(h.CallsFor(key)) == 1 })
	f.source.Update(configMap("ns", "phoenix", "old-2"))
	<-blocked // the update is in flight; what follows waits behind it
	oldObj, _ := f.source.Get("ns", "phoenix")
	oldUID := oldObj.(*corev1.ConfigMap).UID
	f.source.Delete("ns", "phoenix")
	f.source.Create(configMap("ns", "phoenix", "new"))
	eventually(t, "informer saw the new object", func() bool {
		obj, ok, _ := f.informer.GetStore().GetByKey("ns/phoenix")
		return ok && obj.(*corev1.ConfigMap).UID != oldUID
	})
	close(block)
	eventually(t, "delete and add dispatched", func() bool { return len(h.CallsFor(key)) == 4 })

	calls := h.CallsFor(key)
	types := []string{calls[0].Type, calls[1].Type, calls[2].Type, calls[3].Type}
	want := []string{"add", "update", "delete", "add"}
	if fmt.Sprint(types) != fmt.Sprint(want) {
		t.Fatalf("calls = %v, want %v", types, want)
	}
	if got := calls[2].Object.(*corev1.ConfigMap); got.UID != oldUID || got.Data["value"] != "old-2" {
		t.Errorf("delete carried %s %v, want the old object's final state", got.UID, got.Data)
	}
	if got := calls[3].Object.(*corev1.ConfigMap); got.UID == oldUID || got.Data["value"] != "new" {
		t.Errorf("add carried %s %v, want the new object", got.UID, got.Data)
	}
}

// Promises 3 and 4: handlers that fail (or panic) at random, 30% of calls,
// while objects are created, updated and deleted concurrently, still end with
// a successful call that reflects every object's final state.
func TestRandomFailuresConverge(t *testing.T) {
	for _, mode := range []string{"error", "panic"} {
		t.Run(mode, func(t *testing.T) {
			f := newFixture(t)
			h := newRecorder(f.informer, "cm")
			var mu sync.Mutex
			rng := rand.New(rand.NewPCG(1, uint64(len(mode))))
			var failures atomic.Int64
			// succeeded holds, per key, the event of the last successful call.
			succeeded := make(map[kubehandler.Key]kubehandlertest.Call)
			h.Fn = func(ctx context.Context, ev kubehandler.Event) error {
				mu.Lock()
				fail := rng.Float64() < 0.3
				if !fail {
					succeeded[ev.Key] = kubehandlertest.Call{Type: ev.Type, Key: ev.Key, Object: ev.Object}
				}
				mu.Unlock()
				if !fail {
					return nil
				}
				failures.Add(1)
				if mode == "panic" {
					panic("random failure")
				}
				return errors.New("random failure")
			}
			loop := kubehandler.NewEventLoop("random-"+mode, fastRetries())
			loop.Register(h)
			kubehandlertest.Start(t, loop, 4)

			names := make(map[cache.ObjectName]bool)
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(w), 7))
					for i := range 25 {
						name := fmt.Sprintf("cm-%d-%d", w, i)
						f.source.Create(configMap("ns", name, "0"))
						for v := range r.IntN(5) {
							f.source.Update(configMap("ns", name, strconv.Itoa(v+1)))
						}
						if r.IntN(3) == 0 {
							f.source.Delete("ns", name)
						}
					}
				})
				for i := range 25 {
					names[cache.ObjectName{Namespace: "ns", Name: fmt.Sprintf("cm-%d-%d", w, i)}] = true
				}
			}
			wg.Wait()

			eventually(t, "every key's last successful call reflects its final state", func() bool {
				mu.Lock()
				defer mu.Unlock()
				for n := range names {
					key := kubehandler.Key{Kind: "cm", Namespace: n.Namespace, Name: n.Name}
					c, ok := succeeded[key]
					obj, exists := f.source.Get(n.Namespace, n.Name)
					switch {
					case exists && (!ok || c.Type == kubehandler.WorkqueueDeleteEvent || c.ResourceVersion() != obj.(metav1.Object).GetResourceVersion()):
						return false
					case !exists && ok && c.Type != kubehandler.WorkqueueDeleteEvent:
						return false
					}
				}
				return true
			})
			// Once converged, the last call of each key is a success: no
			// retry is left waiting that could dispatch a stale state.
			if ok, why := h.Matches(sourceState("cm", f.source, names)); !ok {
				t.Error(why)
			}
			if failures.Load() == 0 {
				t.Fatal("no call failed; the test proves nothing")
			}
			t.Logf("%d calls, %d failed", len(h.Calls()), failures.Load())
		})
	}
}

// namelessHandler has no name: it gets its type's name (promise 8).
type namelessHandler struct{ *kubehandlertest.Recorder }

func TestEmptyNameDefaultsToTypeName(t *testing.T) {
	f := newFixture(t)
	h := &namelessHandler{newRecorder(f.informer, "")}
	loop := kubehandler.NewEventLoop("names")
	loop.Register(h)
	kubehandlertest.Start(t, loop, 1)
	f.source.Create(configMap("ns", "a", "1"))
	eventually(t, "dispatched", func() bool { return len(h.Calls()) == 1 })
	if got := h.Calls()[0].Key.Kind; got != "namelessHandler" {
		t.Errorf("Key.Kind = %q, want namelessHandler", got)
	}
}

// Promise 6: misuse makes Run return an error before it starts anything.
func TestRunRejectsMisuse(t *testing.T) {
	// An informer that is never started: a Run that got past its checks
	// would wait for it forever, and none may start a goroutine.
	informer := cache.NewSharedIndexInformer(kubehandlertest.NewSource(func() runtime.Object { return &corev1.ConfigMapList{} }),
		&corev1.ConfigMap{}, 0, cache.Indexers{})
	f := &fixture{informer: informer}
	var nilRecorder *kubehandlertest.Recorder
	tests := []struct {
		name        string
		handlers    []kubehandler.EventHandler
		threadiness int
		opts        []kubehandler.Option
		want        string
	}{
		{"nil informer", []kubehandler.EventHandler{newRecorder(nil, "x")}, 1, nil, `handler "x" has no informer`},
		{"typed nil informer", []kubehandler.EventHandler{&kubehandler.DefaultHandler{Name: "x", Informer: (*typedNilInformer)(nil)}}, 1, nil, `nil informer`},
		{"nil handler", []kubehandler.EventHandler{nil}, 1, nil, "nil handler"},
		{"typed nil handler", []kubehandler.EventHandler{nilRecorder}, 1, nil, "nil *kubehandlertest.Recorder"},
		{"duplicate names", []kubehandler.EventHandler{newRecorder(f.informer, "x"), newRecorder(f.informer, "x")}, 1, nil, `two handlers are named "x"`},
		{"duplicate default names", []kubehandler.EventHandler{&namelessHandler{newRecorder(f.informer, "")}, &namelessHandler{newRecorder(f.informer, "")}}, 1, nil, `two handlers are named "namelessHandler"`},
		{"zero threadiness", []kubehandler.EventHandler{newRecorder(f.informer, "x")}, 0, nil, "threadiness must be at least 1"},
		{"negative threadiness", nil, -3, nil, "threadiness must be at least 1"},
		{"negative timeout", nil, 1, []kubehandler.Option{kubehandler.WithHandlerTimeout(-time.Second)}, "must not be negative"},
		{"GetName panics", []kubehandler.EventHandler{&panickyName{kubehandler.DefaultHandler{Informer: f.informer}}}, 1, nil, "*kubehandler_test.panickyName: handler panicked: no name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
			loop := kubehandler.NewEventLoop("misuse", tt.opts...)
			for _, h := range tt.handlers {
				loop.Register(h)
			}
			err := loop.Run(t.Context(), tt.threadiness)
			if err == nil || !contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// panickyName is a handler whose GetName panics.
type panickyName struct{ kubehandler.DefaultHandler }

func (*panickyName) GetName() string { panic("no name") }

// typedNilInformer is a SharedInformer implementation whose nil pointer
// would panic if used.
type typedNilInformer struct{ cache.SharedIndexInformer }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// countingInformer counts the event handlers registered on an informer.
type countingInformer struct {
	cache.SharedIndexInformer
	handlers atomic.Int32
}

func (c *countingInformer) AddEventHandler(h cache.ResourceEventHandler) (cache.ResourceEventHandlerRegistration, error) {
	reg, err := c.SharedIndexInformer.AddEventHandler(h)
	if err == nil {
		c.handlers.Add(1)
	}
	return reg, err
}

func (c *countingInformer) RemoveEventHandler(reg cache.ResourceEventHandlerRegistration) error {
	err := c.SharedIndexInformer.RemoveEventHandler(reg)
	if err == nil {
		c.handlers.Add(-1)
	}
	return err
}

// A handler registered while Run runs is hooked at once, and every handler
// is hooked exactly once per Run and unhooked when Run returns.
func TestRegisterWhileRunning(t *testing.T) {
	f := newFixture(t)
	informer := &countingInformer{SharedIndexInformer: f.informer}
	f.source.Create(configMap("ns", "before", "1"))
	first, second := newRecorder(informer, "first"), newRecorder(informer, "second")
	loop := kubehandler.NewEventLoop("register")
	loop.Register(first)
	r := kubehandlertest.Start(t, loop, 2)
	eventually(t, "first handler dispatched", func() bool { return len(first.Calls()) == 1 })

	loop.Register(second)
	if n := informer.handlers.Load(); n != 2 {
		t.Fatalf("%d event handlers on the informer, want 2", n)
	}
	// The new registration gets the informer's cache as adds, then what
	// happens next.
	eventually(t, "second handler got the cached object", func() bool { return len(second.Calls()) == 1 })
	f.source.Create(configMap("ns", "after", "1"))
	eventually(t, "both got the new object", func() bool { return len(first.Calls()) == 2 && len(second.Calls()) == 2 })

	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := informer.handlers.Load(); n != 0 {
		t.Fatalf("%d event handlers left on the informer after Run, want 0", n)
	}
	r = kubehandlertest.Start(t, loop, 2)
	eventually(t, "both hooked by the next Run", func() bool { return informer.handlers.Load() == 2 })
	f.source.Create(configMap("ns", "again", "1"))
	eventually(t, "both dispatched by the next Run", func() bool {
		return len(first.CallsFor(kubehandler.Key{Kind: "first", Namespace: "ns", Name: "again"})) == 1 &&
			len(second.CallsFor(kubehandler.Key{Kind: "second", Namespace: "ns", Name: "again"})) == 1
	})
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := informer.handlers.Load(); n != 0 {
		t.Fatalf("%d event handlers left on the informer after the second Run, want 0", n)
	}
}
