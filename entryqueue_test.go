package kubehandler

import (
	"fmt"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clocktesting "k8s.io/utils/clock/testing"
)

// The entry queue stands in for client-go's base queue (workqueue.Typed):
// these tests state the guarantees client-go's queue documents, plus what
// it does differently (ShutDown), the workers' slots and the metrics.

func newTestEntryQueue(t *testing.T, workers int, m *metrics) (*entryQueue, *clocktesting.FakeClock) {
	t.Helper()
	clock := clocktesting.NewFakeClock(time.Now())
	return newEntryQueue(&sync.Mutex{}, clock, workers, m, "eq", true, true), clock
}

func testEntry(name string) *entry { return newEntry(Key{Kind: "k", Namespace: "ns", Name: name}) }

// get takes an entry that must be queued.
func get(t *testing.T, eq *entryQueue) *entry {
	t.Helper()
	if eq.Len() == 0 {
		t.Fatal("Get on an empty queue would block")
	}
	e, shutdown := eq.Get()
	if shutdown {
		t.Fatal("Get: shutdown")
	}
	return e
}

// Fair: entries come out in the order they were added. Stingy: an entry
// added twice while it waits is queued once.
func TestEntryQueueFIFOAndNoDuplicates(t *testing.T) {
	eq, _ := newTestEntryQueue(t, 1, nil)
	a, b, c := testEntry("a"), testEntry("b"), testEntry("c")
	for _, e := range []*entry{a, b, a, c, b} {
		eq.Add(e)
	}
	if n := eq.Len(); n != 3 {
		t.Fatalf("Len = %d, want 3", n)
	}
	for _, want := range []*entry{a, b, c} {
		if got := get(t, eq); got != want {
			t.Fatalf("Get = %s, want %s", got.key(), want.key())
		}
	}
	if n := eq.Len(); n != 0 {
		t.Errorf("Len = %d, want 0", n)
	}
}

// One in flight per entry: an entry added while it is processing is not
// handed out again until Done, which queues it once, however many times it
// was added meanwhile. Done of an entry not added meanwhile queues nothing.
func TestEntryQueueReAddWhileProcessing(t *testing.T) {
	eq, _ := newTestEntryQueue(t, 1, nil)
	a := testEntry("a")
	eq.Add(a)
	if get(t, eq) != a || !a.has(flagProcessing) || a.has(flagDirty) {
		t.Fatalf("after Get: processing=%v dirty=%v, want true false", a.has(flagProcessing), a.has(flagDirty))
	}
	eq.Add(a)
	eq.Add(a)
	if n := eq.Len(); n != 0 {
		t.Fatalf("Len = %d while the entry is processing, want 0", n)
	}
	if !a.has(flagDirty) {
		t.Fatal("an entry added while processing is not marked dirty")
	}
	eq.Done(a)
	if n := eq.Len(); n != 1 || a.has(flagProcessing) {
		t.Fatalf("after Done: Len = %d, processing = %v; want 1, false", n, a.has(flagProcessing))
	}
	if get(t, eq) != a {
		t.Fatal("Get did not return the re-added entry")
	}
	eq.Done(a)
	if n := eq.Len(); n != 0 {
		t.Errorf("Done of an entry not added meanwhile queued it: Len = %d", n)
	}
}

// An entry retired from the workQueue's map is never queued again.
func TestEntryQueueIgnoresRemovedEntries(t *testing.T) {
	eq, _ := newTestEntryQueue(t, 1, nil)
	a := testEntry("a")
	a.set(flagRemoved, true)
	eq.Add(a)
	if n := eq.Len(); n != 0 || a.has(flagDirty) {
		t.Errorf("a removed entry was queued: Len = %d, dirty = %v", n, a.has(flagDirty))
	}
}

// Get blocks until an entry is added, or until ShutDown.
func TestEntryQueueGetWaits(t *testing.T) {
	eq, _ := newTestEntryQueue(t, 1, nil)
	type got struct {
		e        *entry
		shutdown bool
	}
	results := make(chan got)
	for range 2 {
		go func() {
			e, shutdown := eq.Get()
			results <- got{e, shutdown}
		}()
	}
	a := testEntry("a")
	eq.Add(a)
	receive := func() got {
		t.Helper()
		select {
		case g := <-results:
			return g
		case <-time.After(30 * time.Second):
			t.Fatal("Get did not return")
			return got{}
		}
	}
	if g := receive(); g.e != a || g.shutdown {
		t.Errorf("Get = %v, %v; want the added entry", g.e, g.shutdown)
	}
	eq.ShutDown()
	if g := receive(); g.e != nil || !g.shutdown {
		t.Errorf("Get after ShutDown = %v, %v; want nil, shutdown", g.e, g.shutdown)
	}
}

