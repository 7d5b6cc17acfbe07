package pause_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/handlers/pause"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// TestThroughLoop runs the wrapper on an EventLoop over a fake dynamic
// client and a real informer: a labelled object is held back and gets the
// condition; unlabelled, it is passed on and loses it.
func TestThroughLoop(t *testing.T) {
	live, held := widget("live", nil), widget("held", map[string]string{label: "x"})
	for _, w := range []*unstructured.Unstructured{live, held} {
		// The fake client keeps resourceVersions as given: leave them empty,
		// or every update would look like a resync and be dropped.
		w.SetResourceVersion("")
	}
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{widgets: "WidgetList"}, live, held)
	factory := dynamicinformer.NewDynamicSharedInformerFactory(client, 0)
	informer := factory.ForResource(widgets).Informer()
	next := kubehandlertest.NewRecorder(t, informer, "widgets")
	h, err := pause.New(next, label, pause.DynamicPatch(client, widgets))
	if err != nil {
		t.Fatal(err)
	}
	runLoop(t, factory, h)

	heldKey := kubehandler.Key{Kind: "widgets", Namespace: "ns", Name: "held"}
	liveKey := kubehandler.Key{Kind: "widgets", Namespace: "ns", Name: "live"}
	poll(t, "live passed on", func() bool { return len(next.CallsFor(liveKey)) > 0 })
	poll(t, "held gets the Paused condition", func() bool { return pausedStatus(t, client, "held") == "True" })

	_, err = client.Resource(widgets).Namespace("ns").Patch(t.Context(), "held", types.MergePatchType,
		[]byte(`{"metadata":{"labels":{"`+label+`":null}}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "held passed on once unlabelled", func() bool { return len(next.CallsFor(heldKey)) > 0 })
	poll(t, "held loses the Paused condition", func() bool { return pausedStatus(t, client, "held") == "" })

	for _, c := range next.CallsFor(heldKey) {
		if pause.IsPaused(c.Object.(*unstructured.Unstructured), label) {
			t.Errorf("next got a %s of held while it was labelled", c.Type)
		}
	}
}

// pausedStatus returns the status of the widget's Paused condition, or "".
func pausedStatus(t *testing.T, client dynamic.Interface, name string) string {
	t.Helper()
	w, err := client.Resource(widgets).Namespace("ns").Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conds, _, _ := unstructured.NestedSlice(w.Object, "status", "conditions")
	for _, c := range conds {
		if m := c.(map[string]interface{}); m["type"] == "Paused" {
			return m["status"].(string)
		}
	}
	return ""
}

// poll waits up to ten seconds for cond.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 5*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting until %s: %v", what, err)
	}
}

// deleteSpy signals each return of the pause handler's DeleteFunc.
type deleteSpy struct {
	*pause.Handler
	deleted chan error
}

func (s *deleteSpy) DeleteFunc(ctx context.Context, namespace, name string) error {
	err := s.Handler.DeleteFunc(ctx, namespace, name)
	s.deleted <- err
	return err
}

// TestDeleteEventThroughLoop: the delete of a labelled object reaches next
// by default, not with WithPauseDeletes.
func TestDeleteEventThroughLoop(t *testing.T) {
	tests := []struct {
		name     string
		opts     []pause.Option
		wantPass bool
	}{
		{"by default", nil, true},
		{"WithPauseDeletes", []pause.Option{pause.WithPauseDeletes()}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			held := widget("held", map[string]string{label: "x"})
			held.SetResourceVersion("")
			client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
				map[schema.GroupVersionResource]string{widgets: "WidgetList"}, held)
			factory := dynamicinformer.NewDynamicSharedInformerFactory(client, 0)
			informer := factory.ForResource(widgets).Informer()
			next := kubehandlertest.NewRecorder(t, informer, "widgets")
			h, err := pause.New(next, label, pause.DynamicPatch(client, widgets), tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			spy := &deleteSpy{Handler: h, deleted: make(chan error, 1)}
			runLoop(t, factory, spy)
			poll(t, "held gets the Paused condition", func() bool { return pausedStatus(t, client, "held") == "True" })

			if err := client.Resource(widgets).Namespace("ns").Delete(t.Context(), "held", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-spy.deleted:
				if err != nil {
					t.Errorf("DeleteFunc = %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the delete was not dispatched")
			}

			var deletes int
			for _, c := range next.Calls() {
				if c.Type == kubehandler.WorkqueueDeleteEvent {
					deletes++
				} else {
					t.Errorf("next got a %s of the labelled object", c.Type)
				}
			}
			if passed := deletes > 0; passed != tt.wantPass {
				t.Errorf("delete passed on = %v, want %v", passed, tt.wantPass)
			}
		})
	}
}

// TestChainStep: as a step of a kubehandler.Chain, the handler cancels the
// steps after it for a paused object.
func TestChainStep(t *testing.T) {
	live, held := widget("live", nil), widget("held", map[string]string{label: "x"})
	live.SetResourceVersion("")
	held.SetResourceVersion("")
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{widgets: "WidgetList"}, live, held)
	factory := dynamicinformer.NewDynamicSharedInformerFactory(client, 0)
	informer := factory.ForResource(widgets).Informer()
	step, err := pause.NewStep(label, pause.DynamicPatch(client, widgets))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reconciled []string // with the label's presence
	reconcile := kubehandler.StepFunc(func(ctx context.Context, namespace, name string) error {
		ev, _ := kubehandler.EventFromContext(ctx)
		mu.Lock()
		defer mu.Unlock()
		reconciled = append(reconciled, fmt.Sprintf("%s paused=%v", name, pause.IsPaused(ev.Object.(*unstructured.Unstructured), label)))
		return nil
	})
	runLoop(t, factory, &kubehandler.Chain{
		DefaultHandler: kubehandler.DefaultHandler{Informer: informer, Name: "widgets"},
		Steps:          []kubehandler.Step{step, reconcile},
	})
	saw := func(s string) bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(reconciled, s)
	}
	poll(t, "live reconciled", func() bool { return saw("live paused=false") })
	poll(t, "held gets the Paused condition", func() bool { return pausedStatus(t, client, "held") == "True" })

	_, err = client.Resource(widgets).Namespace("ns").Patch(t.Context(), "held", types.MergePatchType,
		[]byte(`{"metadata":{"labels":null}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "held reconciled once unlabelled", func() bool { return saw("held paused=false") })
	poll(t, "held loses the Paused condition", func() bool { return pausedStatus(t, client, "held") == "" })
	if saw("held paused=true") {
		t.Error("the step after pause ran for the labelled object")
	}
}

// runLoop runs h on a loop, with factory, until the test ends.
func runLoop(t *testing.T, factory dynamicinformer.DynamicSharedInformerFactory, h kubehandler.EventHandler) {
	t.Helper()
	loop := kubehandler.NewEventLoop("pause-test")
	loop.Register(h)
	kubehandlertest.Start(t, loop, 2, factory)
}
