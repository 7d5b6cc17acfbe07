package kubehandler

import (
	"fmt"
	"os"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The lanes of the entry queue (promise 9), tested on the entry queue
// itself; lanes_test.go tests them through an EventLoop.

// Promises 1-8 hold without lanes too: KUBEHANDLER_TEST_LANES=off runs the
// whole suite with WithPriorityLanes(false) as the default.
func init() {
	if os.Getenv("KUBEHANDLER_TEST_LANES") == "off" {
		lanesByDefault = false
	}
}

// lowEntry returns an entry whose pending events are low-lane ones.
func lowEntry(name string) *entry {
	e := testEntry(name)
	e.lane = lowLane
	return e
}

// The high lane goes first; each lane is FIFO; without lanes the queue is
// one FIFO in the order of the adds.
func TestEntryQueueLanesOrder(t *testing.T) {
	for _, tt := range []struct {
		name  string
		lanes bool
		want  []string
	}{
		{"lanes", true, []string{"h1", "h2", "l1", "l2", "l3"}},
		{"without lanes", false, []string{"l1", "h1", "l2", "h2", "l3"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			eq, _ := newTestEntryQueue(t, 1, nil)
			eq.lanes = tt.lanes
			for _, e := range []*entry{lowEntry("l1"), testEntry("h1"), lowEntry("l2"), testEntry("h2"), lowEntry("l3")} {
				eq.Add(e)
			}
			var got []string
			for eq.Len() > 0 {
				got = append(got, get(t, eq).key().Name)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("order = %v, want %v", got, tt.want)
			}
		})
	}
}

// A live event for an entry waiting in the low lane moves it up: it is
// dispatched next, once, and the place it left in the low lane is skipped.
func TestEntryQueueMoveUp(t *testing.T) {
	eq, _ := newTestEntryQueue(t, 1, nil)
	l1, l2, l3 := lowEntry("l1"), lowEntry("l2"), lowEntry("l3")
	for _, e := range []*entry{l1, l2, l3} {
		eq.Add(e)
	}
	eq.mu.Lock()
	l2.lane = highLane // what workQueue.enqueue does for a live event
	eq.addLocked(l2)
	eq.mu.Unlock()
	if n := eq.Len(); n != 3 {
		t.Fatalf("Len = %d after the move, want 3", n)
	}
	var got []string
	for eq.Len() > 0 {
		got = append(got, get(t, eq).key().Name)
	}
	if want := "[l2 l1 l3]"; fmt.Sprint(got) != want {
		t.Errorf("order = %v, want %s", got, want)
	}
	// Done and queued again in the low lane: its old place (skipped) does
	// not make it come out twice.
	eq.Done(l2)
	l2.lane = lowLane
	eq.Add(l2)
	if got := get(t, eq); got != l2 || eq.Len() != 0 {
		t.Errorf("Get = %s with Len %d after, want l2 once", got.key(), eq.Len())
	}
}

// Promise 9, no starvation, by counted dispatches: the high lane is never
// empty (every dispatch adds a new live entry: a stream keeping every worker
// busy), and still every low-lane entry is dispatched, the k-th of them
// within k*lowLaneTurn dispatches; the high lane gets the rest.
func TestEntryQueueNoStarvation(t *testing.T) {
	const workers, lows = 4, 50
	eq, _ := newTestEntryQueue(t, workers, nil)
	for i := range lows {
		eq.Add(lowEntry(fmt.Sprint("low-", i)))
	}
	live := 0
	addLive := func() {
		eq.Add(testEntry(fmt.Sprint("live-", live)))
		live++
	}
	for range workers + 1 {
		addLive()
	}
	lowSeen, highSeen := 0, 0
	for dispatch := 1; lowSeen < lows; dispatch++ {
		if dispatch > lows*lowLaneTurn {
			t.Fatalf("after %d dispatches only %d of %d low-lane entries were dispatched", dispatch-1, lowSeen, lows)
		}
		e := get(t, eq)
		eq.Done(e)
		addLive()
		if e.lane == lowLane {
			lowSeen++
			if bound := lowSeen * lowLaneTurn; dispatch > bound {
				t.Fatalf("low-lane entry %d dispatched at dispatch %d, want within %d", lowSeen, dispatch, bound)
			}
		} else {
			highSeen++
		}
	}
	if want := lows * (lowLaneTurn - 1); highSeen != want {
		t.Errorf("the high lane got %d dispatches beside %d low ones, want %d", highSeen, lows, want)
	}
}

// A new leader's queue: what the standby queued becomes low lane, behind
// the low lane's entries, and live events after it go first again.
func TestEntryQueueDemoteAll(t *testing.T) {
	eq, _ := newTestEntryQueue(t, 1, nil)
	entries := newEntryMap()
	l1, h1, h2 := entries.entryFor(testEntry("l1").key()), entries.entryFor(testEntry("h1").key()), entries.entryFor(testEntry("h2").key())
	l1.lane = lowLane
	for _, e := range []*entry{l1, h1, h2} {
		p := e.events()
		p.push(addEvent, nil)
		e.setEvents(p)
		eq.Add(e)
	}
	eq.demoteAll(&entries)
	live := testEntry("live")
	eq.Add(live)
	var got []string
	for eq.Len() > 0 {
		got = append(got, get(t, eq).key().Name)
	}
	if want := "[live l1 h1 h2]"; fmt.Sprint(got) != want {
		t.Errorf("order = %v, want %s", got, want)
	}
	if h1.lane != lowLane {
		t.Error("a demoted entry's lane is still high: a retry of it would go first")
	}
}

// kubehandler_queue_depth counts the entries queued in each lane, a move up
// included, and kubehandler_queue_wait_seconds observes each dispatch under
// the lane it came from.
func TestEntryQueueLaneMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	eq, _ := newTestEntryQueue(t, 1, m)
	lane := func(name, priority string) *dto.Metric {
		t.Helper()
		m := LaneSeries(t, reg, name, "eq")[priority]
		if m == nil {
			t.Fatalf("no %s{name=eq,priority=%s}", name, priority)
		}
		return m
	}
	depths := func() string {
		return fmt.Sprint(lane("kubehandler_queue_depth", "high").GetGauge().GetValue(), " ",
			lane("kubehandler_queue_depth", "low").GetGauge().GetValue())
	}
	l1, l2, h := lowEntry("l1"), lowEntry("l2"), testEntry("h")
	eq.Add(l1)
	eq.Add(l2)
	eq.Add(h)
	if got := depths(); got != "1 2" {
		t.Errorf("depth high, low = %s, want 1 2", got)
	}
	eq.mu.Lock()
	l2.lane = highLane
	eq.addLocked(l2)
	eq.mu.Unlock()
	if got := depths(); got != "2 1" {
		t.Errorf("after a move up: depth high, low = %s, want 2 1", got)
	}
	for range 3 {
		get(t, eq)
	}
	if got := depths(); got != "0 0" {
		t.Errorf("after three Gets: depth high, low = %s, want 0 0", got)
	}
	if n := lane("kubehandler_queue_wait_seconds", "high").GetHistogram().GetSampleCount(); n != 2 {
		t.Errorf("high-lane waits observed = %d, want 2", n)
	}
	if n := lane("kubehandler_queue_wait_seconds", "low").GetHistogram().GetSampleCount(); n != 1 {
		t.Errorf("low-lane waits observed = %d, want 1", n)
	}
}

// LaneSeries returns the series of metric name of the queue called loop, by
// their priority label. Tests of the external package use it too.
func LaneSeries(t *testing.T, reg *prometheus.Registry, name, loop string) map[string]*dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.Metric{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["name"] == loop {
				out[labels["priority"]] = m
			}
		}
	}
	return out
}
