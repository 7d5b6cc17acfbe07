package shard

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/internal/shard"
	"github.com/kubehandler/kubehandler/kubehandlertest"
	"github.com/kubehandler/kubehandler/kubelabtest"
)

// ringSlots is the ring's slot count in these tests: enough that three
// replicas hold near-equal shares (10 or 11 of 32), few enough Leases for
// a small machine.
const ringSlots = 32

// changes records the handler calls of every replica of a ring and fails
// the test on two calls in flight for one UID at once, on any replicas.
type changes struct {
	t        *testing.T
	mu       sync.Mutex
	inFlight map[types.UID]string              // the replica of the call in flight
	calls    map[types.UID]map[string][]string // by resourceVersion seen, the replica of each call
	by       map[string]int                    // calls by replica
	names    map[types.UID]string              // for messages
}

func newChanges(t *testing.T) *changes {
	return &changes{t: t, inFlight: map[types.UID]string{}, calls: map[types.UID]map[string][]string{},
		by: map[string]int{}, names: map[types.UID]string{}}
}

func (c *changes) call(replica string, ctx context.Context) error {
	ev, _ := kubehandler.EventFromContext(ctx)
	cm := ev.Object.(*corev1.ConfigMap)
	c.mu.Lock()
	if other, busy := c.inFlight[cm.UID]; busy {
		c.t.Errorf("%s: a call on %s while one runs on %s", cm.Name, replica, other)
	}
	c.inFlight[cm.UID] = replica
	c.mu.Unlock()
	time.Sleep(time.Millisecond) // a little work, so overlaps would show
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.inFlight, cm.UID)
	if c.calls[cm.UID] == nil {
		c.calls[cm.UID] = map[string][]string{}
	}
	c.calls[cm.UID][cm.ResourceVersion] = append(c.calls[cm.UID][cm.ResourceVersion], replica)
	c.by[replica]++
	c.names[cm.UID] = cm.Name
	return nil
}

// seen reports whether every object of want (UID to resourceVersion) had
// a call that saw that version.
func (c *changes) seen(want map[types.UID]string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for uid, rv := range want {
		if len(c.calls[uid][rv]) == 0 {
			return false
		}
	}
	return true
}

// checkOnce fails the test unless the version of want of every object
// had exactly one call.
func (c *changes) checkOnce(t *testing.T, want map[types.UID]string, what string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	bad := 0
	for uid, rv := range want {
		if on := c.calls[uid][rv]; len(on) != 1 {
			bad++
			if bad <= 5 {
				t.Errorf("%s: %s at %s had calls on %v, want one", what, c.names[uid], rv, on)
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d objects had not one call", what, bad)
	}
}

func (c *changes) replicas() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.by)
}

type changeHandler struct {
	kubehandler.DefaultHandler
	c       *changes
	replica string
}

func (h *changeHandler) AddFunc(ctx context.Context, _, _ string) error {
	return h.c.call(h.replica, ctx)
}

func (h *changeHandler) UpdateFunc(ctx context.Context, _, _ string) error {
	return h.c.call(h.replica, ctx)
}

// logLines keeps the Info lines of a logger.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(_, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, args)
	}, funcr.Options{})
}

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

// ringReplica is one replica of a ring over ConfigMaps: a loop with
// WithSharding whose handler reads a ShardedInformer, in this process.
type ringReplica struct {
	id   string
	inf  *kubehandler.ShardedInformer
	loop kubehandler.EventLoop
	run  *kubehandlertest.Running
	logs *logLines
}

