package bench

import (
	"context"
	"errors"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
)

// startControllerRuntime starts a controller-runtime controller as its
// users get it by default: the priority queue (UsePriorityQueue defaults to
// true), EnqueueRequestForObject (initial-list adds at low priority), workers
// started once the source has synced. Its source is informer itself, the
// informer every Impl shares, so only the dispatch differs. It returns a
// function that waits for the controller to stop after ctx is cancelled.
func startControllerRuntime(ctx context.Context, informer cache.SharedIndexInformer, h handlerFunc) func() {
	c, err := controller.NewUnmanaged("bench", controller.Options{
		MaxConcurrentReconciles: Threadiness,
		// Every round builds a controller of the same name.
		SkipNameValidation: ptr.To(true),
		Reconciler: reconcile.Func(func(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
			return reconcile.Result{}, h(ctx, req.Namespace, req.Name)
		}),
	})
	if err != nil {
		panic(err)
	}
	src := &syncingInformer{
		Informer: source.Informer{Informer: informer, Handler: &handler.EnqueueRequestForObject{}},
		synced:   informer.HasSynced,
	}
	if err := c.Watch(src); err != nil {
		panic(err)
	}
	return func() {
		if err := c.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
			panic(err)
		}
	}
}

// syncingInformer is controller-runtime's Informer source that the
// controller waits for before starting its workers, as it waits for the
// Kind sources of a manager's cache.
type syncingInformer struct {
	source.Informer
	synced cache.InformerSynced
}

var _ source.TypedSyncingSource[reconcile.Request] = (*syncingInformer)(nil)

// WaitForSync implements source.SyncingSource.
func (s *syncingInformer) WaitForSync(ctx context.Context) error {
	return wait.PollUntilContextCancel(ctx, time.Millisecond, true, func(context.Context) (bool, error) {
		return s.synced(), nil
	})
}

// Start implements source.Source (the embedded one, named for the interface
// check above).
func (s *syncingInformer) Start(ctx context.Context, queue workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
	return s.Informer.Start(ctx, queue)
}
