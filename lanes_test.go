package kubehandler_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// Promise 9, live events first, through an EventLoop. The entry queue's own
// tests (lanes_internal_test.go) count dispatches for the starvation bound.

// laneSettings are the two settings promises 1-8 hold in.
var laneSettings = []struct {
	name  string
	lanes bool
}{
	{"lanes", true},
	{"without lanes", false},
}

// newListedFixture is newFixture with the objects of names existing before
// the informer starts: they come as its initial list.
func newListedFixture(t *testing.T, names ...string) *fixture {
	t.Helper()
	f := &fixture{source: kubehandlertest.NewSource(func() runtime.Object { return &corev1.ConfigMapList{} })}
	for _, n := range names {
		f.source.Create(configMap("ns", n, "0"))
	}
	f.run(t, 0, &corev1.ConfigMap{})
	return f
}

func initialNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprint("init-", i)
	}
	return names
}

// A live add, and a live update of an object still waiting from the
// initial list, are dispatched ahead of the rest of the initial list with
// lanes; without, a live add waits behind all of it (FIFO).
func TestLiveEventsFirst(t *testing.T) {
	const listed = 30
	for _, tt := range []struct {
		name  string
		lanes bool
		live  string // add or update
	}{
		{"lanes/add", true, "add"},
		{"lanes/update", true, "update"},
		{"without lanes/add", false, "add"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newListedFixture(t, initialNames(listed)...)
			h := newRecorder(f.informer, "cm")
			started, release := make(chan struct{}), make(chan struct{})
			var first atomic.Bool
			h.Fn = func(context.Context, kubehandler.Event) error {
				if first.CompareAndSwap(false, true) {
					close(started)
					<-release
				}
				return nil
			}
			reg := prometheus.NewRegistry()
			loop := kubehandler.NewEventLoop("live-first", kubehandler.WithPriorityLanes(tt.lanes), kubehandler.WithMetrics(reg))
			loop.Register(h)
			kubehandlertest.Start(t, loop, 1)
			// Registered after Start, so it runs first: a failing test
			// releases the held call, and the loop can stop.
			releaseHeld := sync.OnceFunc(func() { close(release) })
			t.Cleanup(releaseHeld)
			<-started

			// The first call holds the only worker; the other 29 wait.
			target, total := "live", listed+1
			if tt.live == "add" {
				f.source.Create(configMap("ns", target, "0"))
			} else {
				target, total = "init-0", listed
				if h.Calls()[0].Key.Name == target {
					target = "init-1"
				}
				f.source.Update(configMap("ns", target, "1"))
			}
			eventually(t, "the live event queued", func() bool {
				if !tt.lanes {
					return laneDepth(t, reg, "live-first", "high") == listed
				}
				return laneDepth(t, reg, "live-first", "high") == 1
			})
			releaseHeld()
			eventually(t, "every object handled", func() bool { return len(h.Calls()) == total })
			at := -1
			for i, c := range h.Calls() {
				if c.Key.Name == target {
					at = i
				}
			}
			want := 1 // right after the call holding the worker
			if !tt.lanes {
				want = total - 1
			}
			if at != want {
				t.Errorf("the live %s of %s was call %d, want %d", tt.live, target, at, want)
			}
		})
	}
}

// laneDepth is kubehandler_queue_depth{name=loop,priority=priority}.
func laneDepth(t *testing.T, reg *prometheus.Registry, loop, priority string) float64 {
	t.Helper()
	return kubehandler.LaneSeries(t, reg, "kubehandler_queue_depth", loop)[priority].GetGauge().GetValue()
}

// EnqueueBackground waits behind the initial list; Enqueue of a key still
// waiting in it moves that key up.
func TestEnqueueBackground(t *testing.T) {
	const listed = 10
	f := newListedFixture(t, initialNames(listed)...)
	h := newRecorder(f.informer, "cm")
	started, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	var background, moved kubehandler.Key
	var enqueueErr error
	h.Fn = func(ctx context.Context, ev kubehandler.Event) error {
		switch {
		case first.CompareAndSwap(false, true):
			close(started)
			<-release
		case ev.Key.Name == "trigger":
			_, err1 := kubehandler.EnqueueBackground(ctx, background)
			_, err2 := kubehandler.Enqueue(ctx, moved)
			enqueueErr = errors.Join(err1, err2)
		}
		return nil
	}
	reg := prometheus.NewRegistry()
	loop := kubehandler.NewEventLoop("background", kubehandler.WithPriorityLanes(true), kubehandler.WithMetrics(reg))
	loop.Register(h)
	kubehandlertest.Start(t, loop, 1)
	releaseHeld := sync.OnceFunc(func() { close(release) })
	t.Cleanup(releaseHeld) // runs before the loop's: a failing test does not hang
	<-started
	// background: the object being handled now; moved: one still waiting.
	background = h.Calls()[0].Key
	moved = kubehandler.Key{Kind: "cm", Namespace: "ns", Name: "init-0"}
	if moved == background {
		moved.Name = "init-1"
	}
	f.source.Create(configMap("ns", "trigger", "0"))
	eventually(t, "trigger queued", func() bool { return laneDepth(t, reg, "background", "high") == 1 })
	releaseHeld()
	eventually(t, "every call made", func() bool { return len(h.Calls()) == listed+2 })
	if enqueueErr != nil {
		t.Fatal(enqueueErr)
	}
	var order []string
	for _, c := range h.Calls() {
		order = append(order, c.Key.Name)
	}
	if order[1] != "trigger" || order[2] != moved.Name || order[len(order)-1] != background.Name {
		t.Errorf("calls %v: want the held call, trigger, %s (moved up by Enqueue), ..., %s last (EnqueueBackground)",
			order, moved.Name, background.Name)
	}
}

