package kubehandler_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// Eventf records an Event about the object of the call through the
// recorder given with WithEventRecorder.
func TestEventf(t *testing.T) {
	rec := record.NewFakeRecorder(10)
	q := kubehandler.NewWorkQueue("events", kubehandler.WithEventRecorder(rec))
	q.RegisterAddHandler("cm", func(ctx context.Context, namespace, name string) error {
		kubehandler.Eventf(ctx, corev1.EventTypeNormal, "Handled", "handled %s", name)
		return nil
	})
	q.EnqueueAdd("cm", configMap("ns", "a", "1"))
	q.EnqueueAdd("cm", "ns/no-object") // a bare key: nothing to record about
	kubehandlertest.Start(t, q, 1)
	select {
	case ev := <-rec.Events:
		if ev != "Normal Handled handled a" {
			t.Errorf("event %q", ev)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no event recorded")
	}
	eventually(t, "both handled", func() bool { return q.Length() == 0 })
	select {
	case ev := <-rec.Events:
		t.Errorf("unexpected event %q", ev)
	default:
	}
	kubehandler.Eventf(t.Context(), corev1.EventTypeNormal, "Outside", "not in a call") // must not panic
}
