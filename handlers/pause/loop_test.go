package pause_test

import (
	"context"
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
	"github.com/kubehandler/kubehandler/internal/recorder"
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
	next := recorder.New(informer, "widgets")
	h, err := pause.New(next, label, pause.DynamicPatch(client, widgets))
	if err != nil {
		t.Fatal(err)
	}
	loop := kubehandler.NewEventLoop("pause-test")
	loop.Register(h)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	factory.Start(ctx.Done())
	go func() { done <- loop.Run(ctx, 2) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
		factory.Shutdown()
	}()

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
