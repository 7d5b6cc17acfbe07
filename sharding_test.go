package kubehandler_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/google/go-cmp/cmp"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/internal/shard"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// ring is a ring's Leases for tests: a fake clientset whose Leases are
// served by a kubehandlertest Source, which enforces resourceVersion
// preconditions and label selectors as the API server does, so replicas in
// one process compete for them for real.
type ring struct {
	leases *kubehandlertest.Source
	client *fake.Clientset
}

func newRing() *ring {
	r := &ring{
		leases: kubehandlertest.NewSource(func() runtime.Object { return &coordinationv1.LeaseList{} }),
		client: fake.NewClientset(),
	}
	r.leases.Serve(r.client, "leases")
	return r
}

func (r *ring) sharding(identity string) kubehandler.Sharding {
	return kubehandler.Sharding{
		Client: r.client.CoordinationV1(), Namespace: "ns", Name: "ring", Identity: identity, Slots: 16,
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 100 * time.Millisecond,
	}
}

// holders returns the holder of each slot Lease of the ring, "" if free.
func (r *ring) holders(t *testing.T) map[int]string {
	t.Helper()
	list, err := r.client.CoordinationV1().Leases("ns").List(context.Background(), metav1.ListOptions{LabelSelector: shard.LabelRole + "=" + shard.RoleSlot})
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]string{}
	for _, l := range list.Items {
		var slot int
		if _, err := fmt.Sscanf(l.Labels[shard.LabelSlot], "%d", &slot); err != nil {
			t.Fatalf("slot Lease %s: %v", l.Name, err)
		}
		out[slot] = ""
		if l.Spec.HolderIdentity != nil {
			out[slot] = *l.Spec.HolderIdentity
		}
	}
	return out
}

// ringCalls records the calls of every replica of a ring, and fails the
// test on two calls in flight for one UID at once, on any replicas.
type ringCalls struct {
	t        *testing.T
	mu       sync.Mutex
	inFlight map[types.UID]string         // the replica of the call in flight
	last     map[types.UID]string         // the resourceVersion its last call saw
	by       map[string]map[types.UID]int // calls by replica
}

func newRingCalls(t *testing.T) *ringCalls {
	return &ringCalls{t: t, inFlight: map[types.UID]string{}, last: map[types.UID]string{}, by: map[string]map[types.UID]int{}}
}

// handler returns replica's ConfigMap handler over informer; each call
// takes work.
func (c *ringCalls) handler(replica string, informer cache.SharedIndexInformer, work time.Duration) kubehandler.EventHandler {
	call := func(ctx context.Context, _, _ string) error {
		ev, _ := kubehandler.EventFromContext(ctx)
		cm := ev.Object.(*corev1.ConfigMap)
		c.mu.Lock()
		if other, busy := c.inFlight[cm.UID]; busy {
			c.t.Errorf("%s/%s: a call on %s while one runs on %s", cm.Namespace, cm.Name, replica, other)
		}
		c.inFlight[cm.UID] = replica
		c.mu.Unlock()
		time.Sleep(work)
		c.mu.Lock()
		delete(c.inFlight, cm.UID)
		c.last[cm.UID] = cm.ResourceVersion
		if c.by[replica] == nil {
			c.by[replica] = map[types.UID]int{}
		}
		c.by[replica][cm.UID]++
		c.mu.Unlock()
		return nil
	}
	return &callHandler{DefaultHandler: kubehandler.DefaultHandler{Name: "cm", Informer: informer}, call: call}
}

// callHandler handles adds and updates with call.
type callHandler struct {
	kubehandler.DefaultHandler
	call func(ctx context.Context, namespace, name string) error
}

func (h *callHandler) AddFunc(ctx context.Context, namespace, name string) error {
	return h.call(ctx, namespace, name)
}

func (h *callHandler) UpdateFunc(ctx context.Context, namespace, name string) error {
	return h.call(ctx, namespace, name)
}

