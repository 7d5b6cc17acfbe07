package integration

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehandler/kubehandler/internal/shard"
	"github.com/kubehandler/kubehandler/kubelabtest"
)

// The scenario of the ring test (issue 12, sharded dispatch).
const (
	ringSlots       = 16
	ringLease       = 3 * time.Second
	ringRenew       = 2 * time.Second
	ringRetry       = 500 * time.Millisecond
	ringObjects     = 1000
	ringWork        = 2 * time.Millisecond
	ringThreadiness = 4
	// ringPhase bounds each step of the scenario: generous, as the machine
	// is small and shared; the conditions are polled.
	ringPhase = 60 * time.Second
	// ringWorkPerPhase is how many calls each replica starts, with the
	// objects changing, between one step of the scenario and the next.
	ringWorkPerPhase = 100
)

// holding is a slot Lease's holder from a time on, as the test process saw
// it ("" when the slot is free).
type holding struct {
	at     int64 // Unix nanoseconds, when the test received it
	holder string
}

// slotWatch follows the slot Leases of a ring from the test process, with
// an informer: who holds each slot, and since when.
type slotWatch struct {
	slots   int
	mu      sync.Mutex
	history [][]holding // by slot
}

// watchSlots starts a slotWatch on the ring named ring of slots slots in
// ns, stopped when the test ends, and waits for its first list.
func watchSlots(t testing.TB, client kubernetes.Interface, ns, ring string, slots int) *slotWatch {
	t.Helper()
	w := &slotWatch{slots: slots, history: make([][]holding, slots)}
	sel := labels.Set{shard.LabelRing: ring, shard.LabelRole: shard.RoleSlot}.String()
	leases := client.CoordinationV1().Leases(ns)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = sel
			return leases.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = sel
			return leases.Watch(ctx, o)
		},
	}
	inf := cache.NewSharedIndexInformer(lw, &coordinationv1.Lease{}, 0, cache.Indexers{})
	record := func(obj interface{}) {
		at := now()
		l, ok := obj.(*coordinationv1.Lease)
		if !ok {
			return
		}
		slot, err := strconv.Atoi(l.Labels[shard.LabelSlot])
		if err != nil || slot < 0 || slot >= slots {
			return
		}
		holder := ""
		if l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		if h := w.history[slot]; len(h) == 0 || h[len(h)-1].holder != holder {
			w.history[slot] = append(h, holding{at, holder})
		}
	}
	_, _ = inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    record,
		UpdateFunc: func(_, obj interface{}) { record(obj) },
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { inf.RunWithContext(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	if !cache.WaitForCacheSync(t.Context().Done(), inf.HasSynced) {
		t.Fatal("the slot Leases' informer did not sync")
	}
	return w
}

// holders returns each slot's holder now ("" if free or never held).
func (w *slotWatch) holders() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]string, w.slots)
	for slot, h := range w.history {
		if len(h) > 0 {
			out[slot] = h[len(h)-1].holder
		}
	}
	return out
}

// counts returns how many slots each holder holds now.
func (w *slotWatch) counts() map[string]int {
	n := map[string]int{}
	for _, h := range w.holders() {
		n[h]++
	}
	return n
}

// balanced reports whether every slot is held by one of live, each holding
// its share within one slot (slots/len(live) ± 1), and says why not.
func (w *slotWatch) balanced(live []string) (bool, string) {
	holders := w.holders()
	n := map[string]int{}
	for slot, h := range holders {
		if !slices.Contains(live, h) {
			return false, fmt.Sprintf("slot %d held by %q, not one of %v (holders %v)", slot, h, live, holders)
		}
		n[h]++
	}
	share := float64(w.slots) / float64(len(live))
	for _, r := range live {
		if math.Abs(float64(n[r])-share) > 1 {
			return false, fmt.Sprintf("%s holds %d slots, not %.2f ± 1 (holders %v)", r, n[r], share, holders)
		}
	}
	return true, ""
}