// A retry and a RequeueAfter keep the lane of the event they repeat: an
// object of the initial list is dispatched from the low lane each time, a
// live one from the high lane.
func TestRetriesKeepTheirLane(t *testing.T) {
	for _, outcome := range []string{"error", "requeue"} {
		t.Run(outcome, func(t *testing.T) {
			f := newListedFixture(t, "listed")
			h := newRecorder(f.informer, "cm")
			var calls sync.Map // name -> *atomic.Int32
			h.Fn = func(ctx context.Context, ev kubehandler.Event) error {
				n, _ := calls.LoadOrStore(ev.Key.Name, new(atomic.Int32))
				if n.(*atomic.Int32).Add(1) > 2 {
					return nil
				}
				if outcome == "error" {
					return errors.New("once more")
				}
				return kubehandler.RequeueAfter(time.Millisecond)
			}
			reg := prometheus.NewRegistry()
			loop := kubehandler.NewEventLoop("keep-lane", fastRetries(), kubehandler.WithPriorityLanes(true), kubehandler.WithMetrics(reg))
			loop.Register(h)
			kubehandlertest.Start(t, loop, 2)
			key := func(name string) kubehandler.Key { return kubehandler.Key{Kind: "cm", Namespace: "ns", Name: name} }
			// Dispatching: the loop's handler is on the informer, past its
			// initial list. What is created now is live.
			eventually(t, "the listed object dispatched", func() bool { return len(h.CallsFor(key("listed"))) > 0 })
			f.source.Create(configMap("ns", "live", "0"))
			eventually(t, "three calls each", func() bool {
				return len(h.CallsFor(key("listed"))) == 3 && len(h.CallsFor(key("live"))) == 3
			})
			waits := laneWaits(t, reg, "keep-lane")
			if waits["low"] != 3 || waits["high"] != 3 {
				t.Errorf("dispatches by lane = %v, want 3 low (the listed object, its %s twice) and 3 high (the live one)", waits, outcome)
			}
		})
	}
}

// laneWaits returns the number of dispatches by lane of loop, from
// kubehandler_queue_wait_seconds.
func laneWaits(t *testing.T, reg *prometheus.Registry, loop string) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	for priority, m := range kubehandler.LaneSeries(t, reg, "kubehandler_queue_wait_seconds", loop) {
		out[priority] = m.GetHistogram().GetSampleCount()
	}
	return out
}

// Promises 1, 3 and 4 in both settings, with an initial list: objects
// listed at start and others created, updated and deleted live meanwhile,
// handlers failing at random; no two calls of a key overlap, and every key
// ends on its final state.
func TestPromisesWithAndWithoutLanes(t *testing.T) {
	for _, ls := range laneSettings {
		t.Run(ls.name, func(t *testing.T) {
			listed := initialNames(100)
			f := newListedFixture(t, listed...)
			h := newRecorder(f.informer, "cm")
			var mu sync.Mutex
			rng := rand.New(rand.NewPCG(3, 4))
			var failures atomic.Int64
			h.Fn = func(context.Context, kubehandler.Event) error {
				mu.Lock()
				fail := rng.Float64() < 0.2
				mu.Unlock()
				time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond)
				if fail {
					failures.Add(1)
					return errors.New("random failure")
				}
				return nil
			}
			loop := kubehandler.NewEventLoop("promises", fastRetries(), kubehandler.WithPriorityLanes(ls.lanes))
			loop.Register(h)
			kubehandlertest.Start(t, loop, 8)

			names := make(map[cache.ObjectName]bool)
			for _, n := range listed {
				names[cache.ObjectName{Namespace: "ns", Name: n}] = true
			}
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(w), 9))
					// Each writer owns a quarter of the listed objects and
					// its live ones: it knows which exist.
					own := listed[w*25 : (w+1)*25]
					for i := range 40 {
						name := own[r.IntN(len(own))]
						if i%4 == 0 {
							name = fmt.Sprintf("live-%d-%d", w, i)
						}
						if _, exists := f.source.Get("ns", name); exists {
							f.source.Update(configMap("ns", name, strconv.Itoa(i+1)))
						} else {
							f.source.Create(configMap("ns", name, strconv.Itoa(i+1)))
						}
						if r.IntN(5) == 0 {
							f.source.Delete("ns", name)
						}
					}
				})
				for i := 0; i < 40; i += 4 {
					names[cache.ObjectName{Namespace: "ns", Name: fmt.Sprintf("live-%d-%d", w, i)}] = true
				}
			}
			wg.Wait()
			eventually(t, "final state of every key", func() bool { ok, _ := h.Matches(sourceState("cm", f.source, names)); return ok })
			if o := h.Overlaps(); len(o) > 0 {
				t.Fatalf("%d calls overlapped another call of the same key, first %s", len(o), o[0])
			}
			if failures.Load() == 0 {
				t.Fatal("no call failed; the test proves nothing about retries")
			}
		})
	}
}
