package kubehandler_test

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// Promise 4: a delete the informer only learns of by relisting
// (cache.DeletedFinalStateUnknown) is dispatched as a delete carrying the
// object's last known state.
func TestTombstonesAreDeletes(t *testing.T) {
	f := newFixture(t)
	h := newRecorder(f.informer, "cm")
	loop := kubehandler.NewEventLoop("tombstones")
	loop.Register(h)
	kubehandlertest.Start(t, loop, 2)

	f.source.Create(configMap("ns", "keep", "1"))
	f.source.Create(configMap("ns", "gone", "1"))
	rv := f.source.Update(configMap("ns", "gone", "last"))
	key := kubehandler.Key{Kind: "cm", Namespace: "ns", Name: "gone"}
	eventually(t, "update dispatched", func() bool {
		calls := h.CallsFor(key)
		return len(calls) > 0 && calls[len(calls)-1].ResourceVersion() == rv
	})
	f.source.DeleteUnseen("ns", "gone")
	eventually(t, "delete dispatched", func() bool {
		calls := h.CallsFor(key)
		return calls[len(calls)-1].Type == kubehandler.WorkqueueDeleteEvent
	})
	calls := h.CallsFor(key)
	final, ok := calls[len(calls)-1].Object.(*corev1.ConfigMap)
	if !ok {
		t.Fatalf("delete carried %T, want the unwrapped *ConfigMap", calls[len(calls)-1].Object)
	}
	if final.Data["value"] != "last" || final.ResourceVersion != rv {
		t.Errorf("delete carried %v at rv %s, want the last known state (rv %s)", final.Data, final.ResourceVersion, rv)
	}
	if c := h.CallsFor(kubehandler.Key{Kind: "cm", Namespace: "ns", Name: "keep"}); c[len(c)-1].Type == kubehandler.WorkqueueDeleteEvent {
		t.Error("an object still present was dispatched as deleted")
	}
}

// Promise 7: periodic resyncs are dropped by default and delivered as
// updates with WithResyncEvents, for typed and unstructured objects. Two
// loops share one informer; the one that asks for resyncs proves they
// happened.
func TestResyncs(t *testing.T) {
	tests := []struct {
		name    string
		newList func() runtime.Object
		example runtime.Object
		object  func(name string) runtime.Object
	}{
		{"typed", func() runtime.Object { return &corev1.ConfigMapList{} }, &corev1.ConfigMap{},
			func(name string) runtime.Object { return configMap("ns", name, "1") }},
		{"unstructured", func() runtime.Object { return &unstructured.UnstructuredList{} }, &unstructured.Unstructured{},
			func(name string) runtime.Object { return unstructuredConfigMap("ns", name, "1") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixtureWith(t, time.Second, tt.newList, tt.example)
			for i := range 3 {
				f.source.Create(tt.object(fmt.Sprint("cm-", i)))
			}
			dropping := newRecorder(f.informer, "cm")
			delivering := newRecorder(f.informer, "cm")
			loopDrop := kubehandler.NewEventLoop("resync-dropped")
			loopDrop.Register(dropping)
			loopDeliver := kubehandler.NewEventLoop("resync-delivered", kubehandler.WithResyncEvents())
			loopDeliver.Register(delivering)
			kubehandlertest.Start(t, loopDrop, 2)
			kubehandlertest.Start(t, loopDeliver, 2)

			updates := func(r *kubehandlertest.Recorder) int {
				n := 0
				for _, c := range r.Calls() {
					if c.Type == kubehandler.WorkqueueUpdateEvent {
						n++
					}
				}
				return n
			}
			eventually(t, "several resyncs delivered", func() bool { return updates(delivering) >= 6 })
			if n := updates(dropping); n != 0 {
				t.Errorf("default loop got %d resync updates, want 0", n)
			}
			// A real change still gets through the default loop.
			changed := tt.object("cm-0")
			metaObj := changed.(metav1.Object)
			metaObj.SetLabels(map[string]string{"changed": "yes"})
			f.source.Update(changed)
			eventually(t, "real update delivered", func() bool { return updates(dropping) == 1 })
		})
	}
}