// handedOver returns how long after at every slot that from held at at had
// a holder other than from, false if one has not yet.
func (w *slotWatch) handedOver(from string, at int64) (time.Duration, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	last := at // from held nothing: no wait
	for _, h := range w.history {
		i := sort.Search(len(h), func(i int) bool { return h[i].at > at })
		if i == 0 || h[i-1].holder != from {
			continue // not from's at at
		}
		j := slices.IndexFunc(h[i:], func(x holding) bool { return x.holder != "" && x.holder != from })
		if j < 0 {
			return 0, false
		}
		last = max(last, h[i+j].at)
	}
	return time.Duration(last - at), true
}

// ring is the replicas of a ring, started as child processes.
type ring struct {
	t        testing.TB
	cfg      replicaConfig // the replicas' configuration, Identity aside
	ev       *events
	slots    *slotWatch
	children map[string]*child
	live     []string
	next     int
}

func newRing(t testing.TB, lab *kubelabtest.Lab, ns, name string, cfg replicaConfig) *ring {
	cfg.Kubeconfig, cfg.Namespace, cfg.Ring = lab.KubeconfigPath(), ns, name
	return &ring{
		t: t, cfg: cfg, ev: newEvents(),
		slots:    watchSlots(t, lab.Client(), ns, name, cfg.Slots),
		children: map[string]*child{},
	}
}

// start starts a replica and returns its name.
func (r *ring) start() string {
	cfg := r.cfg
	cfg.Identity = fmt.Sprintf("%s-%d", cfg.Ring, r.next)
	r.next++
	r.children[cfg.Identity] = startChild(r.t, cfg, r.ev)
	r.live = append(r.live, cfg.Identity)
	return cfg.Identity
}

// stop stops replica with sig, waits until it exited, and returns when the
// signal was sent. A killed replica's calls in flight end when it was
// reaped.
func (r *ring) stop(replica string, sig syscall.Signal) int64 {
	r.t.Helper()
	at := now()
	if err := r.children[replica].cmd.Process.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
	r.wait(replica, sig)
	return at
}

// wait waits until replica, sent sig, exited.
func (r *ring) wait(replica string, sig syscall.Signal) {
	r.t.Helper()
	c := r.children[replica]
	select {
	case <-c.done:
	case <-time.After(ringPhase):
		r.t.Fatalf("replica %s did not exit within %s of %v", replica, ringPhase, sig)
	}
	if sig == syscall.SIGKILL {
		r.ev.killed(replica, c.exitedAt)
	}
	r.live = slices.DeleteFunc(r.live, func(n string) bool { return n == replica })
}

// stopAll stops the live replicas gracefully and waits for them.
func (r *ring) stopAll() {
	for _, n := range slices.Clone(r.live) {
		_ = r.children[n].cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, n := range slices.Clone(r.live) {
		r.wait(n, syscall.SIGTERM)
	}
}

// waitBalanced waits until the live replicas hold every slot, each its
// share, and returns when the test saw it.
func (r *ring) waitBalanced(timeout time.Duration) int64 {
	r.t.Helper()
	eventually(r.t, timeout, func() (bool, string) {
		for _, n := range r.live {
			if e, ok := r.ev.exited(n); ok {
				return false, fmt.Sprintf("replica %s's Run returned: %s", n, e)
			}
		}
		return r.slots.balanced(r.live)
	})
	return now()
}

// waitWork waits until every live replica started at least n calls after
// at, and returns how many each did.
func (r *ring) waitWork(after int64, n int) map[string]int {
	r.t.Helper()
	var calls map[string]int
	eventually(r.t, ringPhase, func() (bool, string) {
		calls = r.ev.handled(after)
		for _, rep := range r.live {
			if calls[rep] < n {
				return false, fmt.Sprintf("%s started %d calls, want %d (calls %v)", rep, calls[rep], n, calls)
			}
		}
		return true, ""
	})
	return calls
}

// createConfigMaps creates n ConfigMaps cm-<i> in ns, several at a time.
func createConfigMaps(t testing.TB, client kubernetes.Interface, ns string, n int) {
	t.Helper()
	work := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range work {
				if _, err := client.CoreV1().ConfigMaps(ns).Create(t.Context(), configMap(ns, fmt.Sprint("cm-", i), 0), metav1.CreateOptions{}); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("creating ConfigMaps: %v", err)
	}
}

// finalStates lists the ConfigMaps of ns: resourceVersion by UID.
func finalStates(t testing.TB, client kubernetes.Interface, ns string) map[string]string {
	t.Helper()
	l, err := client.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(l.Items))
	for _, cm := range l.Items {
		if strings.HasPrefix(cm.Name, "cm-") {
			out[string(cm.UID)] = cm.ResourceVersion
		}
	}
	return out
}