func startRingReplica(t *testing.T, client kubernetes.Interface, ns, id string, c *changes) *ringReplica {
	t.Helper()
	cms := client.CoreV1().ConfigMaps(ns)
	inf, err := kubehandler.NewShardedInformer(kubehandler.ShardedInformerConfig{
		List:     func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) { return cms.List(ctx, o) },
		Watch:    func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) { return cms.Watch(ctx, o) },
		Client:   client,
		Object:   &corev1.ConfigMap{},
		Indexers: cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &ringReplica{id: id, inf: inf, logs: &logLines{}}
	ctx, cancel := context.WithCancel(logr.NewContext(context.Background(), r.logs.logger()))
	var wg sync.WaitGroup
	wg.Go(func() { inf.RunWithContext(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	r.loop = kubehandler.NewEventLoop("ring-"+id, kubehandler.WithSharding(kubehandler.Sharding{
		Client: client.CoordinationV1(), Namespace: ns, Name: "cms", Identity: id, Slots: ringSlots,
	}))
	r.loop.Register(&changeHandler{DefaultHandler: kubehandler.DefaultHandler{Name: "cm", Informer: inf}, c: c, replica: id})
	r.run = kubehandlertest.Start(t, r.loop, 2)
	return r
}

func (r *ringReplica) ready() bool { return kubehandler.Readiness(r.loop)(nil) == nil }

// cached returns the names r's informer caches, sorted.
func (r *ringReplica) cached() []string {
	var names []string
	for _, obj := range r.inf.GetStore().List() {
		names = append(names, obj.(*corev1.ConfigMap).Name)
	}
	slices.Sort(names)
	return names
}

// slotHolders returns the holder of each slot Lease of the ring "cms" in
// ns.
func slotHolders(ctx context.Context, client kubernetes.Interface, ns string) (map[int]string, error) {
	list, err := client.CoordinationV1().Leases(ns).List(ctx, metav1.ListOptions{LabelSelector: shard.LabelRole + "=" + shard.RoleSlot})
	if err != nil {
		return nil, err
	}
	out := map[int]string{}
	for _, l := range list.Items {
		slot, err := strconv.Atoi(l.Labels[shard.LabelSlot])
		if err != nil {
			return nil, fmt.Errorf("slot Lease %s: %w", l.Name, err)
		}
		if l.Spec.HolderIdentity != nil {
			out[slot] = *l.Spec.HolderIdentity
		}
	}
	return out, nil
}

// waitCachesMatch waits until every slot is held by one of replicas and
// each replica caches exactly the objects (UID to name) of the slots it
// holds.
func waitCachesMatch(t *testing.T, client kubernetes.Interface, ns string, objects map[types.UID]string, replicas ...*ringReplica) {
	t.Helper()
	ring, _ := shard.NewRing(ringSlots)
	var why string
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		holders, err := slotHolders(ctx, client, ns)
		if err != nil {
			why = err.Error()
			return false, nil
		}
		want := map[string][]string{}
		for uid, name := range objects {
			h := holders[ring.SlotOf(uid)]
			want[h] = append(want[h], name)
		}
		if len(want[""]) > 0 {
			why = fmt.Sprintf("%d objects in slots nobody holds", len(want[""]))
			return false, nil
		}
		for _, r := range replicas {
			slices.Sort(want[r.id])
			if got := r.cached(); !slices.Equal(got, want[r.id]) {
				why = fmt.Sprintf("%s caches %d objects; its slots hold %d", r.id, len(got), len(want[r.id]))
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the caches do not match the slots held: %s: %v", why, err)
	}
}

// versions returns the resourceVersion of every ConfigMap in ns, by UID.
func versions(t *testing.T, client kubernetes.Interface, ns string) map[types.UID]string {
	t.Helper()
	list, err := client.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[types.UID]string{}
	for _, cm := range list.Items {
		out[cm.UID] = cm.ResourceVersion
	}
	return out
}

// updateAll changes every ConfigMap of names in ns once, a few at a time.
func updateAll(t *testing.T, client kubernetes.Interface, ns string, names map[types.UID]string, round int) {
	t.Helper()
	var wg sync.WaitGroup
	work := make(chan string)
	errs := make(chan error, len(names))
	for range 8 {
		wg.Go(func() {
			for name := range work {
				patch := fmt.Sprintf(`{"data":{"round":"%d"}}`, round)
				if _, err := client.CoreV1().ConfigMaps(ns).Patch(t.Context(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, name := range names {
		work <- name
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("updating ConfigMaps: %v", err)
	}
}

// waitSeen waits until every object had a call that saw its current
// version.
func waitSeen(t *testing.T, c *changes, want map[types.UID]string, what string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		return c.seen(want), nil
	})
	if err != nil {
		t.Fatalf("%s: not every change was handled: %v", what, err)
	}
}

// TestShardedInformersSplitTheCache: three replicas in one process, each a
// sharded loop over a ShardedInformer, against a server with shard
// selectors. Each caches exactly the objects of the slots it holds, about
// a third; every change is handled once, on one replica, never two calls
// at once; when one replica stops, the others' caches grow to cover
// everything.
func TestShardedInformersSplitTheCache(t *testing.T) {
	lab := kubelabtest.Default()
	client := lab.Client()
	ns := lab.Namespace(t)
	c := newChanges(t)
	// 1,500 objects in 32 slots: a replica of 10 or 11 slots expects 469 or 516,
	// with a spread of about 18, so the 20% bounds (400 and 600) are 4 spreads away.
	const objects = 1500

	began := time.Now()
	replicas := []*ringReplica{
		startRingReplica(t, client, ns, "a", c),
		startRingReplica(t, client, ns, "b", c),
		startRingReplica(t, client, ns, "c", c),
	}
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		for _, r := range replicas {
			if !r.ready() {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("the replicas did not take their shares: %v", err)
	}
	t.Logf("three replicas hold their shares after %v", time.Since(began).Round(time.Millisecond))

	began = time.Now()
	names := createConfigMaps(t, client, ns, objects)
	created := versions(t, client, ns)
	waitSeen(t, c, created, "creates")
	t.Logf("%d ConfigMaps created and handled in %v", objects, time.Since(began).Round(time.Millisecond))
	c.checkOnce(t, created, "creates")
	waitCachesMatch(t, client, ns, names, replicas...)
	share := float64(objects) / float64(len(replicas))
	for _, r := range replicas {
		n := len(r.cached())
		t.Logf("replica %s caches %d of %d objects (%.0f%% of an equal share)", r.id, n, objects, 100*float64(n)/share)
		if float64(n) < 0.8*share || float64(n) > 1.2*share {
			t.Errorf("replica %s caches %d objects, want within 20%% of %.0f", r.id, n, share)
		}
		if n := r.logs.count("falling back"); n != 0 {
			t.Errorf("replica %s fell back to client-side filtering against a server with shard selectors", r.id)
		}
	}

	began = time.Now()
	updateAll(t, client, ns, names, 1)
	updated := versions(t, client, ns)
	waitSeen(t, c, updated, "updates")
	t.Logf("%d updates handled in %v; calls by replica %v", objects, time.Since(began).Round(time.Millisecond), c.replicas())
	c.checkOnce(t, updated, "updates")

	// One replica stops: it hands its slots over, the others list them.
	began = time.Now()
	if err := replicas[2].run.Stop(); err != nil {
		t.Fatalf("c's Run = %v", err)
	}
	waitCachesMatch(t, client, ns, names, replicas[:2]...)
	t.Logf("a and b cache c's objects %v after c stopped", time.Since(began).Round(time.Millisecond))
	total := 0
	for _, r := range replicas[:2] {
		n := len(r.cached())
		total += n
		t.Logf("after c stopped: replica %s caches %d of %d objects", r.id, n, objects)
	}
	if total != objects {
		t.Errorf("a and b cache %d objects in all, want %d", total, objects)
	}
	if n := len(replicas[2].cached()); n != 0 {
		t.Errorf("c caches %d objects after it stopped, want none", n)
	}
	updateAll(t, client, ns, names, 2)
	waitSeen(t, c, versions(t, client, ns), "updates after c stopped")
	for _, r := range replicas[:2] {
		if err := r.run.Stop(); err != nil {
			t.Fatalf("%s's Run = %v", r.id, err)
		}
	}
}

// TestShardedInformersFallBackWithoutTheGate: against a server without
// shard selectors (a lab started here), each ShardedInformer says once
// that it falls back, caches everything, and the loops' client-side
// filtering still handles every change once, on one replica.
func TestShardedInformersFallBackWithoutTheGate(t *testing.T) {
	lab := ungatedLab(t)
	client := lab.Client()
	ns := lab.Namespace(t)
	c := newChanges(t)
	const objects = 300
	// Objects first, so that detection has something to compare.
	names := createConfigMaps(t, client, ns, objects)

	began := time.Now()
	replicas := []*ringReplica{startRingReplica(t, client, ns, "a", c), startRingReplica(t, client, ns, "b", c)}
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		return replicas[0].ready() && replicas[1].ready(), nil
	})
	if err != nil {
		t.Fatalf("the replicas did not take their shares: %v", err)
	}
	created := versions(t, client, ns)
	waitSeen(t, c, created, "initial lists")
	t.Logf("two replicas ready and every object handled in %v", time.Since(began).Round(time.Millisecond))
	for _, r := range replicas {
		if n := len(r.cached()); n != objects {
			t.Errorf("replica %s caches %d objects, want all %d", r.id, n, objects)
		}
		if n := r.logs.count("falling back to client-side filtering"); n != 1 {
			t.Errorf("replica %s logged the fallback %d times, want once", r.id, n)
		}
	}

	began = time.Now()
	updateAll(t, client, ns, names, 1)
	updated := versions(t, client, ns)
	waitSeen(t, c, updated, "updates")
	t.Logf("%d updates handled in %v; calls by replica %v", objects, time.Since(began).Round(time.Millisecond), c.replicas())
	c.checkOnce(t, updated, "updates")
	if by := c.replicas(); by["a"] == 0 || by["b"] == 0 {
		t.Errorf("calls by replica %v, want both to handle some", by)
	}
	for _, r := range replicas {
		if err := r.run.Stop(); err != nil {
			t.Fatalf("%s's Run = %v", r.id, err)
		}
	}
}
