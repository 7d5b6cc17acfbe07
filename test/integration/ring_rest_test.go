package integration

import (
	"bufio"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/kubehandler/kubehandler/internal/shard"
	"github.com/kubehandler/kubehandler/kubelabtest"
)

// What a ring costs the API server at rest (issue 18), and a frozen
// replica of a ring.

// The defaults of WithSharding, as a user gets them.
const (
	defaultLease = 15 * time.Second
	defaultRenew = 10 * time.Second
	defaultRetry = 2 * time.Second
	// restWindow is how long the cost at rest is counted.
	restWindow = 30 * time.Second
)

// leaseRequests reads the API server's own apiserver_request_total for
// Leases, summed by verb (LIST, GET, WATCH, POST, PUT, PATCH, ...).
func leaseRequests(t testing.TB, client kubernetes.Interface) map[string]float64 {
	t.Helper()
	body, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(t.Context())
	if err != nil {
		t.Fatalf("reading the API server's metrics: %v", err)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `resource="leases"`) {
			continue
		}
		_, rest, _ := strings.Cut(line, `verb="`)
		verb, _, _ := strings.Cut(rest, `"`)
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[verb] += v
	}
	return out
}

// restCost is the Lease requests a second over window, by kind: writes
// (POST, PUT, PATCH), LISTs, GETs and WATCHes. Everything in the lab
// counts, the API server's own Lease (renewed every 10 s) included.
type restCost struct {
	writes, lists, gets, watches float64
}

func (c restCost) String() string {
	return fmt.Sprintf("%.2f Lease writes/s, %.2f LISTs/s, %.2f GETs/s, %.2f WATCHes/s", c.writes, c.lists, c.gets, c.watches)
}

func measureRest(t testing.TB, client kubernetes.Interface, window time.Duration) restCost {
	t.Helper()
	before := leaseRequests(t, client)
	start := time.Now()
	time.Sleep(window) // the measurement's window, not a synchronisation
	after := leaseRequests(t, client)
	s := time.Since(start).Seconds()
	d := func(verbs ...string) float64 {
		var n float64
		for _, v := range verbs {
			n += after[v] - before[v]
		}
		return n / s
	}
	return restCost{writes: d("POST", "PUT", "PATCH", "APPLY"), lists: d("LIST"), gets: d("GET"), watches: d("WATCH")}
}

// restRing starts a ring of replicas of the sample's size at the defaults
// over a few objects and waits until it is balanced.
func restRing(t testing.TB, lab *kubelabtest.Lab, ns, name string, replicas, slots int) *ring {
	t.Helper()
	r := newRing(t, lab, ns, name, replicaConfig{
		Lease: defaultLease, Renew: defaultRenew, Retry: defaultRetry, Work: time.Millisecond,
		Threadiness: 2, Slots: slots,
	})
	for range replicas {
		r.start()
	}
	r.waitBalanced(ringPhase)
	return r
}

// TestRingAtRestWritesOnlyItsMemberships: three replicas, 16 slots, the
// default durations: at rest the ring renews its three memberships every
// RetryPeriod (1.5 writes a second) and reads through its watch (no LIST).
// The first design wrote (16 + 3) / 2 = 9.5 Leases and listed about 3
// times a second.
func TestRingAtRestWritesOnlyItsMemberships(t *testing.T) {
	lab := kubelabtest.Default()
	client := lab.Client()
	ns := lab.Namespace(t)
	createConfigMaps(t, client, ns, 50)
	r := restRing(t, lab, ns, "rest", 3, 16)
	defer r.stopAll()
	holders := r.slots.holders()
	cost := measureRest(t, client, restWindow)
	t.Logf("3 replicas, 16 slots, at rest over %s: %s", restWindow, cost)
	if cost.writes > 1.7 {
		t.Errorf("%.2f Lease writes a second at rest, want at most 1.7 (3 memberships every 2 s, and the API server's own)", cost.writes)
	}
	if cost.lists > 0.3 {
		t.Errorf("%.2f Lease LISTs a second at rest, want at most 0.3", cost.lists)
	}
	if now := r.slots.holders(); fmt.Sprint(now) != fmt.Sprint(holders) {
		t.Errorf("slots changed hands at rest: %v, then %v", holders, now)
	}
}

// holderAt returns who held slot at t, as the test saw it.
func (w *slotWatch) holderAt(slot int, at int64) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := w.history[slot]
	i := sort.Search(len(h), func(i int) bool { return h[i].at > at })
	if i == 0 {
		return ""
	}
	return h[i-1].holder
}

// callsOnTakenSlots returns the calls replica started after at on an
// object whose slot another replica held: held by someone else when the
// call started, and not replica's within grace after (the test sees a
// claim a little after the replica made it).
func (ev *events) callsOnTakenSlots(replica string, after int64, w *slotWatch, r shard.Ring, grace time.Duration) (int, string) {
	ev.mu.Lock()
	calls := make([]call, 0, len(ev.calls))
	for _, c := range ev.calls {
		if c.replica == replica && c.start > after {
			calls = append(calls, *c)
		}
	}
	ev.mu.Unlock()
	n, example := 0, ""
	for _, c := range calls {
		slot := r.SlotOf(types.UID(c.uid))
		if h := w.holderAt(slot, c.start); h != replica && w.holderAt(slot, c.start+int64(grace)) != replica {
			if n == 0 {
				example = fmt.Sprintf("object %s (slot %d) at %s, held by %q", c.uid, slot, time.Unix(0, c.start).Format(time.RFC3339Nano), h)
			}
			n++
		}
	}
	return n, example
}

