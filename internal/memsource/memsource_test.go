package memsource

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func cm(name, data string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Data:       map[string]string{"v": data},
	}
}

// TestInformerSeesEveryChange drives a real informer from a Source: the
// initial list, watch events, a broken watch and an unseen delete, which must
// arrive as a tombstone.
func TestInformerSeesEveryChange(t *testing.T) {
	s := New(func() runtime.Object { return &corev1.ConfigMapList{} })
	s.Create(cm("a", "1"))
	s.Create(cm("b", "1"))

	informer := cache.NewSharedIndexInformer(s, &corev1.ConfigMap{}, 0, cache.Indexers{})
	var mu sync.Mutex
	var deletes []interface{}
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj interface{}) {
			mu.Lock()
			defer mu.Unlock()
			deletes = append(deletes, obj)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { informer.RunWithContext(ctx) })
	defer wg.Wait()
	defer cancel()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		t.Fatal("informer did not sync")
	}

	rv := s.Update(cm("a", "2"))
	s.Delete("ns", "b")
	s.Create(cm("c", "1"))
	waitFor(t, func() bool {
		obj, ok, _ := informer.GetStore().GetByKey("ns/a")
		_, bGone, _ := informer.GetStore().GetByKey("ns/b")
		_, cThere, _ := informer.GetStore().GetByKey("ns/c")
		return ok && obj.(*corev1.ConfigMap).ResourceVersion == rv && !bGone && cThere
	})

	s.BreakWatches()
	rv = s.Update(cm("a", "3"))
	waitFor(t, func() bool {
		obj, _, _ := informer.GetStore().GetByKey("ns/a")
		return obj.(*corev1.ConfigMap).ResourceVersion == rv
	})

	if !s.DeleteUnseen("ns", "c") {
		t.Fatal("c should have existed")
	}
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(deletes) == 2
	})
	if _, ok := deletes[0].(*corev1.ConfigMap); !ok {
		t.Errorf("first delete = %T, want *ConfigMap", deletes[0])
	}
	tomb, ok := deletes[1].(cache.DeletedFinalStateUnknown)
	if !ok || tomb.Key != "ns/c" {
		t.Errorf("second delete = %#v, want a tombstone of ns/c", deletes[1])
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
