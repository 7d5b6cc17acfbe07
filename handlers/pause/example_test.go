package pause_test

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic/dynamicinformer"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/handlers/pause"
)

// WidgetsHandler is a controller's own handler.
type WidgetsHandler struct {
	kubehandler.DefaultHandler
	seen chan string
}

func (h *WidgetsHandler) AddFunc(ctx context.Context, namespace, name string) error {
	h.seen <- "reconciling " + namespace + "/" + name
	return nil
}

// newWidget returns a Widget of namespace default.
func newWidget(name string, labels map[string]string) *unstructured.Unstructured {
	w := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "example.com/v1", "kind": "Widget",
		"metadata": map[string]interface{}{"namespace": "default", "name": name},
	}}
	w.SetLabels(labels)
	return w
}

// The pause handler wraps the controller's handler and is registered in its
// place. The labelled Widget is not passed on; it gets a Paused condition
// through its status subresource, and an Event.
func ExampleNew() {
	widgets := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{widgets: "WidgetList"},
		newWidget("running", nil), newWidget("held", map[string]string{"example.com/paused": ""}))
	factory := dynamicinformer.NewDynamicSharedInformerFactory(client, 0)
	informer := factory.ForResource(widgets).Informer()

	controller := &WidgetsHandler{
		DefaultHandler: kubehandler.DefaultHandler{Informer: informer, Name: "widgets"},
		seen:           make(chan string, 10),
	}
	events := record.NewFakeRecorder(10)
	h, err := pause.New(controller, "example.com/paused", pause.DynamicPatch(client, widgets),
		pause.WithEventRecorder(events))
	if err != nil {
		panic(err)
	}
	loop := kubehandler.NewEventLoop("widgets")
	loop.Register(h)

	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan error)
	go func() { done <- loop.Run(ctx, 2) }()

	fmt.Println(<-controller.seen)
	fmt.Println(<-events.Events)
	held, err := client.Resource(widgets).Namespace("default").Get(ctx, "held", metav1.GetOptions{})
	if err != nil {
		panic(err)
	}
	conds, _, _ := unstructured.NestedSlice(held.Object, "status", "conditions")
	c := conds[0].(map[string]interface{})
	fmt.Println(c["type"], c["status"], c["reason"])

	cancel()
	<-done
	factory.Shutdown()
	// Output:
	// reconciling default/running
	// Normal PausedByLabel Paused: the label example.com/paused is set
	// Paused True PausedByLabel
}

// printPatch is a PatchFunc that prints what it is given.
func printPatch(_ context.Context, namespace, name string, pt types.PatchType, data []byte, subresources ...string) error {
	fmt.Printf("%s %s/%s %v: %s\n", pt, namespace, name, subresources, data)
	return nil
}

// As a step of a Chain, the handler cancels the rest of the chain for a
// paused object. Here the object comes from a store, as when a call carries
// no Event; the status patch carries the object's resourceVersion.
func ExampleNewStep() {
	held := newWidget("held", map[string]string{"example.com/paused": "true"})
	held.SetResourceVersion("12")
	store := cache.NewStore(cache.MetaNamespaceKeyFunc)
	if err := store.Add(held); err != nil {
		panic(err)
	}
	step, err := pause.NewStep("example.com/paused", printPatch, pause.WithStore(store),
		pause.WithClock(clocktesting.NewFakePassiveClock(now)))
	if err != nil {
		panic(err)
	}

	err = step.UpdateFunc(context.Background(), "default", "held")
	fmt.Println("cancel the chain:", kubehandler.IsCancelChain(err))
	// Output:
	// application/merge-patch+json default/held [status]: {"metadata":{"resourceVersion":"12"},"status":{"conditions":[{"lastTransitionTime":"2026-01-02T03:04:05Z","message":"The label example.com/paused is set: the controller leaves this object alone until the label is removed.","reason":"PausedByLabel","status":"True","type":"Paused"}]}}
	// cancel the chain: true
}

// A controller that cannot recover an object pauses it from its handler:
// first the condition, with how to resume, then the label, whose value is
// the controller's owner UID.
func ExampleHandler_SelfPause() {
	h, err := pause.New(&WidgetsHandler{}, "example.com/paused", printPatch,
		pause.WithClock(clocktesting.NewFakePassiveClock(now)))
	if err != nil {
		panic(err)
	}
	broken := newWidget("broken", nil)
	broken.SetResourceVersion("40")

	// Inside the controller's UpdateFunc, having found broken beyond repair:
	ownerUID := types.UID("0b6e6a2e-5f4a-4c0e-9d0e-2f8f3c1a7b11") // the controller's Deployment, say
	if err := h.SelfPause(context.Background(), broken, ownerUID); err != nil {
		panic(err)
	}
	// Output:
	// application/merge-patch+json default/broken [status]: {"metadata":{"resourceVersion":"40"},"status":{"conditions":[{"lastTransitionTime":"2026-01-02T03:04:05Z","message":"The controller paused this object after a failure that retrying cannot fix (see the object's events and the controller's logs). Fix the cause, then remove the label example.com/paused to resume.","reason":"PausedByController","status":"True","type":"Paused"}]}}
	// application/merge-patch+json default/broken []: {"metadata":{"labels":{"example.com/paused":"0b6e6a2e-5f4a-4c0e-9d0e-2f8f3c1a7b11"}}}
}