// notFinal returns the objects (of final: resourceVersion by UID) whose
// last call did not see their final state or did not finish its work, and
// how many there are.
func (ev *events) notFinal(final map[string]string) (int, string) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	last := map[string]*call{}
	for _, c := range ev.calls {
		if l := last[c.uid]; l == nil || c.start > l.start {
			last[c.uid] = c
		}
	}
	n, example := 0, ""
	for uid, rv := range final {
		c := last[uid]
		if c != nil && c.rv == rv && c.done && c.end != math.MaxInt64 {
			continue
		}
		n++
		if example == "" {
			if c == nil {
				example = fmt.Sprintf("%s (rv %s) never handled", uid, rv)
			} else {
				example = fmt.Sprintf("%s: final rv %s, last call on %s saw rv %s (done %v, ended %v)",
					uid, rv, c.replica, c.rv, c.done, c.end != math.MaxInt64)
			}
		}
	}
	return n, example
}

// overlaps returns the pairs of calls for one UID whose [start, end]
// intersect, on any replicas, and the first of them.
func (ev *events) overlaps() (int, string) {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	byUID := map[string][]*call{}
	for _, c := range ev.calls {
		byUID[c.uid] = append(byUID[c.uid], c)
	}
	pairs, first := 0, ""
	for uid, cs := range byUID {
		sort.Slice(cs, func(i, j int) bool { return cs[i].start < cs[j].start })
		for i, a := range cs {
			for _, b := range cs[i+1:] {
				if b.start > a.end {
					break
				}
				pairs++
				if first == "" {
					first = fmt.Sprintf("%s: %s [%d, %d] and %s [%d, %d]", uid, a.replica, a.start, a.end, b.replica, b.start, b.end)
				}
			}
		}
	}
	return pairs, first
}

// handled returns, by replica, how many calls it started after at.
func (ev *events) handled(after int64) map[string]int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	n := map[string]int{}
	for _, c := range ev.calls {
		if c.start > after {
			n[c.replica]++
		}
	}
	return n
}

