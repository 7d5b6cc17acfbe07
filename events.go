package kubehandler

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"
)

// Eventf records a Kubernetes Event about the object of the handler call of
// ctx (Event.Object), with the recorder given by WithEventRecorder. eventtype
// is corev1.EventTypeNormal or corev1.EventTypeWarning; reason is a short
// UpperCamelCase word. Without a recorder, outside a handler call, or when
// the call has no object (a WorkQueue given a bare key), it logs the event at
// verbosity 4 instead.
func Eventf(ctx context.Context, eventtype, reason, messageFmt string, args ...interface{}) {
	c, _ := ctx.Value(eventContextKey{}).(*callContext)
	var obj runtime.Object
	if c != nil {
		obj, _ = c.obj.(runtime.Object)
	}
	if c == nil || c.runner.q.opts.recorder == nil || obj == nil {
		klog.FromContext(ctx).V(4).Info("Event not recorded", "type", eventtype, "reason", reason)
		return
	}
	c.runner.q.opts.recorder.Eventf(obj, eventtype, reason, messageFmt, args...)
}

// NewEventRecorder returns a recorder that writes Kubernetes Events through
// client (clientset.CoreV1()) as component, and a function that stops it,
// flushing what it can; call it once the loop has stopped. scheme must know
// the Go types of the objects events are about (client-go's
// kubernetes/scheme.Scheme for the built-in kinds, plus your own);
// unstructured objects carry their kind themselves.
func NewEventRecorder(client typedcorev1.EventsGetter, scheme *runtime.Scheme, component string) (record.EventRecorder, func()) {
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.Events("")})
	return broadcaster.NewRecorder(scheme, corev1.EventSource{Component: component}), broadcaster.Shutdown
}
