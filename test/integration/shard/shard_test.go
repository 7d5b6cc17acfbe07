package shard

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehandler/kubehandler/internal/shard"
	"github.com/kubehandler/kubehandler/kubelabtest"
)

var configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}

// createConfigMaps creates n ConfigMaps in ns, a few at a time, and returns
// their UIDs.
func createConfigMaps(t *testing.T, client kubernetes.Interface, ns string, n int) map[types.UID]string {
	t.Helper()
	var (
		mu   sync.Mutex
		uids = map[types.UID]string{}
		wg   sync.WaitGroup
		errs = make(chan error, n)
		work = make(chan int)
	)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				cm, err := client.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%04d", i)},
				}, metav1.CreateOptions{})
				if err != nil {
					errs <- err
					continue
				}
				mu.Lock()
				uids[cm.UID] = cm.Name
				mu.Unlock()
			}
		}()
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
	return uids
}

// TestSlotSelectorsPartitionTheObjects: listed slot by slot, the objects
// fall apart into disjoint parts whose union is everything, each object in
// the slot SlotOf says, and a selector of several slots lists exactly what
// Contains says.
func TestSlotSelectorsPartitionTheObjects(t *testing.T) {
	lab := kubelabtest.Default()
	client := lab.Client()
	ns := lab.Namespace(t)
	const objects = 200
	uids := createConfigMaps(t, client, ns, objects)
	cms := client.CoreV1().ConfigMaps(ns)

	full, err := cms.List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(full.Items) != objects || full.ShardInfo != nil {
		t.Fatalf("full list: %d objects, shardInfo %v; want %d and none", len(full.Items), full.ShardInfo, objects)
	}

	for _, slots := range []int{1, 2, 16, 64} {
		ring, err := shard.NewRing(slots)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[types.UID]int{}
		sizes := make([]int, slots)
		for slot := range slots {
			sel, err := ring.Selector(shard.NewSet(slot))
			if err != nil {
				t.Fatal(err)
			}
			list, err := cms.List(t.Context(), metav1.ListOptions{ShardSelector: sel.String()})
			if err != nil {
				t.Fatalf("%d slots, slot %d: %v", slots, slot, err)
			}
			if list.ShardInfo == nil || list.ShardInfo.Selector != sel.String() {
				t.Errorf("%d slots, slot %d: shardInfo %v, want the selector %q echoed", slots, slot, list.ShardInfo, sel)
			}
			for _, cm := range list.Items {
				if got := ring.SlotOf(cm.UID); got != slot {
					t.Errorf("%d slots: %s (uid %s) listed in slot %d, SlotOf says %d", slots, cm.Name, cm.UID, slot, got)
				}
				if prev, dup := seen[cm.UID]; dup {
					t.Errorf("%d slots: %s listed in slots %d and %d", slots, cm.Name, prev, slot)
				}
				seen[cm.UID] = slot
			}
			sizes[slot] = len(list.Items)
		}
		for uid, name := range uids {
			if _, ok := seen[uid]; !ok {
				t.Errorf("%d slots: %s listed in no slot", slots, name)
			}
		}
		if len(seen) != objects {
			t.Errorf("%d slots: %d objects listed in all, want %d", slots, len(seen), objects)
		}
		t.Logf("%d slots: objects per slot %v", slots, sizes)
	}

	// Several slots at once, scattered as an assignment makes them.
	ring, _ := shard.NewRing(64)
	for _, member := range []string{"a", "b", "c"} {
		held := ring.Assign([]string{"a", "b", "c"}).Of(member)
		sel, err := ring.Selector(held)
		if err != nil {
			t.Fatal(err)
		}
		list, err := cms.List(t.Context(), metav1.ListOptions{ShardSelector: sel.String()})
		if err != nil {
			t.Fatalf("selector of %v: %v", held, err)
		}
		want := 0
		for uid := range uids {
			if ring.Contains(held, uid) {
				want++
			}
		}
		for _, cm := range list.Items {
			if !ring.Contains(held, cm.UID) {
				t.Errorf("member %s: %s listed, outside its slots %v", member, cm.Name, held)
			}
		}
		if len(list.Items) != want {
			t.Errorf("member %s, slots %v (%d ranges): %d listed, want %d", member, held, len(ring.Requirements(held)), len(list.Items), want)
		}
		t.Logf("member %s: %d slots in %d ranges, %d of %d objects", member, held.Len(), len(ring.Requirements(held)), len(list.Items), objects)
	}
}