// final reports whether every object of source had its last call see its
// current state.
func (c *ringCalls) final(source *kubehandlertest.Source) (bool, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	list, _ := source.List(metav1.ListOptions{})
	missing := 0
	var example string
	for _, item := range list.(*corev1.ConfigMapList).Items {
		if c.last[item.UID] != item.ResourceVersion {
			missing++
			example = fmt.Sprintf("%s at %s, last call saw %q", item.Name, item.ResourceVersion, c.last[item.UID])
		}
	}
	return missing == 0, fmt.Sprintf("%d objects not final (e.g. %s)", missing, example)
}

func (c *ringCalls) replicas() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for r, uids := range c.by {
		out[r] = len(uids)
	}
	return out
}

// Bad configuration is an error from Run, before anything starts.
func TestShardingConfigErrors(t *testing.T) {
	r := newRing()
	ok := r.sharding("a")
	tests := []struct {
		name   string
		change func(*kubehandler.Sharding)
		extra  []kubehandler.Option
		want   string
	}{
		{"no slots", func(s *kubehandler.Sharding) { s.Slots = 0 }, nil, "power of two"},
		{"three slots", func(s *kubehandler.Sharding) { s.Slots = 3 }, nil, "power of two"},
		{"too many slots", func(s *kubehandler.Sharding) { s.Slots = 8192 }, nil, "8192"},
		{"no client", func(s *kubehandler.Sharding) { s.Client = nil }, nil, "no Client"},
		{"no namespace", func(s *kubehandler.Sharding) { s.Namespace = "" }, nil, "no Namespace"},
		{"no identity", func(s *kubehandler.Sharding) { s.Identity = "" }, nil, "no Identity"},
		{"ring name not an object name", func(s *kubehandler.Sharding) { s.Name = "My_Ring" }, nil, "ring name"},
		{"no ring name", func(s *kubehandler.Sharding) { s.Name = "" }, nil, "ring name"},
		{"ring name too long", func(s *kubehandler.Sharding) { s.Name = strings.Repeat("r", 64) }, nil, "63"},
		{"renew deadline past the lease", func(s *kubehandler.Sharding) { s.RenewDeadline = 4 * time.Second }, nil, "RenewDeadline"},
		{"lease not whole seconds", func(s *kubehandler.Sharding) { s.LeaseDuration = 2500 * time.Millisecond }, nil, "LeaseDuration"},
		{"with leader election", func(*kubehandler.Sharding) {}, []kubehandler.Option{kubehandler.WithLeaderElection(kubehandler.LeaderElection{
			Client: r.client.CoordinationV1(), Namespace: "ns", Name: "lease", Identity: "a",
		})}, "exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := ok
			tt.change(&s)
			loop := kubehandler.NewEventLoop("bad", append(tt.extra, kubehandler.WithSharding(s))...)
			err := loop.Run(context.Background(), 1)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	t.Run("unknown secondary handler", func(t *testing.T) {
		s := ok
		s.Secondary = []string{"Deployments"}
		loop := kubehandler.NewEventLoop("bad", kubehandler.WithSharding(s))
		loop.Register(&kubehandler.DefaultHandler{Name: "Deployment", Informer: kubehandlertest.NewInformer(t, newConfigMaps(t, 0), &corev1.ConfigMap{})})
		err := loop.Run(context.Background(), 1)
		if err == nil || !strings.Contains(err.Error(), `"Deployments"`) {
			t.Fatalf("Run = %v, want an error naming the unknown handler", err)
		}
	})
	t.Run("on a WorkQueue", func(t *testing.T) {
		err := kubehandler.NewWorkQueue("bad", kubehandler.WithSharding(ok)).Run(context.Background(), 1)
		if err == nil || !strings.Contains(err.Error(), "EventLoop") {
			t.Fatalf("Run = %v, want an error naming the EventLoop", err)
		}
	})
	if n := r.leases.Len(); n != 0 {
		t.Errorf("refused Runs wrote %d Leases", n)
	}
}

func newConfigMaps(t *testing.T, n int) *kubehandlertest.Source {
	source := kubehandlertest.NewSource(func() runtime.Object { return &corev1.ConfigMapList{} })
	for i := range n {
		source.Create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("cm-%03d", i)}})
	}
	return source
}

