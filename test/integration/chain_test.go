package integration

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
	"github.com/kubehandler/kubehandler/kubelabtest"
)

// A three-step chain on Widgets, a custom resource watched through a
// dynamic informer, with a finalizer the chain owns: a pause gate
// (CancelChain), a dependent ConfigMap, and the status written through the
// status subresource. The Widget converges, follows a spec change, stops
// following while paused, and on deletion stays, held by the finalizer,
// while its dependent exists (KeepFinalizer); once the dependent is
// deleted, the Widget disappears. The lab runs no garbage collector: the
// dependent goes only because the test deletes it.
func TestChainOnWidgets(t *testing.T) {
	began := time.Now()
	lab := kubelabtest.Default()
	dyn := lab.Dynamic()
	ns := lab.Namespace(t)
	ctx := t.Context()
	res := dyn.Resource(widgets).Namespace(ns)
	cms := lab.Client().CoreV1().ConfigMaps(ns)

	factory := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, ns, nil)
	informer := factory.ForResource(widgets).Informer()
	fctx, cancel := context.WithCancel(context.Background())
	factory.Start(fctx.Done())
	t.Cleanup(func() {
		cancel()
		factory.Shutdown()
	})

	const (
		finalizer = "test.kubehandler.dev/cleanup"
		pauseKey  = "test.kubehandler.dev/paused"
	)
	dependentName := func(w *unstructured.Unstructured) string { return w.GetName() + "-dependent" }
	size := func(w *unstructured.Unstructured) int64 {
		n, _, _ := unstructured.NestedInt64(w.Object, "spec", "size")
		return n
	}

	var pausedAt sync.Map // resourceVersions the gate cancelled the chain at
	gate := kubehandler.StepFunc(func(ctx context.Context, _, _ string) error {
		ev, _ := kubehandler.EventFromContext(ctx)
		w := ev.Object.(*unstructured.Unstructured)
		if _, paused := w.GetLabels()[pauseKey]; paused {
			pausedAt.Store(w.GetResourceVersion(), true)
			return kubehandler.CancelChain()
		}
		return nil
	})

	var keeps atomic.Int64
	dependent := &kubehandler.TypedHandler[*unstructured.Unstructured]{
		Sync: func(ctx context.Context, w *unstructured.Unstructured) error {
			value := strconv.FormatInt(size(w), 10)
			cm, err := cms.Get(ctx, dependentName(w), metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				_, err = cms.Create(ctx, configMap(ns, dependentName(w), int(size(w))), metav1.CreateOptions{})
				return err
			}
			if err != nil {
				return err
			}
			if cm.Data["value"] == value {
				return kubehandler.SkipStep()
			}
			cm = cm.DeepCopy()
			cm.Data["value"] = value
			_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
			return err
		},
		Delete: func(ctx context.Context, w *unstructured.Unstructured) error {
			_, err := cms.Get(ctx, dependentName(w), metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return err
			}
			keeps.Add(1)
			return kubehandler.KeepFinalizer(200 * time.Millisecond)
		},
	}

	var deleteEvents atomic.Int64
	status := &kubehandler.TypedHandler[*unstructured.Unstructured]{
		Sync: func(ctx context.Context, w *unstructured.Unstructured) error {
			seen, found, _ := unstructured.NestedInt64(w.Object, "status", "seen")
			if found && seen == size(w) {
				return nil
			}
			patch := fmt.Sprintf(`{"status":{"seen":%d}}`, size(w))
			_, err := res.Patch(ctx, w.GetName(), types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
			return err
		},
		Delete: func(ctx context.Context, _ *unstructured.Unstructured) error {
			if ev, _ := kubehandler.EventFromContext(ctx); ev.Type == kubehandler.WorkqueueDeleteEvent {
				deleteEvents.Add(1)
			}
			return nil
		},
	}

	chain := &kubehandler.Chain{
		DefaultHandler: kubehandler.DefaultHandler{Name: "widgets", Informer: informer},
		Steps:          []kubehandler.Step{gate, dependent, status},
		Finalizer:      finalizer,
		Patch:          kubehandler.ClientPatch(dyn.Resource(widgets).Namespace),
	}
	loop := kubehandler.NewEventLoop("chain-widgets", kubehandler.WithRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[kubehandler.Key](5*time.Millisecond, time.Second)))
	loop.Register(chain)
	kubehandlertest.Start(t, loop, 2)

	w := &unstructured.Unstructured{}
	w.SetAPIVersion("test.kubehandler.dev/v1")
	w.SetKind("Widget")
	w.SetName("gear")
	_ = unstructured.SetNestedField(w.Object, int64(3), "spec", "size")
	if _, err := res.Create(ctx, w, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	converged := func(want int64) func() (bool, string) {
		return func() (bool, string) {
			w, err := res.Get(ctx, "gear", metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			seen, _, _ := unstructured.NestedInt64(w.Object, "status", "seen")
			cm, err := cms.Get(ctx, "gear-dependent", metav1.GetOptions{})
			if err != nil {
				return false, "dependent: " + err.Error()
			}
			switch {
			case !slices.Contains(w.GetFinalizers(), finalizer):
				return false, fmt.Sprintf("finalizers %v", w.GetFinalizers())
			case seen != want:
				return false, fmt.Sprintf("status.seen %d, want %d", seen, want)
			case cm.Data["value"] != strconv.FormatInt(want, 10):
				return false, fmt.Sprintf("dependent value %s, want %d", cm.Data["value"], want)
			}
			return true, ""
		}
	}
	eventually(t, 30*time.Second, converged(3))
	t.Logf("converged %s after the create", time.Since(began).Round(time.Millisecond))

	setWidget := func(change func(w *unstructured.Unstructured)) string {
		t.Helper()
		var rv string
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			w, err := res.Get(ctx, "gear", metav1.GetOptions{})
			if err != nil {
				return err
			}
			change(w)
			updated, err := res.Update(ctx, w, metav1.UpdateOptions{})
			if err == nil {
				rv = updated.GetResourceVersion()
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return rv
	}
	setWidget(func(w *unstructured.Unstructured) {
		_ = unstructured.SetNestedField(w.Object, int64(5), "spec", "size")
	})
	eventually(t, 30*time.Second, converged(5))

	// Paused: the gate cancels the chain, the later steps do not follow the
	// change.
	pausedRV := setWidget(func(w *unstructured.Unstructured) {
		w.SetLabels(map[string]string{pauseKey: ""})
		_ = unstructured.SetNestedField(w.Object, int64(7), "spec", "size")
	})
	eventually(t, 30*time.Second, func() (bool, string) {
		_, ok := pausedAt.Load(pausedRV)
		return ok, "the gate has not seen the paused Widget"
	})
	if ok, why := converged(5)(); !ok {
		t.Fatalf("steps after the gate ran while paused: %s", why)
	}
	setWidget(func(w *unstructured.Unstructured) { w.SetLabels(nil) })
	eventually(t, 30*time.Second, converged(7))

	// Deleted: the dependent step keeps the finalizer while its dependent
	// exists, and the delete path is replayed.
	if err := res.Delete(ctx, "gear", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, func() (bool, string) {
		return keeps.Load() >= 3, fmt.Sprintf("%d keeps", keeps.Load())
	})
	held, err := res.Get(ctx, "gear", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Widget went while its dependent exists: %v", err)
	}
	if held.GetDeletionTimestamp() == nil || !slices.Contains(held.GetFinalizers(), finalizer) {
		t.Fatalf("Widget deletionTimestamp %v, finalizers %v: want held by %s", held.GetDeletionTimestamp(), held.GetFinalizers(), finalizer)
	}
	if err := cms.Delete(ctx, "gear-dependent", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	eventually(t, 30*time.Second, func() (bool, string) {
		_, err := res.Get(ctx, "gear", metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, fmt.Sprintf("Widget still there (%v)", err)
		}
		return deleteEvents.Load() > 0, "the delete event has not reached the steps"
	})
	t.Logf("Widget gone %s after its dependent, after %d keeps", time.Since(deleted).Round(time.Millisecond), keeps.Load())
	if _, err := cms.Get(ctx, "gear-dependent", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("dependent recreated on the delete path: %v", err)
	}
}
