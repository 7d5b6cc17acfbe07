// Package bench measures kubehandler's EventLoop beside a plain client-go
// workqueue loop on the same informer workload, in one run, so that the
// figures are ratios on the same machine at the same moment. The initial
// lists run each system in a process of its own (InitialListInChild); the
// other workloads in the bench's process.
//
// Every workload uses a real SharedIndexInformer over an in-memory source of
// ConfigMaps (kubehandlertest.Source) and threadiness 4. The plain loop is the
// one client-go's documentation and sample-controller teach: Add the object's
// cache.ObjectName to a typed rate-limiting workqueue on every informer
// event; workers Get, handle, Forget (or AddRateLimited on error) and Done. It
// comes in two forms: one starting its workers at once, one waiting for the
// informer to sync first, as sample-controller and kubehandler do. The
// controller-runtime dispatcher is a controller as its users get it by
// default, with its priority queue (controllerruntime.go).
package bench

import (
	"context"
	"fmt"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// Threadiness is the number of workers of every loop measured.
const Threadiness = 4

// Impl is a dispatcher under test.
type Impl string

const (
	Kubehandler   Impl = "kubehandler"
	Plain         Impl = "plain"          // workers start at once
	PlainWaitSync Impl = "plain-waitsync" // workers start once the informer has synced
	// ControllerRuntime is a controller-runtime controller with its default
	// priority queue.
	ControllerRuntime Impl = "controller-runtime"
	// KubehandlerNoLanes is kubehandler with WithPriorityLanes(false): one
	// FIFO, as client-go's. Only the backlog workload runs it.
	KubehandlerNoLanes Impl = "kubehandler-nolanes"
)

// Impls are the dispatchers, in the order they are reported.
var Impls = []Impl{Kubehandler, Plain, PlainWaitSync, ControllerRuntime}

// BacklogImpls are the dispatchers of the backlog workload: Impls and
// kubehandler without lanes.
var BacklogImpls = append(slices.Clone(Impls), KubehandlerNoLanes)

// handlerFunc is the work done per call: the same function for every Impl.
type handlerFunc func(ctx context.Context, namespace, name string) error

// start runs impl's dispatcher and the informer, with handler, until the
// returned stop is called; stop returns once every goroutine has returned.
func start(impl Impl, informer cache.SharedIndexInformer, handler handlerFunc) (stop func()) {
	stopDispatcher := startDispatcher(impl, informer, handler)
	stopInformer := runInformer(informer)
	return func() {
		stopDispatcher()
		stopInformer()
	}
}

// runInformer runs informer until the returned stop is called.
func runInformer(informer cache.SharedIndexInformer) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { informer.RunWithContext(ctx) })
	return func() {
		cancel()
		wg.Wait()
	}
}

// startDispatcher runs impl's dispatcher over informer with handler until
// the returned stop is called; stop returns once every worker has returned.
func startDispatcher(impl Impl, informer cache.SharedIndexInformer, handler handlerFunc) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	switch impl {
	case Kubehandler, KubehandlerNoLanes:
		loop := kubehandler.NewEventLoop("bench", kubehandler.WithPriorityLanes(impl == Kubehandler))
		loop.Register(&benchHandler{
			DefaultHandler: kubehandler.DefaultHandler{Name: "configmaps", Informer: informer},
			handle:         handler,
		})
		wg.Go(func() {
			if err := loop.Run(ctx, Threadiness); err != nil {
				panic(err)
			}
		})
	case Plain, PlainWaitSync:
		stopLoop := startPlain(ctx, informer, handler, impl == PlainWaitSync)
		wg.Go(stopLoop)
	case ControllerRuntime:
		wg.Go(startControllerRuntime(ctx, informer, handler))
	default:
		panic("unknown impl " + impl)
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

type benchHandler struct {
	kubehandler.DefaultHandler
	handle handlerFunc
}

func (h *benchHandler) AddFunc(ctx context.Context, namespace, name string) error {
	return h.handle(ctx, namespace, name)
}

func (h *benchHandler) UpdateFunc(ctx context.Context, namespace, name string) error {
	return h.handle(ctx, namespace, name)
}

func (h *benchHandler) DeleteFunc(ctx context.Context, namespace, name string) error {
	return h.handle(ctx, namespace, name)
}

// startPlain starts the plain client-go loop and returns a function that
// waits for it to stop after ctx is cancelled.
func startPlain(ctx context.Context, informer cache.SharedIndexInformer, handler handlerFunc, waitSync bool) func() {
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
		workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "plain"})
	enqueue := func(obj interface{}) {
		name, err := cache.DeletionHandlingObjectToName(obj)
		if err != nil {
			panic(err)
		}
		queue.Add(name)
	}
	reg, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, newObj interface{}) { enqueue(newObj) },
		DeleteFunc: enqueue,
	})
	if err != nil {
		panic(err)
	}
	processNext := func() bool {
		name, shutdown := queue.Get()
		if shutdown {
			return false
		}
		defer queue.Done(name)
		if err := handler(ctx, name.Namespace, name.Name); err != nil {
			queue.AddRateLimited(name)
			return true
		}
		queue.Forget(name)
		return true
	}
	return func() {
		defer func() { _ = cache.ShutDownEventHandler(informer, reg) }()
		if waitSync && !cache.WaitFor(ctx, "", reg.HasSyncedChecker()) {
			queue.ShutDown()
			return
		}
		var wg sync.WaitGroup
		for range Threadiness {
			wg.Go(func() {
				for processNext() {
				}
			})
		}
		<-ctx.Done()
		queue.ShutDown()
		wg.Wait()
	}
}

