package kubehandler

import (
	"context"
	"encoding/json"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// AddFinalizer adds finalizer to the object obj is the cached copy of, with
// patch. It reports whether the object now carries the finalizer; false,
// with a nil error, when the object changed since obj was read (the
// informer has the newer version on its way, and its event runs the handler
// again) or is gone. obj itself is not modified.
//
// The patch is a JSON merge patch of metadata.finalizers. A merge patch
// replaces a list whole, so it carries obj's resourceVersion: the API server
// refuses it (Conflict) rather than drop a finalizer another controller
// added since obj was read.
func AddFinalizer(ctx context.Context, patch PatchFunc, obj metav1.Object, finalizer string) (bool, error) {
	if slices.Contains(obj.GetFinalizers(), finalizer) {
		return true, nil
	}
	// Clip: append must not write into the cached object's array.
	r, err := patchFinalizers(ctx, patch, obj, append(slices.Clip(obj.GetFinalizers()), finalizer))
	return r == patched, err
}

// RemoveFinalizer removes finalizer from the object obj is the cached copy
// of, as AddFinalizer adds one. It reports whether the object is rid of it,
// also when the object is gone; false, with a nil error, when the object
// changed since obj was read.
func RemoveFinalizer(ctx context.Context, patch PatchFunc, obj metav1.Object, finalizer string) (bool, error) {
	if !slices.Contains(obj.GetFinalizers(), finalizer) {
		return true, nil
	}
	// Clone: the cached object's slice must not be written to.
	rest := slices.DeleteFunc(slices.Clone(obj.GetFinalizers()), func(f string) bool { return f == finalizer })
	r, err := patchFinalizers(ctx, patch, obj, rest)
	return r == patched || r == gone, err
}

// patchResult is what became of a conditional patch.
type patchResult int

const (
	patched  patchResult = iota
	changed              // Conflict: the object is no longer at the version read
	gone                 // NotFound
	rejected             // any other error
)

// patchFinalizers sets the finalizers of obj's object, on the condition that
// it is still at obj's resourceVersion.
func patchFinalizers(ctx context.Context, patch PatchFunc, obj metav1.Object, finalizers []string) (patchResult, error) {
	var list interface{} // null: the field goes away
	if len(finalizers) > 0 {
		list = finalizers
	}
	md := map[string]interface{}{"finalizers": list}
	if rv := obj.GetResourceVersion(); rv != "" {
		md["resourceVersion"] = rv
	}
	data, err := json.Marshal(map[string]interface{}{"metadata": md})
	if err != nil {
		return rejected, err
	}
	err = patch(ctx, obj.GetNamespace(), obj.GetName(), types.MergePatchType, data)
	switch {
	case err == nil:
		return patched, nil
	case apierrors.IsConflict(err):
		klog.FromContext(ctx).V(4).Info("Object changed since it was read; its next event sets the finalizers", "finalizers", finalizers)
		return changed, nil
	case apierrors.IsNotFound(err):
		return gone, nil
	}
	return rejected, err
}
