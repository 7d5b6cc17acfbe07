package kubehandlertest_test

import (
	"context"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// MyHandler is the handler of the package doc's example: it keeps, per
// ConfigMap, the value of its key "k" ("" once deleted).
type MyHandler struct {
	kubehandler.DefaultHandler

	mu     sync.Mutex
	values map[string]string
}

func (h *MyHandler) AddFunc(ctx context.Context, namespace, name string) error {
	return h.UpdateFunc(ctx, namespace, name)
}

func (h *MyHandler) UpdateFunc(ctx context.Context, namespace, name string) error {
	ev, _ := kubehandler.EventFromContext(ctx)
	h.set(namespace+"/"+name, ev.Object.(*corev1.ConfigMap).Data["k"])
	return nil
}

func (h *MyHandler) DeleteFunc(ctx context.Context, namespace, name string) error {
	h.set(namespace+"/"+name, "")
	return nil
}

func (h *MyHandler) set(key, value string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.values == nil {
		h.values = map[string]string{}
	}
	h.values[key] = value
}

// TestMyHandler is the package doc's example, as it is there, and then
// what MyHandler did.
func TestMyHandler(t *testing.T) {
	cms := kubehandlertest.NewConfigMapSource()
	cms.Create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}})

	myHandler := &MyHandler{
		DefaultHandler: kubehandler.DefaultHandler{Name: "configmaps", Informer: cms.Informer(t)},
	}
	h := kubehandlertest.Record(t, myHandler)
	loop := kubehandler.NewEventLoop("test")
	loop.Register(h)
	kubehandlertest.Start(t, loop, 4)

	cms.Update(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}, Data: map[string]string{"k": "v"}})
	cms.Create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b"}, Data: map[string]string{"k": "w"}})
	cms.DeleteUnseen("ns", "a") // seen by relisting: a tombstone
	h.Wait(t, cms.State("configmaps"))

	myHandler.mu.Lock()
	defer myHandler.mu.Unlock()
	if a, b := myHandler.values["ns/a"], myHandler.values["ns/b"]; a != "" || b != "w" {
		t.Errorf("values a=%q b=%q, want a deleted and b=w", a, b)
	}
}
