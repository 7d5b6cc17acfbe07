package kubehandlertest_test

import (
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

func cm(name, data string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Data:       map[string]string{"v": data},
	}
}

// deliveries records what an informer's event handler is given.
type deliveries struct {
	mu      sync.Mutex
	changed chan struct{}
	deletes []interface{}
}

func newDeliveries() *deliveries { return &deliveries{changed: make(chan struct{})} }

func (d *deliveries) OnAdd(interface{}, bool)           { d.signal() }
func (d *deliveries) OnUpdate(interface{}, interface{}) { d.signal() }
func (d *deliveries) OnDelete(obj interface{}) {
	d.mu.Lock()
	d.deletes = append(d.deletes, obj)
	d.mu.Unlock()
	d.signal()
}

func (d *deliveries) signal() {
	d.mu.Lock()
	defer d.mu.Unlock()
	close(d.changed)
	d.changed = make(chan struct{})
}

// until waits for cond, checking it after each delivery.
func (d *deliveries) until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		d.mu.Lock()
		changed := d.changed
		d.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("waited 10s for %s", what)
		}
	}
}

// TestInformerSeesEveryChange drives a real informer from a Source: the
// initial list, watch events, a broken watch and an unseen delete, which
// must arrive as a tombstone.
func TestInformerSeesEveryChange(t *testing.T) {
	s := kubehandlertest.NewConfigMapSource()
	s.Create(cm("a", "1"))
	s.Create(cm("b", "1"))

	informer := s.Informer(t)
	d := newDeliveries()
	if _, err := informer.AddEventHandler(d); err != nil {
		t.Fatal(err)
	}
	if !cache.WaitForCacheSync(t.Context().Done(), informer.HasSynced) {
		t.Fatal("informer did not sync")
	}
	cached := func(name string) (*corev1.ConfigMap, bool) {
		obj, ok, _ := informer.GetStore().GetByKey("ns/" + name)
		if !ok {
			return nil, false
		}
		return obj.(*corev1.ConfigMap), true
	}

	rv := s.Update(cm("a", "2"))
	s.Delete("ns", "b")
	s.Create(cm("c", "1"))
	d.until(t, "the watch events", func() bool {
		a, _ := cached("a")
		_, b := cached("b")
		_, c := cached("c")
		return a != nil && a.ResourceVersion == rv && !b && c
	})

	s.BreakWatches()
	rv = s.Update(cm("a", "3"))
	d.until(t, "the update after a relist", func() bool {
		a, _ := cached("a")
		return a.ResourceVersion == rv
	})

	if !s.DeleteUnseen("ns", "c") {
		t.Fatal("c should have existed")
	}
	d.until(t, "two deletes", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.deletes) == 2
	})
	if _, ok := d.deletes[0].(*corev1.ConfigMap); !ok {
		t.Errorf("first delete = %T, want *ConfigMap", d.deletes[0])
	}
	tomb, ok := d.deletes[1].(cache.DeletedFinalStateUnknown)
	if !ok || tomb.Key != "ns/c" {
		t.Errorf("second delete = %#v, want a tombstone of ns/c", d.deletes[1])
	}
}

func TestResourceVersionsAndState(t *testing.T) {
	s := kubehandlertest.NewConfigMapSource()
	rv1 := s.Create(cm("a", "1"))
	rv2 := s.Update(cm("a", "2"))
	rv3 := s.Create(cm("b", "1"))
	if !(rv1 == "1" && rv2 == "2" && rv3 == "3") {
		t.Errorf("resourceVersions %s, %s, %s; want 1, 2, 3", rv1, rv2, rv3)
	}
	a, ok := s.Get("ns", "a")
	if !ok || a.Data["v"] != "2" || a.UID == "" {
		t.Errorf("Get(a) = %v, %v", a, ok)
	}
	s.Delete("ns", "b")
	want := map[kubehandler.Key]string{
		{Kind: "cms", Namespace: "ns", Name: "a"}: "2",
		{Kind: "cms", Namespace: "ns", Name: "b"}: "",
	}
	got := s.State("cms")
	if len(got) != len(want) || got[kubehandler.Key{Kind: "cms", Namespace: "ns", Name: "a"}] != "2" {
		t.Errorf("State = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("State[%s] = %q, want %q", k, got[k], v)
		}
	}
	if s.Len() != 1 {
		t.Errorf("Len = %d", s.Len())
	}
}

func TestMistakesPanic(t *testing.T) {
	s := kubehandlertest.NewConfigMapSource()
	s.Create(cm("a", "1"))
	for name, f := range map[string]func(){
		"create twice":      func() { s.Create(cm("a", "2")) },
		"update of nothing": func() { s.Update(cm("b", "2")) },
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			f()
		})
	}
}

// A watch from a resourceVersion replays what came after it; one from
// before BreakWatches is refused as too old, as the API server refuses it.
func TestWatchFromResourceVersion(t *testing.T) {
	s := kubehandlertest.NewConfigMapSource()
	rv := s.Create(cm("a", "1"))
	s.Update(cm("a", "2"))
	w, err := s.Watch(metav1.ListOptions{ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	ev := <-w.ResultChan()
	if ev.Type != watch.Modified || ev.Object.(*corev1.ConfigMap).Data["v"] != "2" {
		t.Errorf("first event %s %v, want the update", ev.Type, ev.Object)
	}
	s.BreakWatches()
	if _, open := <-w.ResultChan(); open {
		t.Error("the watch is still open after BreakWatches")
	}
	w.Stop()
	if _, err := s.Watch(metav1.ListOptions{ResourceVersion: rv}); !apierrors.IsResourceExpired(err) {
		t.Errorf("watch from before the break: %v, want resource expired", err)
	}
}

func TestUnstructuredSource(t *testing.T) {
	gvk := schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}
	s := kubehandlertest.NewUnstructuredSource(gvk)
	w := &unstructured.Unstructured{}
	w.SetNamespace("ns")
	w.SetName("w")
	s.Create(w)
	informer := s.Informer(t)
	if !cache.WaitForCacheSync(t.Context().Done(), informer.HasSynced) {
		t.Fatal("informer did not sync")
	}
	obj, ok, _ := informer.GetStore().GetByKey("ns/w")
	if !ok || obj.(*unstructured.Unstructured).GroupVersionKind() != gvk {
		t.Errorf("cached %v, %v; want a Widget", obj, ok)
	}
	got, _ := s.Get("ns", "w")
	if got.GetKind() != "Widget" {
		t.Errorf("Get: kind %q", got.GetKind())
	}
}

// A Source stops nothing itself: its watches end when their readers stop
// them. This checks that a stopped watch leaves no goroutine (goleak).
func TestStoppedWatchEnds(t *testing.T) {
	s := kubehandlertest.NewConfigMapSource()
	w, err := s.Watch(metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.Create(cm("a", "1")) // buffered, never read
	w.Stop()
	timeout := time.After(10 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-w.ResultChan():
		case <-timeout:
			t.Fatal("the result channel stays open after Stop")
		}
	}
}