// ShutDown, unlike client-go's, stops handing out entries at once: those
// still queued keep their events for the next Run, which starts from a new
// entry queue. Adds are ignored from then on. ShutDownWithDrain is the same:
// the runner waits for its workers itself.
func TestEntryQueueShutDown(t *testing.T) {
	for _, how := range []string{"ShutDown", "ShutDownWithDrain"} {
		t.Run(how, func(t *testing.T) {
			eq, _ := newTestEntryQueue(t, 1, nil)
			a, b := testEntry("a"), testEntry("b")
			eq.Add(a)
			if eq.ShuttingDown() {
				t.Fatal("ShuttingDown before ShutDown")
			}
			if how == "ShutDown" {
				eq.ShutDown()
			} else {
				eq.ShutDownWithDrain()
			}
			if !eq.ShuttingDown() {
				t.Fatal("not ShuttingDown after ShutDown")
			}
			if e, shutdown := eq.Get(); e != nil || !shutdown {
				t.Errorf("Get = %v, %v; want nil, shutdown, with an entry still queued", e, shutdown)
			}
			eq.Add(b)
			if n := eq.Len(); n != 1 || b.has(flagDirty) {
				t.Errorf("Add after ShutDown: Len = %d, dirty = %v; want 1 (a, left queued), false", n, b.has(flagDirty))
			}
		})
	}
}

// The workers' slots: startCall records a worker's entry and when it
// started; endCall empties the slot and marks the entry done, queueing it
// again if it was added meanwhile.
func TestEntryQueueSlots(t *testing.T) {
	eq, clock := newTestEntryQueue(t, 2, nil)
	a := testEntry("a")
	eq.Add(a)
	eq.mu.Lock()
	e, _ := eq.getLocked()
	eq.startCall(1, e, updateEvent, highLane)
	eq.mu.Unlock()
	started := clock.Now()
	if s := eq.slots[1]; s.entry != a || !s.started.Equal(started) {
		t.Fatalf("slot 1 = %+v, want entry a started now", s)
	}
	if s := eq.slots[0]; s.entry != nil {
		t.Fatalf("slot 0 = %+v, want idle", s)
	}
	eq.Add(a)
	clock.Step(time.Second)
	eq.mu.Lock()
	eq.endCall(1)
	eq.mu.Unlock()
	if s := eq.slots[1]; s.entry != nil || a.has(flagProcessing) {
		t.Fatalf("after endCall: slot %+v, processing %v; want idle, false", s, a.has(flagProcessing))
	}
	if n := eq.Len(); n != 1 {
		t.Errorf("an entry added during its call is not queued after endCall: Len = %d", n)
	}
}

// A long queue keeps its order across the fifo's blocks, holds no more
// blocks than its entries fill, and drops each block once consumed.
func TestEntryQueueLongQueue(t *testing.T) {
	eq, _ := newTestEntryQueue(t, 1, nil)
	perBlock := len(fifoBlock{}.items)
	var all []*entry
	for i := range 3*perBlock + 7 {
		e := testEntry(fmt.Sprint(i))
		all = append(all, e)
		eq.Add(e)
	}
	blocks := func() int {
		n := 0
		for b := eq.fifos[highLane].head; b != nil; b = b.next {
			n++
		}
		return n
	}
	if n := blocks(); n != 4 {
		t.Fatalf("%d entries in %d blocks, want 4", len(all), n)
	}
	for i, want := range all {
		if i == 2*perBlock {
			if n := blocks(); n != 2 {
				t.Fatalf("after %d Gets the queue holds %d blocks, want 2", i, n)
			}
		}
		if got := get(t, eq); got != want {
			t.Fatalf("Get %d = %s, want %s", i, got.key(), want.key())
		}
	}
	if n := blocks(); n != 1 {
		t.Errorf("a drained queue holds %d blocks, want 1", n)
	}
	eq.Add(testEntry("again"))
	if got := get(t, eq); got.key().Name != "again" {
		t.Errorf("after draining, Get = %s, want again", got.key())
	}
}

