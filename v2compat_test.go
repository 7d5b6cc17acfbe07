package kubehandler_test

// This file is the kubehandler v2 README's example with only its import path
// changed, run against client-go's fake clientset and a real informer
// factory. It must keep compiling and working: v2 users depend on it.

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubehandler/kubehandler"
)

type DeploymentsHandler struct {
	kubehandler.DefaultHandler
	added atomic.Int32
}

func (h *DeploymentsHandler) AddFunc(ctx context.Context, namespace, name string) error {
	h.added.Add(1)
	return nil
}

func TestV2ReadmeExample(t *testing.T) {
	client := fake.NewClientset(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"}})
	kubeInformerFactory := kubeinformers.NewSharedInformerFactory(client, time.Minute)
	deploymentsInformer := kubeInformerFactory.Apps().V1().Deployments()

	loop := kubehandler.NewEventLoop("workqueueName")

	handler := &DeploymentsHandler{
		DefaultHandler: kubehandler.DefaultHandler{
			Synced:   deploymentsInformer.Informer().HasSynced,
			Informer: deploymentsInformer.Informer(),
		},
	}
	loop.Register(handler)

	ctx, cancelFunc := context.WithCancel(t.Context())
	kubeInformerFactory.Start(ctx.Done())
	defer kubeInformerFactory.Shutdown()

	threadiness := 2
	errc := make(chan error, 1)
	go func() { errc <- loop.Run(ctx, threadiness) }()

	eventually(t, "the existing Deployment is dispatched", func() bool { return handler.added.Load() == 1 })
	if _, err := client.AppsV1().Deployments("default").Create(ctx,
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "api"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new Deployment is dispatched", func() bool { return handler.added.Load() == 2 })

	cancelFunc()
	if err := <-errc; err != nil {
		t.Fatalf("Run = %v", err)
	}
}
