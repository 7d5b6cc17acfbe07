// Command demo runs an EventLoop over in-memory ConfigMaps that it creates,
// updates and deletes, and logs each handler call. `make run` starts it.
package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// ConfigMapHandler logs what it is called with.
type ConfigMapHandler struct {
	kubehandler.DefaultHandler
}

func (h *ConfigMapHandler) AddFunc(ctx context.Context, namespace, name string) error {
	return h.log(ctx)
}

func (h *ConfigMapHandler) UpdateFunc(ctx context.Context, namespace, name string) error {
	return h.log(ctx)
}

func (h *ConfigMapHandler) DeleteFunc(ctx context.Context, namespace, name string) error {
	return h.log(ctx)
}

func (h *ConfigMapHandler) log(ctx context.Context) error {
	ev, _ := kubehandler.EventFromContext(ctx)
	cm := ev.Object.(*corev1.ConfigMap)
	klog.FromContext(ctx).Info("Handled", "value", cm.Data["value"], "resourceVersion", cm.ResourceVersion)
	return nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Println("A kubehandler EventLoop over in-memory ConfigMaps; Ctrl-C stops it.")

	source := kubehandlertest.NewSource(func() runtime.Object { return &corev1.ConfigMapList{} })
	informer := cache.NewSharedIndexInformer(source, &corev1.ConfigMap{}, 0, cache.Indexers{})
	loop := kubehandler.NewEventLoop("demo")
	loop.Register(&ConfigMapHandler{DefaultHandler: kubehandler.DefaultHandler{Informer: informer, Name: "configmaps"}})

	var wg sync.WaitGroup
	wg.Go(func() { informer.RunWithContext(ctx) })
	wg.Go(func() { produce(ctx, source) })
	if err := loop.Run(ctx, 2); err != nil {
		klog.ErrorS(err, "Event loop failed")
	}
	wg.Wait()
}

// produce creates, updates and deletes a few ConfigMaps until ctx ends.
func produce(ctx context.Context, s *kubehandlertest.Source) {
	for i := 0; ; i++ {
		name := fmt.Sprintf("demo-%d", rand.IntN(3))
		cm := &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name},
			Data:       map[string]string{"value": fmt.Sprint(i)},
		}
		switch _, exists := s.Get("default", name); {
		case !exists:
			s.Create(cm)
		case rand.IntN(4) == 0:
			s.Delete("default", name)
		default:
			s.Update(cm)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(700 * time.Millisecond):
		}
	}
}
