package kubehandler_test

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubehandler/kubehandler"
)

// ConfigMapsHandler embeds DefaultHandler and overrides the callbacks it
// cares about; the others do nothing.
type ConfigMapsHandler struct {
	kubehandler.DefaultHandler
	seen chan string
}

func (h *ConfigMapsHandler) AddFunc(ctx context.Context, namespace, name string) error {
	ev, _ := kubehandler.EventFromContext(ctx)
	cm := ev.Object.(*corev1.ConfigMap) // from the informer's cache: read, don't modify
	h.seen <- fmt.Sprintf("%s %s/%s: %s", ev.Type, namespace, name, cm.Data["greeting"])
	return nil
}

// A handler registered on an EventLoop receives its informer's events. Run
// waits for the informer to sync, dispatches with two workers, and returns
// nil once its context is cancelled and every call has returned.
func ExampleNewEventLoop() {
	client := fake.NewClientset(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello", ResourceVersion: "1"},
		Data:       map[string]string{"greeting": "hello, world"},
	})
	factory := informers.NewSharedInformerFactory(client, 10*time.Minute)
	informer := factory.Core().V1().ConfigMaps().Informer()

	handler := &ConfigMapsHandler{
		DefaultHandler: kubehandler.DefaultHandler{Informer: informer, Name: "configmaps"},
		seen:           make(chan string, 1),
	}
	loop := kubehandler.NewEventLoop("example")
	loop.Register(handler)

	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan error)
	go func() { done <- loop.Run(ctx, 2) }()

	fmt.Println(<-handler.seen)
	cancel()
	fmt.Println("Run returned:", <-done)
	factory.Shutdown()
	// Output:
	// add default/hello: hello, world
	// Run returned: <nil>
}

// DefaultHandler implements every EventHandler method; its callbacks do
// nothing. A type embedding it overrides what it needs, and an empty Name
// becomes the type's name ("PodsHandler" here).
func ExampleDefaultHandler() {
	type PodsHandler struct {
		kubehandler.DefaultHandler
	}
	var h kubehandler.EventHandler = &PodsHandler{}
	fmt.Println(h.AddFunc(context.Background(), "default", "web") == nil)
	// Output: true
}

// An ErrorHandler decides what a failure does: here, three retries, then
// Run stops with an error wrapping the handler's.
func ExampleRetryUpTo() {
	q := kubehandler.NewWorkQueue("example", kubehandler.WithErrorHandler(kubehandler.RetryUpTo(3)),
		kubehandler.WithRateLimiter(fastLimiter()))
	calls := 0
	q.RegisterAddHandler("Widget", func(ctx context.Context, namespace, name string) error {
		calls++
		return fmt.Errorf("cannot reach %s/%s", namespace, name)
	})
	q.EnqueueAdd("Widget", "default/gear")
	err := q.Run(context.Background(), 1)
	fmt.Println(calls, "calls;", err)
	// Output: 4 calls; kubehandler: queue "example": Widget/default/gear failed after 3 retries: cannot reach default/gear
}

// A handler returns RequeueAfter to be called again for the same event later
// (to poll something outside the cluster, say), and Terminal for a failure
// retrying cannot fix.
func ExampleRequeueAfter() {
	handler := func(ctx context.Context, namespace, name string) error {
		ready, err := checkExternalThing(name)
		switch {
		case err != nil:
			return kubehandler.Terminal(err) // logged, counted, not retried
		case !ready:
			return kubehandler.RequeueAfter(30 * time.Second)
		}
		return nil
	}
	fmt.Println(handler(context.Background(), "default", "pending"))
	// Output: requeue after 30s
}

func checkExternalThing(name string) (bool, error) { return name != "pending", nil }