func bump(source *kubehandlertest.Source, name string) {
	obj, ok := source.Get("ns", name)
	if !ok {
		return
	}
	cm := obj.(*corev1.ConfigMap).DeepCopy()
	cm.Data = map[string]string{"at": time.Now().String()}
	source.Update(cm)
}

// One replica alone holds every slot and handles every object; it is ready
// once it does, reports its slots, and releases every Lease when it stops.
func TestShardingOneReplicaHoldsTheRing(t *testing.T) {
	r := newRing()
	source := newConfigMaps(t, 100)
	calls := newRingCalls(t)
	reg := prometheus.NewPedanticRegistry()
	loop := kubehandler.NewEventLoop("ring-a", kubehandler.WithSharding(r.sharding("a")), kubehandler.WithMetrics(reg))
	loop.Register(calls.handler("a", kubehandlertest.NewInformer(t, source, &corev1.ConfigMap{}), 0))
	run := kubehandlertest.Start(t, loop, 2)
	eventually(t, "every object handled", func() bool { ok, _ := calls.final(source); return ok })
	eventually(t, "ready", func() bool { return kubehandler.Readiness(loop)(nil) == nil })
	if got := testutil.ToFloat64(mustCollector(t, reg, "kubehandler_shard_slots")); got != 16 {
		t.Errorf("kubehandler_shard_slots = %v, want 16", got)
	}
	for slot, h := range r.holders(t) {
		if h != "a" {
			t.Errorf("slot %d held by %q, want a", slot, h)
		}
	}
	if err := run.Stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	for slot, h := range r.holders(t) {
		if h != "" {
			t.Errorf("slot %d still held by %q after a graceful stop", slot, h)
		}
	}
}

