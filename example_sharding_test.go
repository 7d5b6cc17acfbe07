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

// Replicas that run this loop with the same ring name split the
// ConfigMaps between them; alone, a replica holds every slot. It is ready
// once it holds its share, and when its Run's context is cancelled it
// releases its slots for the others to take at once.
func ExampleWithSharding() {
	client := fake.NewClientset(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hello", UID: "6b5c0e1a-4d8f-4a8e-9d1b-1f2e3a4b5c6d", ResourceVersion: "1"},
		Data:       map[string]string{"greeting": "hello, ring"},
	})
	factory := informers.NewSharedInformerFactory(client, 0)
	handler := &ConfigMapsHandler{
		DefaultHandler: kubehandler.DefaultHandler{Informer: factory.Core().V1().ConfigMaps().Informer(), Name: "configmaps"},
		seen:           make(chan string, 1),
	}
	loop := kubehandler.NewEventLoop("example", kubehandler.WithSharding(kubehandler.Sharding{
		Client:    client.CoordinationV1(),
		Namespace: "default",
		Name:      "example",
		Identity:  "replica-0", // e.g. the Pod's name
		Slots:     16,
		// Short, for the example; the defaults are leader election's.
		LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 100 * time.Millisecond,
	}))
	loop.Register(handler)

	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	done := make(chan error)
	go func() { done <- loop.Run(ctx, 2) }()

	fmt.Println(<-handler.seen)
	for kubehandler.Readiness(loop)(nil) != nil {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("ready: holds its share of the ring")
	cancel()
	fmt.Println("Run returned:", <-done)
	factory.Shutdown()
	// Output:
	// add default/hello: hello, ring
	// ready: holds its share of the ring
	// Run returned: <nil>
}