// TestShardedInformer: an informer whose list and watch carry a slot
// set's selector caches exactly the objects of those slots, including the
// ones created after it started.
func TestShardedInformer(t *testing.T) {
	lab := kubelabtest.Default()
	client := lab.Client()
	ns := lab.Namespace(t)
	before := createConfigMaps(t, client, ns, 60)

	ring, _ := shard.NewRing(16)
	held := shard.NewSet(0, 1, 2, 3, 9, 12)
	sel, err := ring.Selector(held)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.ShardSelector = sel.String() }))
	informer := factory.Core().V1().ConfigMaps().Informer()
	factory.Start(ctx.Done())
	defer func() {
		cancel()
		factory.Shutdown()
	}()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		t.Fatal("the informer did not sync")
	}

	// Names avoid those of createConfigMaps.
	after := map[types.UID]string{}
	for i := range 60 {
		cm, err := client.CoreV1().ConfigMaps(ns).Create(t.Context(), &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("late-%04d", i)},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		after[cm.UID] = cm.Name
	}

	want := map[string]bool{}
	for _, set := range []map[types.UID]string{before, after} {
		for uid, name := range set {
			if ring.Contains(held, uid) {
				want[name] = true
			}
		}
	}
	var cached []string
	err = wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		cached = informer.GetStore().ListKeys()
		return len(cached) >= len(want), nil
	})
	if err != nil {
		t.Fatalf("the informer caches %d objects, want %d: %v", len(cached), len(want), err)
	}
	for _, key := range cached {
		name := key[strings.Index(key, "/")+1:]
		if !want[name] {
			t.Errorf("the informer caches %s, outside slots %v", key, held)
		}
	}
	if len(cached) != len(want) {
		t.Errorf("the informer caches %d objects, want %d", len(cached), len(want))
	}
	t.Logf("slots %v of 16: the informer caches %d of %d objects", held, len(cached), len(before)+len(after))
}

// TestDetectHonoured: with the gate, Detect says honoured, through a typed
// and through a dynamic client.
func TestDetectHonoured(t *testing.T) {
	lab := kubelabtest.Default()
	ns := lab.Namespace(t)
	createConfigMaps(t, lab.Client(), ns, 20)
	checkDetect(t, lab.Client(), lab.Dynamic(), ns, true)

	// With no object at all, the echo still tells.
	empty := lab.Namespace(t)
	checkDetect(t, lab.Client(), lab.Dynamic(), empty, true)
}

// ungatedLab starts a lab without the ShardedListAndWatch gate for the
// length of the test. Call it before lab.Namespace, whose cleanup must run
// before the lab stops.
func ungatedLab(t *testing.T) *kubelabtest.Lab {
	t.Helper()
	started := time.Now()
	lab, err := kubelabtest.Start(t.Context(), kubelabtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Stop(); err != nil {
			t.Errorf("stopping the lab: %v", err)
		}
	})
	t.Logf("a lab without the gate started in %v", time.Since(started).Round(time.Millisecond))
	return lab
}

// TestDetectNotHonoured: on a lab without the gate (started here), Detect
// says not honoured, and the server indeed lists everything.
func TestDetectNotHonoured(t *testing.T) {
	lab := ungatedLab(t)
	ns := lab.Namespace(t)
	uids := createConfigMaps(t, lab.Client(), ns, 20)

	ring, _ := shard.NewRing(2)
	sel, _ := ring.Selector(shard.NewSet(0))
	list, err := lab.Client().CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{ShardSelector: sel.String()})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != len(uids) || list.ShardInfo != nil {
		t.Errorf("without the gate: %d of %d objects listed with a selector, shardInfo %v; want all, none", len(list.Items), len(uids), list.ShardInfo)
	}
	checkDetect(t, lab.Client(), lab.Dynamic(), ns, false)
}

func checkDetect(t *testing.T, client kubernetes.Interface, dyn dynamic.Interface, ns string, want bool) {
	t.Helper()
	typed, err := shard.Detect(t.Context(), client.CoreV1().ConfigMaps(ns).List)
	if err != nil {
		t.Fatal(err)
	}
	unstructured, err := shard.Detect(t.Context(), dyn.Resource(configMaps).Namespace(ns).List)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []shard.Detection{typed, unstructured} {
		if d.Honoured != want {
			t.Errorf("Detect = %+v, want honoured %t", d, want)
		}
	}
	t.Logf("typed: %+v; dynamic: %+v", typed, unstructured)
}