// A replica that forms a ring claims its slots FormationDelay after its
// membership, as the Leases' acquire times record: RetryPeriod (100 ms
// here) when it is 0; with a negative delay the ring forms too.
func TestShardingFormationDelay(t *testing.T) {
	for _, tt := range []struct {
		delay    time.Duration
		min, max time.Duration
	}{
		{time.Second, time.Second, time.Hour},
		{0, 100 * time.Millisecond, time.Hour},
		{-1, 0, time.Hour},
	} {
		t.Run(fmt.Sprint("delay=", tt.delay), func(t *testing.T) {
			r := newRing()
			cfg := r.sharding("a")
			cfg.FormationDelay = tt.delay
			loop := kubehandler.NewEventLoop("ring-a", kubehandler.WithSharding(cfg))
			loop.Register(newRingCalls(t).handler("a", kubehandlertest.NewInformer(t, newConfigMaps(t, 10), &corev1.ConfigMap{}), 0))
			run := kubehandlertest.Start(t, loop, 1)
			eventually(t, "ready", func() bool { return kubehandler.Readiness(loop)(nil) == nil })
			list, err := r.client.CoordinationV1().Leases("ns").List(t.Context(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var joined, firstClaim time.Time
			for _, l := range list.Items {
				at := l.Spec.AcquireTime.Time
				switch l.Labels[shard.LabelRole] {
				case shard.RoleMember:
					joined = at
				case shard.RoleSlot:
					if firstClaim.IsZero() || at.Before(firstClaim) {
						firstClaim = at
					}
				}
			}
			if joined.IsZero() || firstClaim.IsZero() {
				t.Fatalf("no membership (%v) or no slot (%v) acquired", joined, firstClaim)
			}
			if wait := firstClaim.Sub(joined); wait < tt.min || wait > tt.max {
				t.Errorf("first slot claimed %s after joining, want between %s and %s", wait, tt.min, tt.max)
			}
			if err := run.Stop(); err != nil {
				t.Fatalf("Run = %v", err)
			}
		})
	}
}

// heldList is a Source whose List waits until release is closed: an
// initial list that takes as long as the test wants.
type heldList struct {
	*kubehandlertest.Source
	release chan struct{}
}

func (h heldList) List(opts metav1.ListOptions) (runtime.Object, error) {
	<-h.release
	return h.Source.List(opts)
}

// A replica joins its ring while its caches sync: it claims its slots
// before its initial list has arrived (replicas whose lists take different
// times still form the ring together), dispatches the list once it does,
// and a Run stopped before the sync leaves the ring too.
func TestShardingJoinsTheRingWhileCachesSync(t *testing.T) {
	for _, synced := range []bool{true, false} {
		t.Run(fmt.Sprint("synced=", synced), func(t *testing.T) {
			r := newRing()
			source := newConfigMaps(t, 50)
			held := heldList{Source: source, release: make(chan struct{})}
			calls := newRingCalls(t)
			loop := kubehandler.NewEventLoop("ring-a", kubehandler.WithSharding(r.sharding("a")))
			loop.Register(calls.handler("a", kubehandlertest.NewInformer(t, held, &corev1.ConfigMap{}), 0))
			var once sync.Once
			release := func() { once.Do(func() { close(held.release) }) }
			t.Cleanup(release) // before the informer stops: a List must not hang
			run := kubehandlertest.Start(t, loop, 2)
			eventually(t, "every slot held before the initial list", func() bool {
				h := r.holders(t)
				for slot := range 16 {
					if h[slot] != "a" {
						return false
					}
				}
				return true
			})
			if !synced {
				if err := run.Stop(); err != nil {
					t.Fatalf("Run = %v", err)
				}
			} else {
				release()
				eventually(t, "every object handled", func() bool { ok, _ := calls.final(source); return ok })
				if err := run.Stop(); err != nil {
					t.Fatalf("Run = %v", err)
				}
			}
			for slot, h := range r.holders(t) {
				if h != "" {
					t.Errorf("slot %d still held by %q after the Run", slot, h)
				}
			}
		})
	}
}

// mustCollector returns the one series of the metric name in reg.
func mustCollector(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: name}, func() float64 {
				return f.GetMetric()[0].GetGauge().GetValue()
			})
		}
	}
	t.Fatalf("no single series of %s", name)
	return nil
}

// Two replicas split the ring; a third joins and one leaves, while the
// objects change: never two calls at once for one object, the slots are
// shared out, and every object's last call sees its final state.
func TestShardingReplicasShareTheRing(t *testing.T) {
	r := newRing()
	source := newConfigMaps(t, 200)
	calls := newRingCalls(t)
	start := func(id string) *kubehandlertest.Running {
		loop := kubehandler.NewEventLoop("ring-"+id, kubehandler.WithSharding(r.sharding(id)))
		loop.Register(calls.handler(id, kubehandlertest.NewInformer(t, source, &corev1.ConfigMap{}), time.Millisecond))
		return kubehandlertest.Start(t, loop, 2)
	}
	stop := make(chan struct{})
	var changes sync.WaitGroup
	changes.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			bump(source, fmt.Sprintf("cm-%03d", (i*37)%200))
		}
	})
	a := start("a")
	eventually(t, "a handled objects", func() bool { return calls.replicas()["a"] > 0 })
	b := start("b")
	eventually(t, "a and b split the slots", func() bool {
		n := map[string]int{}
		for _, h := range r.holders(t) {
			n[h]++
		}
		return n["a"] == 8 && n["b"] == 8
	})
	c := start("c")
	eventually(t, "a, b and c split the slots", func() bool {
		n := map[string]int{}
		for _, h := range r.holders(t) {
			n[h]++
		}
		return n["a"] >= 5 && n["b"] >= 5 && n["c"] >= 5 && n["a"]+n["b"]+n["c"] == 16
	})
	if err := a.Stop(); err != nil {
		t.Fatalf("a's Run = %v", err)
	}
	eventually(t, "b and c took a's slots", func() bool {
		n := map[string]int{}
		for _, h := range r.holders(t) {
			n[h]++
		}
		return n["b"] == 8 && n["c"] == 8
	})
	close(stop)
	changes.Wait()
	eventually(t, "every object final", func() bool { ok, _ := calls.final(source); return ok })
	for id, n := range calls.replicas() {
		t.Logf("replica %s handled %d objects", id, n)
	}
	for _, run := range []*kubehandlertest.Running{b, c} {
		if err := run.Stop(); err != nil {
			t.Fatalf("Run = %v", err)
		}
	}
}

