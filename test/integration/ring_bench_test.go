package integration

import (
	"fmt"
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/kubehandler/kubehandler/kubelabtest"
)

// The workload of the ring benchmark (issue 12's figures).
const (
	benchObjects     = 3000
	benchWork        = 5 * time.Millisecond
	benchThreadiness = 4
)

// listed returns how long after from every object of uids had a call that
// worked its full time, and how long after the first call started; false
// while one has not.
func (ev *events) listed(uids map[string]string, from int64) (total, dispatch time.Duration, ok bool) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	handled := make(map[string]int64, len(uids))
	first := int64(math.MaxInt64)
	for _, c := range ev.calls {
		first = min(first, c.start)
		if !c.done || c.end == math.MaxInt64 {
			continue
		}
		if e, seen := handled[c.uid]; !seen || c.end < e {
			handled[c.uid] = c.end
		}
	}
	var last int64
	for uid := range uids {
		e, seen := handled[uid]
		if !seen {
			return 0, 0, false
		}
		last = max(last, e)
	}
	return time.Duration(last - from), time.Duration(last - first), true
}

// ringRun is what one ring of the benchmark measured.
type ringRun struct {
	list, dispatch      time.Duration // the initial list handled: since the start, since the first call
	graceful, kill      time.Duration // hand-over times (3 replicas only)
	replicas, handledBy int
}

// runRing starts a ring of n replicas named name at once over the objects
// of ns (uids), measures how long until each object was handled, and, for
// n > 1, the hand-over of a replica stopped gracefully and then of one
// killed; it stops the ring before it returns.
func runRing(b *testing.B, lab *kubelabtest.Lab, ns, name string, n int, uids map[string]string) ringRun {
	b.Helper()
	r := newRing(b, lab, ns, name, replicaConfig{
		Lease: ringLease, Renew: ringRenew, Retry: ringRetry, Work: benchWork,
		Threadiness: benchThreadiness, Slots: ringSlots,
	})
	defer r.stopAll()
	run := ringRun{replicas: n}
	started := now()
	for range n {
		r.start()
	}
	eventually(b, 5*time.Minute, func() (bool, string) {
		var ok bool
		run.list, run.dispatch, ok = r.ev.listed(uids, started)
		return ok, fmt.Sprintf("%d replicas: the initial list of %d objects not handled", n, len(uids))
	})
	run.handledBy = len(r.ev.handled(0))
	if n == 1 {
		return run
	}
	r.waitBalanced(ringPhase)
	leaver := r.live[0]
	at := r.stop(leaver, syscall.SIGTERM)
	r.waitBalanced(ringPhase)
	run.graceful, _ = r.slots.handedOver(leaver, at)
	victim := r.live[0]
	at = r.stop(victim, syscall.SIGKILL)
	r.waitBalanced(ringPhase)
	run.kill, _ = r.slots.handedOver(victim, at)
	return run
}

// BenchmarkRing measures sharded dispatch (WithSharding, 16 slots, client
// side) on kubelab, with child processes as replicas and a handler that
// works 5 ms per call over 3,000 ConfigMaps, threadiness 4: the time from
// starting the replicas until every object was handled once, for 1 replica
// and for 3 (issue 12's target: 3 at least 2.5 times faster), then the
// hand-over time after a graceful stop (target under 1 s) and after a kill
// (target within the lease duration, 3 s, plus 1 s). Each iteration takes
// about half a minute: run it with -benchtime=1x.
func BenchmarkRing(b *testing.B) {
	lab := kubelabtest.Default()
	client := lab.Client()
	ns := lab.Namespace(b)
	createConfigMaps(b, client, ns, benchObjects)
	uids := finalStates(b, client, ns)
	if len(uids) != benchObjects {
		b.Fatalf("%d ConfigMaps listed, want %d", len(uids), benchObjects)
	}

	var one, three ringRun
	i := 0
	for b.Loop() {
		o := runRing(b, lab, ns, fmt.Sprintf("bench-%d-one", i), 1, uids)
		t := runRing(b, lab, ns, fmt.Sprintf("bench-%d-three", i), 3, uids)
		one.list += o.list
		one.dispatch += o.dispatch
		three.list += t.list
		three.dispatch += t.dispatch
		three.graceful += t.graceful
		three.kill += t.kill
		i++
		b.Logf("iteration %d: 1 replica lists in %s (%s from its first call); 3 replicas (%d handled calls) in %s (%s); "+
			"hand-over graceful %s, kill %s", i, o.list.Round(time.Millisecond), o.dispatch.Round(time.Millisecond),
			t.handledBy, t.list.Round(time.Millisecond), t.dispatch.Round(time.Millisecond),
			t.graceful.Round(time.Millisecond), t.kill.Round(time.Millisecond))
	}
	avg := func(d time.Duration) float64 { return d.Seconds() / float64(i) }
	b.ReportMetric(avg(one.list), "list-1-s")
	b.ReportMetric(avg(three.list), "list-3-s")
	b.ReportMetric(one.list.Seconds()/three.list.Seconds(), "speedup-x")
	b.ReportMetric(one.dispatch.Seconds()/three.dispatch.Seconds(), "dispatch-speedup-x")
	b.ReportMetric(avg(three.graceful), "handover-graceful-s")
	b.ReportMetric(avg(three.kill), "handover-kill-s")
	b.ReportMetric(0, "ns/op") // an iteration is two rings' lives: not a figure
	b.Logf("targets: speedup %.2f >= 2.5: %v; graceful hand-over %.2fs < 1s: %v; kill hand-over %.2fs <= %s + 1s: %v",
		one.list.Seconds()/three.list.Seconds(), one.list.Seconds()/three.list.Seconds() >= 2.5,
		avg(three.graceful), avg(three.graceful) < 1, avg(three.kill), ringLease, avg(three.kill) <= (ringLease+time.Second).Seconds())
}
