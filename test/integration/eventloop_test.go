package integration

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
	"github.com/kubehandler/kubehandler/kubelabtest"
)

var widgets = schema.GroupVersionResource{Group: "test.kubehandler.dev", Version: "v1", Resource: "widgets"}

// configMapInformer starts a ConfigMap informer of namespace ns, stopped
// when the test ends.
func configMapInformer(t *testing.T, client kubernetes.Interface, ns string) cache.SharedIndexInformer {
	t.Helper()
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	informer := factory.Core().V1().ConfigMaps().Informer()
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	t.Cleanup(func() {
		cancel()
		factory.Shutdown()
	})
	return informer
}

// serverState lists what the server has in ns: the resourceVersion of each
// object by key, with "" for names that no longer exist.
func serverState(t *testing.T, list func() ([]metav1.Object, error), kind, ns string, names []string) map[kubehandler.Key]string {
	t.Helper()
	objs, err := list()
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[kubehandler.Key]string, len(names))
	for _, n := range names {
		want[kubehandler.Key{Kind: kind, Namespace: ns, Name: n}] = ""
	}
	for _, o := range objs {
		want[kubehandler.Key{Kind: kind, Namespace: ns, Name: o.GetName()}] = o.GetResourceVersion()
	}
	return want
}

func listConfigMaps(ctx context.Context, client kubernetes.Interface, ns string) func() ([]metav1.Object, error) {
	return func() ([]metav1.Object, error) {
		l, err := client.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		out := make([]metav1.Object, 0, len(l.Items))
		for i := range l.Items {
			if l.Items[i].Name != "kube-root-ca.crt" {
				out = append(out, &l.Items[i])
			}
		}
		return out, nil
	}
}

// eventually polls cond until it holds, failing with the last reason after
// a deadline.
func eventually(t testing.TB, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	eventuallyEvery(t, timeout, 50*time.Millisecond, cond)
}

// eventuallyEvery is eventually, polling every interval.
func eventuallyEvery(t testing.TB, timeout, interval time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s: %s", timeout, why)
		}
		time.Sleep(interval)
	}
}

func configMap(ns, name string, value int) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Data:       map[string]string{"value": strconv.Itoa(value)},
	}
}

