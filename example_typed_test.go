package kubehandler_test

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic/dynamicinformer"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubehandler/kubehandler"
)

// A TypedHandler hands its functions the object itself, typed: Sync for
// adds and updates, Delete with the final state. The object is the
// informer's cached one: read it, and DeepCopy before changing anything.
func ExampleTypedHandler() {
	replicas := int32(3)
	client := fake.NewClientset(&appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", ResourceVersion: "1"},
		Spec:       appsv1.DeploymentSpec{Replicas: &replicas},
	})
	factory := informers.NewSharedInformerFactory(client, 0)
	informer := factory.Apps().V1().Deployments().Informer()

	seen := make(chan string)
	handler := &kubehandler.TypedHandler[*appsv1.Deployment]{
		DefaultHandler: kubehandler.DefaultHandler{Name: "deployments", Informer: informer},
		Sync: func(ctx context.Context, d *appsv1.Deployment) error {
			seen <- fmt.Sprintf("sync %s/%s: %d replicas", d.Namespace, d.Name, *d.Spec.Replicas)
			return nil
		},
		Delete: func(ctx context.Context, d *appsv1.Deployment) error {
			seen <- fmt.Sprintf("delete %s/%s: had %d replicas", d.Namespace, d.Name, *d.Spec.Replicas)
			return nil
		},
	}
	loop := kubehandler.NewEventLoop("example")
	loop.Register(handler)

	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	stopped := make(chan error)
	go func() { stopped <- loop.Run(ctx, 1) }()
	fmt.Println(<-seen)
	_ = client.AppsV1().Deployments("default").Delete(ctx, "web", metav1.DeleteOptions{})
	fmt.Println(<-seen)
	cancel()
	<-stopped
	factory.Shutdown()
	// Output:
	// sync default/web: 3 replicas
	// delete default/web: had 3 replicas
}

// With a dynamic informer, T is *unstructured.Unstructured: the same
// handler works for any custom resource without generated types.
func ExampleTypedHandler_unstructured() {
	gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	widget := &unstructured.Unstructured{}
	widget.SetAPIVersion("example.com/v1")
	widget.SetKind("Widget")
	widget.SetNamespace("default")
	widget.SetName("gear")
	widget.SetResourceVersion("1")
	_ = unstructured.SetNestedField(widget.Object, int64(5), "spec", "size")
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{gvr: "WidgetList"}, widget)
	factory := dynamicinformer.NewDynamicSharedInformerFactory(client, 0)
	informer := factory.ForResource(gvr).Informer()

	seen := make(chan string, 1)
	handler := &kubehandler.TypedHandler[*unstructured.Unstructured]{
		DefaultHandler: kubehandler.DefaultHandler{Name: "widgets", Informer: informer},
		Sync: func(ctx context.Context, w *unstructured.Unstructured) error {
			size, _, _ := unstructured.NestedInt64(w.Object, "spec", "size")
			seen <- fmt.Sprintf("sync %s %s/%s: size %d", w.GetKind(), w.GetNamespace(), w.GetName(), size)
			return nil
		},
	}
	loop := kubehandler.NewEventLoop("example")
	loop.Register(handler)

	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	stopped := make(chan error)
	go func() { stopped <- loop.Run(ctx, 1) }()
	fmt.Println(<-seen)
	cancel()
	<-stopped
	factory.Shutdown()
	// Output: sync Widget default/gear: size 5
}
