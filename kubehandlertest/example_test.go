package kubehandlertest_test

import (
	"context"
	"fmt"
	"sort"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// The test's hand on a Source: every write gets the next resourceVersion,
// and State says what a handler's last calls must have seen.
func ExampleSource() {
	cms := kubehandlertest.NewConfigMapSource()
	a := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}}
	fmt.Println("created a at", cms.Create(a))
	fmt.Println("updated a at", cms.Update(&corev1.ConfigMap{ObjectMeta: a.ObjectMeta, Data: map[string]string{"k": "v"}}))
	cms.Create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b"}})
	cms.Delete("ns", "a")

	state := cms.State("configmaps")
	var lines []string
	for key, rv := range state {
		if rv == "" {
			rv = "deleted"
		}
		lines = append(lines, fmt.Sprintf("%s: %s", key, rv))
	}
	sort.Strings(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// created a at 1
	// updated a at 2
	// configmaps/ns/a: deleted
	// configmaps/ns/b: 3
}

// A fake clientset served from a Source refuses a write based on a stale
// copy, as the API server does.
func ExampleSource_Serve() {
	cms := kubehandlertest.NewConfigMapSource()
	client := kubefake.NewClientset()
	cms.Serve(client, "configmaps")
	ctx := context.Background()

	created, _ := client.CoreV1().ConfigMaps("ns").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, metav1.CreateOptions{})
	fmt.Println("created at", created.ResourceVersion)

	first := created.DeepCopy()
	first.Data = map[string]string{"writer": "first"}
	updated, _ := client.CoreV1().ConfigMaps("ns").Update(ctx, first, metav1.UpdateOptions{})
	fmt.Println("updated at", updated.ResourceVersion)

	second := created.DeepCopy() // still at resourceVersion 1
	second.Data = map[string]string{"writer": "second"}
	_, err := client.CoreV1().ConfigMaps("ns").Update(ctx, second, metav1.UpdateOptions{})
	fmt.Println("conflict:", apierrors.IsConflict(err))

	stored, _ := cms.Get("ns", "a")
	fmt.Println("stored:", stored.Data["writer"])
	// Output:
	// created at 1
	// updated at 2
	// conflict: true
	// stored: first
}

// An object deleted while the informers were not watching reaches them as
// a tombstone when they relist.
func ExampleSource_DeleteUnseen() {
	cms := kubehandlertest.NewConfigMapSource()
	cms.Create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}})

	informer := cache.NewSharedIndexInformer(cms, &corev1.ConfigMap{}, 0, cache.Indexers{})
	deleted := make(chan interface{}, 1)
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: func(obj interface{}) { deleted <- obj }})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { informer.RunWithContext(ctx) })
	defer wg.Wait()
	defer cancel()
	cache.WaitForCacheSync(ctx.Done(), informer.HasSynced)

	cms.DeleteUnseen("ns", "a")
	tombstone, ok := (<-deleted).(cache.DeletedFinalStateUnknown)
	fmt.Println(ok, tombstone.Key)
	// Output: true ns/a
}