// 1,000 ConfigMaps created, updated and deleted concurrently: each key's last
// call matches the server's final state, none is missed, one call in flight
// per key.
func TestThousandConfigMapsConcurrently(t *testing.T) {
	lab := kubelabtest.Default()
	client := lab.Client()
	ns := lab.Namespace(t)
	ctx := t.Context()

	h := kubehandlertest.NewRecorder(t, configMapInformer(t, client, ns), "configmaps")
	h.Fn = func(context.Context, kubehandler.Event) error {
		time.Sleep(200 * time.Microsecond) // long enough for overlaps to show
		return nil
	}
	loop := kubehandler.NewEventLoop("thousand")
	loop.Register(h)
	kubehandlertest.Start(t, loop, 8)

	const writers, perWriter = 10, 100
	names := make([]string, 0, writers*perWriter)
	for w := range writers {
		for i := range perWriter {
			names = append(names, fmt.Sprintf("cm-%d-%d", w, i))
		}
	}
	began := time.Now()
	var requests atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			cms := client.CoreV1().ConfigMaps(ns)
			for i := range perWriter {
				name := fmt.Sprintf("cm-%d-%d", w, i)
				if _, err := cms.Create(ctx, configMap(ns, name, 0), metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
				requests.Add(1)
				for v := 1; v <= (w+i)%4; v++ {
					if _, err := cms.Update(ctx, configMap(ns, name, v), metav1.UpdateOptions{}); err != nil {
						errs <- err
						return
					}
					requests.Add(1)
				}
				if i%3 == 0 {
					if err := cms.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
						errs <- err
						return
					}
					requests.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	written := time.Since(began)
	eventually(t, time.Minute, func() (bool, string) {
		return h.Matches(serverState(t, listConfigMaps(ctx, client, ns), "configmaps", ns, names))
	})
	if o := h.Overlaps(); len(o) > 0 {
		t.Fatalf("%d calls overlapped a call of the same key, first %s", len(o), o[0])
	}
	t.Logf("%d objects, %d writes in %s; %d handler calls; converged %s after the last write",
		len(names), requests.Load(), written.Round(time.Millisecond), len(h.Calls()), (time.Since(began) - written).Round(time.Millisecond))
}

// A handler that writes back to the object it handles, from the informer's
// cached copy, meets conflicts; they are retried until every object's
// status matches its spec.
func TestConflictsConverge(t *testing.T) {
	lab := kubelabtest.Default()
	client := lab.Client()
	ns := lab.Namespace(t)
	ctx := t.Context()
	cms := client.CoreV1().ConfigMaps(ns)

	var conflicts atomic.Int64
	var interfered sync.Map
	h := kubehandlertest.NewRecorder(t, configMapInformer(t, client, ns), "mirror")
	h.Fn = func(ctx context.Context, ev kubehandler.Event) error {
		if ev.Type == kubehandler.WorkqueueDeleteEvent {
			return nil
		}
		cached := ev.Object.(*corev1.ConfigMap)
		if cached.Data["seen"] == cached.Data["value"] {
			return nil
		}
		// The first time, another writer changes the object first: the
		// write below then fails with a conflict, as it would in a busy
		// cluster.
		if _, done := interfered.LoadOrStore(cached.Name, true); !done {
			other := cached.DeepCopy()
			other.Annotations = map[string]string{"touched": "yes"}
			if _, err := cms.Update(ctx, other, metav1.UpdateOptions{}); err != nil {
				return err
			}
		}
		mirrored := cached.DeepCopy()
		mirrored.Data["seen"] = mirrored.Data["value"]
		_, err := cms.Update(ctx, mirrored, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			conflicts.Add(1)
		}
		return err
	}
	loop := kubehandler.NewEventLoop("conflicts", kubehandler.WithRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[kubehandler.Key](5*time.Millisecond, time.Second)))
	loop.Register(h)
	kubehandlertest.Start(t, loop, 4)

	const n = 100
	for i := range n {
		if _, err := cms.Create(ctx, configMap(ns, fmt.Sprint("cm-", i), 0), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Change the values while the handler works, retrying our own conflicts.
	for round := 1; round <= 3; round++ {
		for i := range n {
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				cm, err := cms.Get(ctx, fmt.Sprint("cm-", i), metav1.GetOptions{})
				if err != nil {
					return err
				}
				cm.Data["value"] = strconv.Itoa(round)
				_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, time.Minute, func() (bool, string) {
		l, err := cms.List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, cm := range l.Items {
			if cm.Name != "kube-root-ca.crt" && (cm.Data["seen"] != "3" || cm.Data["value"] != "3") {
				return false, fmt.Sprintf("%s: value %s, seen %s", cm.Name, cm.Data["value"], cm.Data["seen"])
			}
		}
		return true, ""
	})
	if conflicts.Load() < n {
		t.Fatalf("%d conflicts, want at least %d (one per object): the test did not exercise retries", conflicts.Load(), n)
	}
	t.Logf("%d objects converged after %d conflicts, %d handler calls", n, conflicts.Load(), len(h.Calls()))
}

// The apiserver dies and comes back under the informer while objects keep
// changing: the watch recovers and every key's last call matches the final
// state, including objects deleted while the watch was down.
func TestBrokenWatchRecovers(t *testing.T) {
	lab := kubelabtest.Default()
	client := lab.Client()
	ns := lab.Namespace(t)
	ctx := t.Context()
	cms := client.CoreV1().ConfigMaps(ns)

	h := kubehandlertest.NewRecorder(t, configMapInformer(t, client, ns), "configmaps")
	loop := kubehandler.NewEventLoop("broken-watch")
	loop.Register(h)
	kubehandlertest.Start(t, loop, 4)

	const n = 200
	names := make([]string, n)
	for i := range n {
		names[i] = fmt.Sprint("cm-", i)
		if _, err := cms.Create(ctx, configMap(ns, names[i], 0), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, time.Minute, func() (bool, string) {
		return h.Matches(serverState(t, listConfigMaps(ctx, client, ns), "configmaps", ns, names))
	})

	if err := lab.KillAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lab.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	// Change everything at once, racing the informer's reconnection.
	for i := range n {
		var err error
		if i%4 == 0 {
			err = cms.Delete(ctx, names[i], metav1.DeleteOptions{})
		} else {
			_, err = cms.Update(ctx, configMap(ns, names[i], 1), metav1.UpdateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, time.Minute, func() (bool, string) {
		return h.Matches(serverState(t, listConfigMaps(ctx, client, ns), "configmaps", ns, names))
	})
	if o := h.Overlaps(); len(o) > 0 {
		t.Fatalf("%d overlapping calls, first %s", len(o), o[0])
	}
}

// Widgets, a custom resource, watched as unstructured objects through a
// dynamic informer, dispatch as typed objects do: add, coalesced updates,
// delete with the final state, no resync updates.
func TestUnstructuredCustomResources(t *testing.T) {
	lab := kubelabtest.Default()
	dyn := lab.Dynamic()
	ns := lab.Namespace(t)
	ctx := t.Context()
	res := dyn.Resource(widgets).Namespace(ns)

	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, time.Second, ns, nil)
	informer := factory.ForResource(widgets).Informer()
	fctx, cancel := context.WithCancel(context.Background())
	factory.Start(fctx.Done())
	t.Cleanup(func() {
		cancel()
		factory.Shutdown()
	})

	h := kubehandlertest.NewRecorder(t, informer, "widgets")
	loop := kubehandler.NewEventLoop("widgets")
	loop.Register(h)
	kubehandlertest.Start(t, loop, 2)
	// A second loop on the same informer asks for resyncs: it shows they
	// happen, so the first one's lack of them means they were dropped.
	resyncs := kubehandlertest.NewRecorder(t, informer, "widgets")
	resyncLoop := kubehandler.NewEventLoop("widgets-resyncs", kubehandler.WithResyncEvents())
	resyncLoop.Register(resyncs)
	kubehandlertest.Start(t, resyncLoop, 1)

	w := &unstructured.Unstructured{}
	w.SetAPIVersion("test.kubehandler.dev/v1")
	w.SetKind("Widget")
	w.SetName("gear")
	_ = unstructured.SetNestedField(w.Object, int64(1), "spec", "size")
	created, err := res.Create(ctx, w, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	key := kubehandler.Key{Kind: "widgets", Namespace: ns, Name: "gear"}
	eventually(t, 30*time.Second, func() (bool, string) {
		return len(h.CallsFor(key)) == 1, "add not dispatched"
	})
	updated := created
	for size := int64(2); size <= 5; size++ {
		_ = unstructured.SetNestedField(updated.Object, size, "spec", "size")
		if updated, err = res.Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 30*time.Second, func() (bool, string) {
		return h.Matches(map[kubehandler.Key]string{key: updated.GetResourceVersion()})
	})
	// The informer resyncs every second: wait until the resync loop got two
	// updates with the final resourceVersion beyond the real one.
	atFinal := func(r *kubehandlertest.Recorder) int {
		n := 0
		for _, c := range r.CallsFor(key) {
			if c.Type == kubehandler.WorkqueueUpdateEvent && c.ResourceVersion() == updated.GetResourceVersion() {
				n++
			}
		}
		return n
	}
	eventually(t, 30*time.Second, func() (bool, string) {
		return atFinal(resyncs) >= 3, "no resyncs delivered to the loop that asks for them"
	})
	if n := atFinal(h); n != 1 {
		t.Fatalf("%d updates at the final resourceVersion, want 1: resyncs were not dropped", n)
	}
	before := len(h.CallsFor(key))
	if err := res.Delete(ctx, "gear", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() (bool, string) {
		return h.Matches(map[kubehandler.Key]string{key: ""})
	})
	calls := h.CallsFor(key)
	if calls[0].Type != kubehandler.WorkqueueAddEvent {
		t.Errorf("first call %s, want add", calls[0].Type)
	}
	for _, c := range calls[1:before] {
		if c.Type != kubehandler.WorkqueueUpdateEvent {
			t.Errorf("call %s between add and delete, want update", c.Type)
		}
	}
	if n := before - 1; n > 4 || n < 1 {
		t.Errorf("%d update calls for 4 updates (and resyncs), want 1 to 4", n)
	}
	final, ok := calls[len(calls)-1].Object.(*unstructured.Unstructured)
	if !ok {
		t.Fatalf("delete carried %T, want *unstructured.Unstructured", calls[len(calls)-1].Object)
	}
	if size, _, _ := unstructured.NestedInt64(final.Object, "spec", "size"); size != 5 {
		t.Errorf("delete carried size %d, want the final 5", size)
	}
}