// A ring of replicas (child processes, WithSharding, 16 slots) over 1,000
// ConfigMaps that keep changing, scaled 1 -> 3 -> 2 (SIGTERM) -> 3, then
// one replica SIGKILLed and one more started (issue 12's scenario, on the
// client-side filter): no two calls for one object ever overlap, on one
// replica or two; once changes stop every object's last call saw its final
// state; and after the last scale-up each replica dispatches its share of
// slots. It logs the hand-over times.
func TestRingSplitsWorkAndHandsOver(t *testing.T) {
	began := time.Now()
	lab := kubelabtest.Default()
	client := lab.Client()
	ns := lab.Namespace(t)
	ctx := t.Context()
	createConfigMaps(t, client, ns, ringObjects)

	// Objects change, one at random every few milliseconds.
	cms := client.CoreV1().ConfigMaps(ns)
	writeCtx, stopWriting := context.WithCancel(ctx)
	var writers sync.WaitGroup
	var writes int
	writers.Go(func() {
		for v := 1; writeCtx.Err() == nil; v++ {
			patch := fmt.Sprintf(`{"data":{"value":%q}}`, strconv.Itoa(v))
			if _, err := cms.Patch(writeCtx, fmt.Sprint("cm-", rand.IntN(ringObjects)), types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err == nil {
				writes++
			}
			time.Sleep(2 * time.Millisecond) // a write rate, not a synchronisation
		}
	})
	defer func() {
		stopWriting()
		writers.Wait()
	}()

	r := newRing(t, lab, ns, "ring", replicaConfig{
		Lease: ringLease, Renew: ringRenew, Retry: ringRetry, Work: ringWork,
		Threadiness: ringThreadiness, Slots: ringSlots,
	})
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }

	// 1: one replica takes every slot and handles every object.
	first := r.start()
	r.waitBalanced(ringPhase)
	eventually(t, ringPhase, func() (bool, string) {
		n := r.ev.handled(0)[first]
		return n >= ringObjects, fmt.Sprintf("%s handled %d calls, want the %d objects' initial list", first, n, ringObjects)
	})

	// 1 -> 3.
	r.start()
	r.start()
	at := r.waitBalanced(ringPhase)
	r.waitWork(at, ringWorkPerPhase)
	t.Logf("3 replicas: slots %v", r.slots.counts())

	// 3 -> 2: the first replica stops gracefully.
	stoppedAt := r.stop(first, syscall.SIGTERM)
	at = r.waitBalanced(ringPhase)
	r.waitWork(at, ringWorkPerPhase)
	graceful, ok := r.slots.handedOver(first, stoppedAt)
	if !ok {
		t.Fatalf("%s's slots not taken over", first)
	}
	t.Logf("2 replicas: slots %v; graceful hand-over (SIGTERM to the last of its slots taken): %s", r.slots.counts(), ms(graceful))

	// 2 -> 3.
	r.start()
	at = r.waitBalanced(ringPhase)
	r.waitWork(at, ringWorkPerPhase)
	t.Logf("3 replicas: slots %v", r.slots.counts())

	// 3 -> 2: one is killed.
	victim := r.live[0]
	killedAt := r.stop(victim, syscall.SIGKILL)
	at = r.waitBalanced(ringPhase)
	r.waitWork(at, ringWorkPerPhase)
	kill, ok := r.slots.handedOver(victim, killedAt)
	if !ok {
		t.Fatalf("%s's slots not taken over", victim)
	}
	t.Logf("2 replicas: slots %v; kill hand-over (SIGKILL to the last of its slots taken): %s (lease %s)",
		r.slots.counts(), ms(kill), ringLease)

	// 2 -> 3: the last scale-up; every replica gets work.
	r.start()
	scaledAt := r.waitBalanced(ringPhase)
	counts := r.slots.counts()
	r.waitWork(scaledAt, ringWorkPerPhase)

	// Changes stop; every object's last call sees its final state.
	stopWriting()
	writers.Wait()
	final := finalStates(t, client, ns)
	if len(final) != ringObjects {
		t.Fatalf("%d ConfigMaps listed, want %d", len(final), ringObjects)
	}
	eventually(t, ringPhase, func() (bool, string) {
		n, example := r.ev.notFinal(final)
		return n == 0, fmt.Sprintf("%d objects' last call did not see their final state, e.g. %s", n, example)
	})
	split := r.ev.handled(scaledAt)
	r.stopAll()

	pairs, firstOverlap := r.ev.overlaps()
	if pairs > 0 {
		t.Errorf("%d pairs of calls for one object overlap, first %s", pairs, firstOverlap)
	}
	for rep := range r.children {
		if e, ok := r.ev.exited(rep); rep != victim && (!ok || e != `"<nil>"`) {
			t.Errorf("replica %s's Run returned %s (reported: %v), want nil", rep, e, ok)
		}
	}
	r.ev.mu.Lock()
	total := len(r.ev.calls)
	r.ev.mu.Unlock()
	t.Logf("%d objects, %d writes, %d calls on %d replicas; after the last scale-up slots %v and calls %v; "+
		"hand-over graceful %s, kill %s; %s in all",
		ringObjects, writes, total, r.next, counts, split, ms(graceful), ms(kill), ms(time.Since(began)))
}
