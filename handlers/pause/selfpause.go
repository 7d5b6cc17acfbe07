package pause

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/validate/content"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
)

// SelfPause pauses obj on the controller's own decision, from inside its
// handler, when obj is in a state the controller cannot recover from by
// retrying. It sets the Paused condition with reason PausedByController
// and a message that says how to resume (NewSelfPausedCondition), then the
// pause label with ownerUID as its value: the UID of the controller's owner
// (its Deployment, say), so that users see who paused the object. From then
// on the Handler holds back obj's events until someone removes the label.
//
// obj is the object of the call, as read (it is not modified); its
// resourceVersion makes the status patch conditional, as for every write
// of the handler. The condition is written before the label, so that the
// label's event finds it there. SelfPause is idempotent: on an object that
// is paused already it changes nothing. On success, return nil from the
// handler (or kubehandler.CancelChain() from a Chain step); on error, return
// the error, and the retry will call SelfPause again with the newer object.
func (h *Handler) SelfPause(ctx context.Context, obj runtime.Object, ownerUID types.UID) error {
	m, err := meta.Accessor(obj)
	if err != nil {
		return fmt.Errorf("pause: SelfPause: %w", err)
	}
	if errs := content.IsLabelValue(string(ownerUID)); len(errs) > 0 {
		return fmt.Errorf("pause: SelfPause: owner UID %q is not a valid label value: %s", ownerUID, strings.Join(errs, "; "))
	}
	labelled := IsPaused(m, h.labelKey)
	cur, err := pausedCondition(obj)
	if err != nil {
		return fmt.Errorf("pause: SelfPause: %w", err)
	}
	changed := false
	if !isTrue(cur) || (cur["reason"] != ReasonPausedByController && !labelled) {
		if err := h.writeCondition(ctx, obj, m, cur, NewSelfPausedCondition(h.labelKey)); err != nil {
			return err
		}
		changed = true
	}
	if !labelled {
		data, err := labelPatch(h.labelKey, string(ownerUID))
		if err != nil {
			return err
		}
		if err := h.patch(ctx, m.GetNamespace(), m.GetName(), types.MergePatchType, data); err != nil {
			return fmt.Errorf("pause: setting the label %s on %s: %w", h.labelKey, objectName(m), err)
		}
		changed = true
	}
	if changed {
		klog.FromContext(ctx).Info("Paused by the controller", "label", h.labelKey, "owner", ownerUID)
		h.event(obj, corev1.EventTypeWarning, ReasonPausedByController,
			"Paused by its controller (owner %s) after a failure retrying cannot fix: fix the cause, then remove the label %s to resume",
			ownerUID, h.labelKey)
	}
	return nil
}
