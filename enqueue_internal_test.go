package kubehandler

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// racingStore is a store whose read of a key lets the informer deliver a
// newer state of it at that very moment, and waits (a little) for the
// delivery to be merged.
type racingStore struct {
	cache.Store
	deliver func()
}

func (s *racingStore) GetByKey(key string) (interface{}, bool, error) {
	obj, ok, err := s.Store.GetByKey(key)
	delivered := make(chan struct{})
	go func() {
		s.deliver()
		close(delivered)
	}()
	select {
	case <-delivered:
	case <-time.After(50 * time.Millisecond):
		// Blocked until this read's event is merged: as it should be.
	}
	return obj, ok, err
}

// An object queued from the cache (Enqueue, a shard slot taken over) is read
// at the moment it is merged, so a newer state that the informer delivers
// meanwhile is merged after it and not hidden by it (promise 3).
func TestEnqueueCachedNeverOvertakesANewerState(t *testing.T) {
	q := newWorkQueue("race", nil)
	old := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "cm", ResourceVersion: "1"}}
	newer := old.DeepCopy()
	newer.ResourceVersion = "2"
	store := &racingStore{Store: cache.NewStore(cache.MetaNamespaceKeyFunc)}
	if err := store.Add(old); err != nil {
		t.Fatal(err)
	}
	store.deliver = func() {
		_ = store.Update(newer)
		q.enqueue("cm", updateEvent, newer, highLane)
	}
	key := Key{Kind: "cm", Namespace: "ns", Name: "cm"}
	if ok, err := q.enqueueCached(key, updateEvent, store, highLane); !ok || err != nil {
		t.Fatalf("enqueueCached = %v, %v", ok, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		q.mu.Lock()
		p := q.entries.get(key).events()
		last := p.newest()
		q.mu.Unlock()
		if last == newer {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pending event carries resourceVersion %s, want the newer 2", last.(*corev1.ConfigMap).ResourceVersion)
		}
		time.Sleep(time.Millisecond)
	}
}