// A replica whose slot Lease is taken by another (as after it froze past
// its lease) stops dispatching the slot and cancels the slot's calls in
// flight; the Run goes on.
func TestShardingLostSlotCancelsItsCalls(t *testing.T) {
	r := newRing()
	source := newConfigMaps(t, 1)
	cfg := r.sharding("a")
	cfg.Slots = 1
	started, cancelled := make(chan struct{}), make(chan struct{})
	var calls sync.WaitGroup
	var once sync.Once
	h := &callHandler{
		DefaultHandler: kubehandler.DefaultHandler{Name: "cm", Informer: kubehandlertest.NewInformer(t, source, &corev1.ConfigMap{})},
		call: func(ctx context.Context, _, _ string) error {
			calls.Add(1)
			defer calls.Done()
			once.Do(func() {
				close(started)
				<-ctx.Done()
				close(cancelled)
			})
			return nil
		},
	}
	loop := kubehandler.NewEventLoop("ring-lost", kubehandler.WithSharding(cfg))
	loop.Register(h)
	run := kubehandlertest.Start(t, loop, 1)
	<-started
	leases := r.client.CoordinationV1().Leases("ns")
	l, err := leases.Get(context.Background(), shard.SlotLeaseName("ring", 0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other, hour := "z", int32(3600)
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = &other, &hour
	if _, err := leases.Update(context.Background(), l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cancelled:
	case <-time.After(30 * time.Second):
		t.Fatal("the call of the lost slot was not cancelled")
	}
	eventually(t, "not ready without its share", func() bool { return kubehandler.Readiness(loop)(nil) != nil })
	bump(source, "cm-000")
	// z holds the slot: no call may start here for the change.
	eventually(t, "the slot Lease stays z's", func() bool { return r.holders(t)[0] == "z" })
	if err := run.Stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	calls.Wait()
	if r.holders(t)[0] != "z" {
		t.Errorf("a released or took back z's slot: holder %q", r.holders(t)[0])
	}
}

// A secondary handler runs on every replica; its Enqueue of a sharded key
// is true on the one replica that holds the key's slot, false elsewhere.
func TestShardingSecondaryEnqueuesOnTheHolder(t *testing.T) {
	r := newRing()
	source := newConfigMaps(t, 40)
	type result struct {
		replica string
		queued  bool
	}
	var mu sync.Mutex
	results := map[string][]result{} // by "name@resourceVersion"
	start := func(id string) (kubehandler.EventLoop, *kubehandlertest.Running) {
		cfg := r.sharding(id)
		cfg.Secondary = []string{"owner-of"}
		informer := kubehandlertest.NewInformer(t, source, &corev1.ConfigMap{})
		secondary := &callHandler{
			DefaultHandler: kubehandler.DefaultHandler{Name: "owner-of", Informer: informer},
			call: func(ctx context.Context, namespace, name string) error {
				ev, _ := kubehandler.EventFromContext(ctx)
				queued, err := kubehandler.Enqueue(ctx, kubehandler.Key{Kind: "cm", Namespace: namespace, Name: name})
				if err != nil {
					return err
				}
				mu.Lock()
				k := name + "@" + ev.Object.(*corev1.ConfigMap).ResourceVersion
				results[k] = append(results[k], result{id, queued})
				mu.Unlock()
				return nil
			},
		}
		loop := kubehandler.NewEventLoop("ring-"+id, kubehandler.WithSharding(cfg))
		loop.Register(&callHandler{DefaultHandler: kubehandler.DefaultHandler{Name: "cm", Informer: informer},
			call: func(context.Context, string, string) error { return nil }})
		loop.Register(secondary)
		return loop, kubehandlertest.Start(t, loop, 2)
	}
	la, a := start("a")
	lb, b := start("b")
	eventually(t, "both hold their share", func() bool {
		return kubehandler.Readiness(la)(nil) == nil && kubehandler.Readiness(lb)(nil) == nil
	})
	var want []string
	for i := range 40 {
		name := fmt.Sprintf("cm-%03d", i)
		bump(source, name)
		obj, _ := source.Get("ns", name)
		want = append(want, name+"@"+obj.(*corev1.ConfigMap).ResourceVersion)
	}
	eventually(t, "both replicas' secondary handlers saw every change", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, k := range want {
			if len(results[k]) < 2 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	held := map[string]int{}
	for _, k := range want {
		var queuedOn []string
		for _, res := range results[k] {
			if res.queued {
				queuedOn = append(queuedOn, res.replica)
			}
		}
		if len(queuedOn) != 1 {
			t.Errorf("%s: Enqueue true on %v, want on exactly one replica", k, queuedOn)
		} else {
			held[queuedOn[0]]++
		}
	}
	mu.Unlock()
	if held["a"] == 0 || held["b"] == 0 {
		t.Errorf("Enqueue true by replica: %v, want both to hold some", held)
	}
	for _, run := range []*kubehandlertest.Running{a, b} {
		if err := run.Stop(); err != nil {
			t.Fatalf("Run = %v", err)
		}
	}
}

// DebugHandler shows a replica's ring: what it holds, its share, the
// members, when its membership ends, and the last Step's error; JSON and
// HTML alike.
func TestDebugHandlerShowsTheRing(t *testing.T) {
	r := newRing()
	source := newConfigMaps(t, 20)
	calls := newRingCalls(t)
	loop := kubehandler.NewEventLoop("ring-debug", kubehandler.WithSharding(r.sharding("a")))
	loop.Register(calls.handler("a", kubehandlertest.NewInformer(t, source, &corev1.ConfigMap{}), 0))
	srv := debugServer(t, kubehandler.DebugHandler(loop))
	if rep := report(t, srv); rep.Ring != nil {
		t.Errorf("a loop that does not run shows a ring: %+v", rep.Ring)
	}
	run := kubehandlertest.Start(t, loop, 2)
	eventually(t, "ready", func() bool { return kubehandler.Readiness(loop)(nil) == nil })
	rep := report(t, srv)
	ring := rep.Ring
	if ring == nil {
		t.Fatal("no ring in the report of a sharded loop")
	}
	want := kubehandler.DebugRing{Namespace: "ns", Name: "ring", Identity: "a", Slots: 16, Held: "0-15", Target: "0-15",
		Draining: []kubehandler.DebugDrainingSlot{}, Members: []string{"a"}, Ready: true}
	got := *ring
	got.MembershipDeadline = time.Time{}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ring (-want +got):\n%s", diff)
	}
	if d := ring.MembershipDeadline; d.Before(rep.Time) || d.After(rep.Time.Add(2*time.Second)) {
		t.Errorf("membership deadline %v, want within the renew deadline (2s) after %v", d, rep.Time)
	}
	_, _, page := get(t, srv.URL)
	for _, s := range []string{"Ring ns/ring", "Replica <strong>a</strong>, ready: holds slots 0-15 of 16", "Members: a.", "Last step: succeeded."} {
		if !strings.Contains(page, s) {
			t.Errorf("the page does not say %q:\n%s", s, page)
		}
	}
	if err := run.Stop(); err != nil {
		t.Fatalf("Run = %v", err)
	}
	if rep := report(t, srv); rep.Ring != nil {
		t.Errorf("a stopped loop shows a ring: %+v", rep.Ring)
	}
}