// TestFrozenRingReplicaStartsNoCallOnATakenSlot: a replica of a ring frozen
// (SIGSTOP) past its lease loses its slots to the others; once it resumes
// (SIGCONT) it starts no call on a slot another took: its membership term
// ended at the renew deadline, and every slot's with it, and it must claim
// a slot again before it dispatches it. Then the ring settles with it.
func TestFrozenRingReplicaStartsNoCallOnATakenSlot(t *testing.T) {
	lab := kubelabtest.Default()
	client := lab.Client()
	ns := lab.Namespace(t)
	const objects = 300
	createConfigMaps(t, client, ns, objects)
	defer keepPatching(client, ns, objects)()

	r := newRing(t, lab, ns, "frozen", replicaConfig{
		Lease: ringLease, Renew: ringRenew, Retry: ringRetry, Work: ringWork,
		Threadiness: ringThreadiness, Slots: ringSlots,
	})
	defer r.stopAll()
	for range 3 {
		r.start()
	}
	at := r.waitBalanced(ringPhase)
	r.waitWork(at, ringWorkPerPhase)

	frozen := r.live[0]
	proc := r.children[frozen].cmd.Process
	frozeAt := now()
	if err := proc.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	others := r.live[1:]
	eventually(t, ringPhase, func() (bool, string) { return r.slots.balanced(others) })
	took, _ := r.slots.handedOver(frozen, frozeAt)
	resumedAt := now()
	if err := proc.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	at = r.waitBalanced(ringPhase)
	r.waitWork(at, ringWorkPerPhase)

	ring, err := shard.NewRing(ringSlots)
	if err != nil {
		t.Fatal(err)
	}
	// A call the replica had begun when it froze may report its start
	// after the resume (its worker froze before the handler's first
	// line), and it runs on past the step-down, as no lease can prevent:
	// at most one per worker. Every call begun after the resume is under a
	// term the replica claimed again.
	taken, example := r.ev.callsOnTakenSlots(frozen, resumedAt, r.slots, ring, time.Second)
	if taken > ringThreadiness {
		t.Errorf("after it resumed, %s started %d calls on slots another replica held, more than the %d in flight at the freeze; e.g. %s",
			frozen, taken, ringThreadiness, example)
	}
	pairs, first := r.ev.overlapsExcept(frozen, frozeAt)
	if pairs > 0 {
		t.Errorf("%d pairs of calls for one object overlap, other than the frozen replica's calls in flight at the freeze; first %s", pairs, first)
	}
	if e, ok := r.ev.exited(frozen); ok {
		t.Errorf("the frozen replica's Run returned: %s", e)
	}
	all, _ := r.ev.overlaps()
	t.Logf("%s frozen %s; its slots taken after %s (lease %s); after resuming it started %d calls, %d reported on a taken slot; "+
		"%d overlapping pairs, all of calls in flight at the freeze; slots now %v",
		frozen, time.Duration(resumedAt-frozeAt).Round(time.Millisecond), took.Round(time.Millisecond), ringLease,
		r.ev.started(frozen, resumedAt), taken, all, r.slots.counts())
}

// overlapsExcept is overlaps without the calls replica had in flight at
// at (started before it, ended after).
func (ev *events) overlapsExcept(replica string, at int64) (int, string) {
	kept := newEvents()
	ev.mu.Lock()
	for _, c := range ev.calls {
		if c.replica != replica || c.start >= at || c.end <= at {
			kept.calls = append(kept.calls, c)
		}
	}
	ev.mu.Unlock()
	return kept.overlaps()
}

// TestRingCheckerFindsACallOnATakenSlot: the check of the frozen-replica
// test fails for a replica that dispatches a slot another holds.
func TestRingCheckerFindsACallOnATakenSlot(t *testing.T) {
	ring, err := shard.NewRing(16)
	if err != nil {
		t.Fatal(err)
	}
	const uid = "d2f2b0a5-5a4e-4f33-9d7b-0b3d1c6f1a01"
	slot := ring.SlotOf(uid)
	w := &slotWatch{slots: 16, history: make([][]holding, 16)}
	w.history[slot] = []holding{{at: 100, holder: "a"}, {at: 200, holder: "b"}, {at: int64(5 * time.Second), holder: "a"}}
	ev := newEvents()
	ev.add(fmt.Sprintf("S a %s 150 1 1 1", uid)) // a's own slot: fine
	if n, _ := ev.callsOnTakenSlots("a", 0, w, ring, time.Second); n != 0 {
		t.Fatalf("a call on the replica's own slot counted: %d", n)
	}
	ev.add(fmt.Sprintf("S a %s 300 1 1 2", uid)) // b holds it
	if n, example := ev.callsOnTakenSlots("a", 0, w, ring, time.Second); n != 1 {
		t.Errorf("a call on b's slot: %d found (%s), want 1", n, example)
	}
}
