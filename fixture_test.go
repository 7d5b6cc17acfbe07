package kubehandler_test

import (
	"context"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// fixture is an in-memory source of ConfigMaps with a real shared informer
// over it, running until the test ends.
type fixture struct {
	source   *kubehandlertest.Source
	informer cache.SharedIndexInformer
}

func newFixture(t *testing.T) *fixture {
	return newFixtureWith(t, 0, func() runtime.Object { return &corev1.ConfigMapList{} }, &corev1.ConfigMap{})
}

func newFixtureWith(t *testing.T, resync time.Duration, newList func() runtime.Object, example runtime.Object) *fixture {
	t.Helper()
	f := &fixture{source: kubehandlertest.NewSource(newList)}
	f.run(t, resync, example)
	return f
}

// run makes f's informer over f.source and runs it until the test ends.
func (f *fixture) run(t *testing.T, resync time.Duration, example runtime.Object) {
	f.informer = cache.NewSharedIndexInformer(f.source, example, resync, cache.Indexers{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { f.informer.RunWithContext(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

func configMap(namespace, name, value string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Data:       map[string]string{"value": value},
	}
}

// newRecorder returns a recording handler of informer's events.
func newRecorder(informer cache.SharedInformer, name string) *kubehandlertest.Recorder {
	return kubehandlertest.NewRecorder(nil, informer, name)
}

// sourceState returns, for the names given, the resourceVersion each has in
// s, or "" for those that no longer exist: what kubehandlertest.Recorder.Matches wants.
func sourceState(kind string, s *kubehandlertest.Source, names map[cache.ObjectName]bool) map[kubehandler.Key]string {
	want := make(map[kubehandler.Key]string, len(names))
	for n := range names {
		rv := ""
		if obj, ok := s.Get(n.Namespace, n.Name); ok {
			rv = obj.(metav1.Object).GetResourceVersion()
		}
		want[kubehandler.Key{Kind: kind, Namespace: n.Namespace, Name: n.Name}] = rv
	}
	return want
}

// eventually polls cond until it holds, failing the test after a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fastRetries keeps retry backoff short so tests of failures finish quickly.
func fastRetries() kubehandler.Option {
	return kubehandler.WithRateLimiter(workqueue.NewTypedItemExponentialFailureRateLimiter[kubehandler.Key](time.Millisecond, 20*time.Millisecond))
}

func unstructuredConfigMap(namespace, name, value string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetNamespace(namespace)
	u.SetName(name)
	_ = unstructured.SetNestedField(u.Object, value, "data", "value")
	return u
}

// fastLimiter is a retry limiter for examples: 1ms, doubling to 10ms.
func fastLimiter() workqueue.TypedRateLimiter[kubehandler.Key] {
	return workqueue.NewTypedItemExponentialFailureRateLimiter[kubehandler.Key](time.Millisecond, 10*time.Millisecond)
}
