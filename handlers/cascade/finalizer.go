package cascade

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// FieldManager is the field manager of the handler's writes to upstream
// objects (its finalizer).
const FieldManager = "kubehandler-cascade"

// addFinalizer adds the handler's finalizer to the live upstream object m,
// if it is configured and missing.
func (h *Handler) addFinalizer(ctx context.Context, m metav1.Object) error {
	f := h.opts.finalizer
	if f == "" || h.opts.dryRun || slices.Contains(m.GetFinalizers(), f) {
		return nil
	}
	if err := h.patchFinalizers(ctx, m, append(slices.Clone(m.GetFinalizers()), f)); err != nil {
		return err
	}
	klog.FromContext(ctx).V(2).Info("Added finalizer", "finalizer", f)
	return nil
}

// removeFinalizer removes the handler's finalizer from the upstream object
// m, if it is there.
func (h *Handler) removeFinalizer(ctx context.Context, m metav1.Object) error {
	f := h.opts.finalizer
	if f == "" || !slices.Contains(m.GetFinalizers(), f) {
		return nil
	}
	rest := slices.DeleteFunc(slices.Clone(m.GetFinalizers()), func(s string) bool { return s == f })
	if err := h.patchFinalizers(ctx, m, rest); err != nil {
		return err
	}
	klog.FromContext(ctx).V(2).Info("Dependents gone; removed finalizer", "finalizer", f)
	return nil
}

// patchFinalizers sets m's finalizers with a JSON merge patch. A merge
// patch replaces the list as a whole, so the patch carries m's
// resourceVersion: if another writer changed the object since it was read,
// the apiserver answers Conflict instead of dropping its change, and the
// loop retries with the newer object. NotFound means the object is gone:
// nothing left to do.
func (h *Handler) patchFinalizers(ctx context.Context, m metav1.Object, finalizers []string) error {
	var list interface{}
	if len(finalizers) > 0 {
		list = finalizers
	}
	metadata := map[string]interface{}{"finalizers": list}
	if rv := m.GetResourceVersion(); rv != "" {
		metadata["resourceVersion"] = rv
	}
	data, err := json.Marshal(map[string]interface{}{"metadata": metadata})
	if err != nil {
		return err
	}
	_, err = h.client.Resource(h.opts.upstream).Namespace(m.GetNamespace()).Patch(ctx, m.GetName(), types.MergePatchType, data,
		metav1.PatchOptions{FieldManager: FieldManager})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("cascade: setting the finalizers of %s to %v: %w", klog.KObj(m), finalizers, err)
	}
	return nil
}
