package kubehandlertest

import (
	"context"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
)

// NewInformer returns a real shared informer of lw (a Source, say) with a
// namespace index, as informer factories make them (so generated listers
// work over its indexer: listers.NewFooLister(informer.GetIndexer())), and
// runs it until the test ends; the test's cleanup waits for it to stop.
// example is an object of the type lw lists (see TypedSource.Example). The
// informer does not resync.
func NewInformer(t testing.TB, lw cache.ListerWatcher, example runtime.Object) cache.SharedIndexInformer {
	t.Helper()
	informer := cache.NewSharedIndexInformer(lw, example, 0, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { informer.RunWithContext(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return informer
}

// Informer returns a running informer of the Source's objects; see
// NewInformer.
func (s *TypedSource[T]) Informer(t testing.TB) cache.SharedIndexInformer {
	t.Helper()
	return NewInformer(t, s, s.example)
}