// resetEntries clears the queue flags once a Run is over, except for an
// entry still processing (a call that outlived its Run), which the next Run
// leaves alone until the call returns.
func TestResetEntries(t *testing.T) {
	entries := newEntryMap()
	idle, processing := entries.entryFor(testEntry("idle").key()), entries.entryFor(testEntry("processing").key())
	idle.set(flagDirty, true)
	processing.set(flagDirty|flagProcessing, true)
	resetEntries(&entries)
	if idle.has(flagDirty) {
		t.Error("an idle entry stayed dirty")
	}
	if !processing.has(flagDirty) || !processing.has(flagProcessing) {
		t.Error("the flags of an entry still processing were cleared")
	}
}

// The standard workqueue metrics, as client-go's queue reports them: adds
// and depth count every add of an entry not already waiting (one added
// while processing too), queue_duration the time from the first add to Get,
// work_duration a call's time, and the unfinished-work gauges the calls in
// the slots.
func TestEntryQueueMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	eq, clock := newTestEntryQueue(t, 2, m)
	metric := func(name string) *dto.Metric {
		t.Helper()
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range families {
			if f.GetName() == name {
				for _, m := range f.GetMetric() {
					for _, l := range m.GetLabel() {
						if l.GetName() == "name" && l.GetValue() == "eq" {
							return m
						}
					}
				}
			}
		}
		t.Fatalf("no %s{name=eq}", name)
		return nil
	}
	check := func(what string, got, want float64) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	start := func(worker int) *entry {
		eq.mu.Lock()
		defer eq.mu.Unlock()
		e, _ := eq.getLocked()
		eq.startCall(worker, e, updateEvent, highLane)
		return e
	}
	end := func(worker int) {
		eq.mu.Lock()
		defer eq.mu.Unlock()
		eq.endCall(worker)
	}

	a, b := testEntry("a"), testEntry("b")
	eq.Add(a)
	clock.Step(time.Second)
	eq.Add(b)
	eq.Add(a) // waiting already: not counted
	check("adds", metric("workqueue_adds_total").GetCounter().GetValue(), 2)
	check("depth", metric("workqueue_depth").GetGauge().GetValue(), 2)

	clock.Step(2 * time.Second)
	start(0) // a, queued 3s ago
	check("depth after Get", metric("workqueue_depth").GetGauge().GetValue(), 1)
	latency := metric("workqueue_queue_duration_seconds").GetHistogram()
	check("queue_duration count", float64(latency.GetSampleCount()), 1)
	check("queue_duration sum", latency.GetSampleSum(), 3)

	clock.Step(time.Second)
	start(1) // b
	clock.Step(4 * time.Second)
	eq.updateUnfinishedWork()
	check("unfinished_work_seconds", metric("workqueue_unfinished_work_seconds").GetGauge().GetValue(), 5+4)
	check("longest_running_processor_seconds", metric("workqueue_longest_running_processor_seconds").GetGauge().GetValue(), 5)

	eq.Add(a) // while processing: counted, queued when done
	check("adds", metric("workqueue_adds_total").GetCounter().GetValue(), 3)
	check("depth", metric("workqueue_depth").GetGauge().GetValue(), 1)
	end(0)
	work := metric("workqueue_work_duration_seconds").GetHistogram()
	check("work_duration count", float64(work.GetSampleCount()), 1)
	check("work_duration sum", work.GetSampleSum(), 5)
	end(1)
	eq.updateUnfinishedWork()
	check("unfinished_work_seconds when idle", metric("workqueue_unfinished_work_seconds").GetGauge().GetValue(), 0)
	check("longest_running_processor_seconds when idle", metric("workqueue_longest_running_processor_seconds").GetGauge().GetValue(), 0)

	clock.Step(time.Second)
	if got := get(t, eq); got != a {
		t.Fatalf("Get = %s, want a, re-added during its call", got.key())
	}
	latency = metric("workqueue_queue_duration_seconds").GetHistogram()
	check("queue_duration count", float64(latency.GetSampleCount()), 3)
	// 3s for a, 3s for b, 1s for a again (from its add during its call).
	check("queue_duration sum", latency.GetSampleSum(), 3+3+1)
	check("depth", metric("workqueue_depth").GetGauge().GetValue(), 0)
}

// Every queued key has an entry, so its size is most of what a key costs
// beyond the informer's cache: at a million objects each 16 bytes is 16 MB.
// The allocator rounds an entry up to its size class (80, 96, 112, 128
// bytes); this bounds the class. The rare parts (a second pending stage, a
// failure) live out of line so that the common entry stays small.
func TestEntrySize(t *testing.T) {
	const limit = 64
	if size := unsafe.Sizeof(entry{}); size > limit {
		t.Errorf("unsafe.Sizeof(entry{}) = %d bytes, want at most %d: keep rarely used fields out of line", size, limit)
	}
}