func newSource() *kubehandlertest.Source {
	return kubehandlertest.NewSource(func() kruntime.Object { return &corev1.ConfigMapList{} })
}

func newInformer(s *kubehandlertest.Source) cache.SharedIndexInformer {
	return cache.NewSharedIndexInformer(s, &corev1.ConfigMap{}, 0, cache.Indexers{})
}

func configMap(i, version int) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "cm-" + strconv.Itoa(i)},
		Data:       map[string]string{"version": strconv.Itoa(version)},
	}
}

// ListResult is the outcome of InitialList.
type ListResult struct {
	Objects          int
	Elapsed          time.Duration
	AllocsPerObject  float64
	ObjectsPerSecond float64
	// CPUPerObject is the process's CPU time (user and system, all
	// threads, GC included) per object: steadier than the wall time on a
	// shared machine, and what the wall time is made of on a small one.
	CPUPerObject time.Duration
	// PeakHeap is the most heap (bytes of objects, garbage not yet swept
	// included) seen above the heap before the start, sampled every
	// millisecond; RetainedHeap is what is left above it after a GC once
	// every object was handled, the loop still running. Both include the
	// informer's cache, which is the same for every Impl: compare them.
	PeakHeap, RetainedHeap uint64
}

// InitialList measures the time from starting the informer and the loop
// until the handler has been called once for each of n existing objects,
// and the heap allocations made meanwhile per object (informer included,
// which is the same for every Impl).
func InitialList(impl Impl, n int) ListResult {
	s := newSource()
	for i := range n {
		s.Create(configMap(i, 0))
	}
	informer := newInformer(s)
	var calls atomic.Int64
	done := make(chan struct{})
	handler := func(ctx context.Context, namespace, name string) error {
		if calls.Add(1) == int64(n) {
			close(done)
		}
		return nil
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	base := heapObjects()
	peak, stopSampling := sampleHeap()
	cpuBefore := cpuTime()
	began := time.Now()
	stop := start(impl, informer, handler)
	<-done
	elapsed := time.Since(began)
	cpu := cpuTime() - cpuBefore
	runtime.ReadMemStats(&after)
	stopSampling()
	runtime.GC()
	retained := heapObjects()
	stop()
	return ListResult{
		Objects:          n,
		Elapsed:          elapsed,
		AllocsPerObject:  float64(after.Mallocs-before.Mallocs) / float64(n),
		ObjectsPerSecond: float64(n) / elapsed.Seconds(),
		CPUPerObject:     cpu / time.Duration(n),
		PeakHeap:         sub(*peak, base),
		RetainedHeap:     sub(retained, base),
	}
}

func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

// heapObjects returns the bytes of heap objects, live or not yet swept.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleHeap records the highest heapObjects every millisecond in *peak
// until stop is called.
func sampleHeap() (peak *uint64, stop func()) {
	peak = new(uint64)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			*peak = max(*peak, heapObjects())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return peak, func() {
		close(done)
		wg.Wait()
	}
}

// StormResult is the outcome of UpdateStorm for one Impl.
type StormResult struct {
	Updates int
	Calls   int64
	// Final reports whether every key's last call saw its final version.
	Final bool
}

// UpdateStorm creates keys objects, then runs every Impl in impls at once,
// each with its own workers and handlers, on one shared informer: each sees
// the same event stream at the same moments, so the difference in their
// calls comes from their dispatch alone, not from the timing noise of the
// informer (which decides how long a storm lasts, and so how many calls any
// dispatcher whose workers never idle makes). Once every key has been
// handled, it updates each key updates times (round robin, as fast as the
// source takes them). The handler reads the object from the informer's cache
// and works for work. It counts each Impl's calls caused by the updates and
// checks that every key's last call saw its final version.
func UpdateStorm(impls []Impl, keys, updates int, work time.Duration) map[Impl]StormResult {
	s := newSource()
	for i := range keys {
		s.Create(configMap(i, 0))
	}
	informer := newInformer(s)
	type tally struct {
		calls    atomic.Int64
		mu       sync.Mutex
		lastSeen map[string]string // name -> data version of the last call
	}
	tallies := make(map[Impl]*tally, len(impls))
	var stops []func()
	for _, impl := range impls {
		t := &tally{lastSeen: make(map[string]string, keys)}
		tallies[impl] = t
		handler := func(ctx context.Context, namespace, name string) error {
			t.calls.Add(1)
			obj, exists, err := informer.GetStore().GetByKey(namespace + "/" + name)
			if err != nil || !exists {
				return fmt.Errorf("%s/%s not in the cache: %v", namespace, name, err)
			}
			version := obj.(*corev1.ConfigMap).Data["version"]
			t.mu.Lock()
			t.lastSeen[name] = version
			t.mu.Unlock()
			time.Sleep(work)
			return nil
		}
		stops = append(stops, startDispatcher(impl, informer, handler))
	}
	stopInformer := runInformer(informer)
	defer func() {
		for _, stop := range stops {
			stop()
		}
		stopInformer()
	}()
	allAt := func(version string) bool {
		for _, t := range tallies {
			t.mu.Lock()
			ok := len(t.lastSeen) == keys
			for _, v := range t.lastSeen {
				ok = ok && v == version
			}
			t.mu.Unlock()
			if !ok {
				return false
			}
		}
		return true
	}
	waitUntil(func() bool { return allAt("0") })
	for _, t := range tallies {
		t.calls.Store(0)
	}

	for v := 1; v <= updates; v++ {
		for i := range keys {
			s.Update(configMap(i, v))
		}
	}
	final := waitUntil(func() bool { return allAt(strconv.Itoa(updates)) })
	// Let any call still queued behind the final one happen before counting.
	time.Sleep(50 * time.Millisecond)
	out := make(map[Impl]StormResult, len(impls))
	for impl, t := range tallies {
		t.mu.Lock()
		ok := final
		for _, v := range t.lastSeen {
			ok = ok && v == strconv.Itoa(updates)
		}
		t.mu.Unlock()
		out[impl] = StormResult{Updates: keys * updates, Calls: t.calls.Load(), Final: ok}
	}
	return out
}

// LatencyResult is the outcome of Latency.
type LatencyResult struct {
	Events        int
	Handled       int
	P50, P90, P99 time.Duration
}

// Latency updates objects at rate events per second for duration and
// measures, for every version a handler sees, the time from the update to
// the start of the call.
func Latency(impl Impl, rate int, duration time.Duration) LatencyResult {
	const keys = 1000
	s := newSource()
	for i := range keys {
		s.Create(configMap(i, 0))
	}
	informer := newInformer(s)
	total := int(float64(rate) * duration.Seconds())
	sent := make([]atomic.Int64, total+1) // version -> UnixNano of its update
	var mu sync.Mutex
	var latencies []time.Duration
	var measuring atomic.Bool
	handler := func(ctx context.Context, namespace, name string) error {
		now := time.Now().UnixNano()
		if !measuring.Load() {
			return nil
		}
		obj, exists, _ := informer.GetStore().GetByKey(namespace + "/" + name)
		if !exists {
			return nil
		}
		v, _ := strconv.Atoi(obj.(*corev1.ConfigMap).Data["version"])
		if v == 0 {
			return nil
		}
		if at := sent[v].Swap(0); at != 0 {
			mu.Lock()
			latencies = append(latencies, time.Duration(now-at))
			mu.Unlock()
		}
		return nil
	}
	var initial atomic.Int64
	counting := func(ctx context.Context, namespace, name string) error {
		initial.Add(1)
		return handler(ctx, namespace, name)
	}
	stop := start(impl, informer, counting)
	defer stop()
	waitUntil(func() bool { return initial.Load() >= keys })
	measuring.Store(true)

	interval := time.Second / time.Duration(rate)
	began := time.Now()
	for v := 1; v <= total; v++ {
		// Pace against the start time, not the previous send, so that
		// scheduling delays do not lower the rate.
		if d := time.Until(began.Add(time.Duration(v) * interval)); d > 0 {
			time.Sleep(d)
		}
		sent[v].Store(time.Now().UnixNano())
		s.Update(configMap(v%keys, v))
	}
	time.Sleep(200 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(latencies)
	pct := func(p float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(p*float64(len(latencies))))]
	}
	return LatencyResult{Events: total, Handled: len(latencies), P50: pct(0.50), P90: pct(0.90), P99: pct(0.99)}
}

// waitUntil polls cond for up to a minute and reports whether it held.
func waitUntil(cond func() bool) bool {
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
	return true
}

// cpuTime returns the CPU time the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
