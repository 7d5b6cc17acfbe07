package cascade

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"

	"github.com/kubehandler/kubehandler"
)

// FieldManager is the field manager of the handler's writes to upstream
// objects (its finalizer).
const FieldManager = "kubehandler-cascade"

// addFinalizer adds the handler's finalizer to the live upstream object m,
// if it is configured and missing. If m changed meanwhile, the newer
// version's event adds it.
func (h *Handler) addFinalizer(ctx context.Context, m metav1.Object) error {
	f := h.opts.finalizer
	if f == "" || h.opts.dryRun {
		return nil
	}
	added, err := kubehandler.AddFinalizer(ctx, h.patchUpstream, m, f)
	if err != nil {
		return fmt.Errorf("cascade: adding finalizer %s to %s: %w", f, klog.KObj(m), err)
	}
	if added {
		klog.FromContext(ctx).V(2).Info("Finalizer on", "finalizer", f)
	}
	return nil
}

// removeFinalizer removes the handler's finalizer from the upstream object
// m, if it is there. If m changed meanwhile, the newer version's event runs
// the delete path again.
func (h *Handler) removeFinalizer(ctx context.Context, m metav1.Object) error {
	f := h.opts.finalizer
	if f == "" {
		return nil
	}
	removed, err := kubehandler.RemoveFinalizer(ctx, h.patchUpstream, m, f)
	if err != nil {
		return fmt.Errorf("cascade: removing finalizer %s from %s: %w", f, klog.KObj(m), err)
	}
	if removed {
		klog.FromContext(ctx).V(2).Info("Dependents gone; finalizer off", "finalizer", f)
	}
	return nil
}

// patchUpstream patches an upstream object through the dynamic client, as
// FieldManager.
func (h *Handler) patchUpstream(ctx context.Context, namespace, name string, pt types.PatchType, data []byte, subresources ...string) error {
	_, err := h.client.Resource(h.opts.upstream).Namespace(namespace).Patch(ctx, name, pt, data,
		metav1.PatchOptions{FieldManager: FieldManager}, subresources...)
	return err
}
