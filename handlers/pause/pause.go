// Package pause stops a controller from handling single objects, on
// request, without stopping the controller.
//
// A Handler wraps the controller's own kubehandler.EventHandler ("next").
// An object that carries the pause label (its key is configured, for
// instance example.com/paused; the value is ignored) is paused: its add and
// update events are not passed on, and the handler sets, once, a status
// condition on it:
//
//	type: Paused
//	status: "True"
//	reason: PausedByLabel
//	message: The label example.com/paused is set: ...
//
// When the label goes away the handler removes the Paused condition,
// whichever reason it has, and passes the event on again. The condition
// tells users and tools why nothing happens to the object.
//
//	h, err := pause.New(widgetsHandler, "example.com/paused",
//		pause.DynamicPatch(dynamicClient, widgetsResource))
//	loop.Register(h)
//
// # Wrapper or step
//
// New returns a Handler that wraps next: register it on an EventLoop in
// next's place (it has next's name and informer). NewStep returns one
// without next, a kubehandler.Step of a kubehandler.Chain: for a paused
// object it returns kubehandler.CancelChain(), so the steps after it do not
// run; for any other it returns nil and the chain goes on. A wrapping
// Handler returns nil for a paused object, having not called next.
//
// # Objects
//
// The handler works with any object whose status holds []metav1.Condition:
// unstructured objects of any custom resource (their status.conditions, read
// as stored) and typed objects that implement HasConditions. It writes
// through a PatchFunc: DynamicPatch for the dynamic client, or a line
// around a typed client's Patch. It reads the object of a call from
// kubehandler.EventFromContext (the informer's cached object, never
// modified), or, when the call carries none, from a store (WithStore).
//
// # Writes
//
// The condition is written with a JSON merge patch of the status
// subresource, never a full update, and only when it is missing or wrong.
// The patch carries the object's resourceVersion, because a merge patch
// replaces the conditions list as a whole: if the object changed since the
// informer saw it, the apiserver answers Conflict, the error goes back to
// the loop, and the retry works on the newer object. Conditions other
// controllers set are never lost, and there is one write per pause or
// resume, not a storm.
//
// # The delete path
//
// Deletes pass through by default, paused or not: delete events and, as a
// Chain defines the delete path, adds and updates of an object that has a
// deletion timestamp. So a controller cleans up after an object that goes
// away and removes its finalizers, and a paused object can be deleted.
// WithPauseDeletes holds the delete path back too: then a paused object's
// finalizers stay until the label is removed (its deletion waits, and the
// Paused condition says why), and a delete whose final state carried the
// label is not passed on.
//
// # SelfPause
//
// A controller that reaches a state it cannot recover from by retrying (a
// Job that failed all its attempts, an external system in a bad state) can
// pause the object itself with Handler.SelfPause: the condition says
// PausedByController and how to resume, and the pause label's value is the
// controller's owner UID. Prefer retrying with backoff; pause only what needs
// a human.
//
// With WithEventRecorder the handler also records Kubernetes Events when
// it pauses and resumes an object.
package pause

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"

	"github.com/kubehandler/kubehandler"
)

// Handler holds back the events of paused objects; see the package doc.
// Make one with New or NewStep. It is safe for concurrent use, as an
// EventLoop's workers need.
type Handler struct {
	next     kubehandler.EventHandler // nil for a step
	labelKey string
	patch    PatchFunc
	opts     options
}

var (
	_ kubehandler.EventHandler = (*Handler)(nil)
	_ kubehandler.Step         = (*Handler)(nil)
)

// New returns a Handler that passes the events of objects not paused to
// next. labelKey is the pause label's key; patch writes to the objects of
// next's resource (see PatchFunc, DynamicPatch). It returns an error if next
// or patch is nil or labelKey is not a valid label key.
func New(next kubehandler.EventHandler, labelKey string, patch PatchFunc, opts ...Option) (*Handler, error) {
	if next == nil {
		return nil, errors.New("pause: New needs a next handler to wrap; for a Chain step, use NewStep")
	}
	return newHandler(next, labelKey, patch, opts)
}

// NewStep returns a Handler for a step of a kubehandler.Chain: its
// callbacks return kubehandler.CancelChain() for a paused object and nil
// otherwise. It has no name and no informer, so it cannot be registered on
// an EventLoop by itself. It returns an error if patch is nil or labelKey is
// not a valid label key.
func NewStep(labelKey string, patch PatchFunc, opts ...Option) (*Handler, error) {
	return newHandler(nil, labelKey, patch, opts)
}

func newHandler(next kubehandler.EventHandler, labelKey string, patch PatchFunc, opts []Option) (*Handler, error) {
	if errs := content.IsLabelKey(labelKey); len(errs) > 0 {
		return nil, fmt.Errorf("pause: invalid label key %q: %s", labelKey, strings.Join(errs, "; "))
	}
	if patch == nil {
		return nil, errors.New("pause: a PatchFunc is needed to write the Paused condition")
	}
	h := &Handler{next: next, labelKey: labelKey, patch: patch}
	for _, o := range opts {
		o(&h.opts)
	}
	if h.opts.clock == nil {
		h.opts.clock = clock.RealClock{}
	}
	return h, nil
}

// GetName returns next's name (its Go type's name if that is empty, as an
// EventLoop would name it), or "" for a step.
func (h *Handler) GetName() string {
	if h.next == nil {
		return ""
	}
	if name := h.next.GetName(); name != "" {
		return name
	}
	t := reflect.TypeOf(h.next)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Name() != "" {
		return t.Name()
	}
	return t.String()
}

// GetSynced returns next's, or nil for a step.
func (h *Handler) GetSynced() cache.InformerSynced {
	if h.next == nil {
		return nil
	}
	return h.next.GetSynced()
}

// GetInformer returns next's, or nil for a step.
func (h *Handler) GetInformer() cache.SharedInformer {
	if h.next == nil {
		return nil
	}
	return h.next.GetInformer()
}

// AddFunc passes the add on to next unless the object is paused; then it
// sets the Paused condition if needed. If the object is not paused and has
// a Paused condition, the condition is removed first. An object being
// deleted is on the delete path: see DeleteFunc.
func (h *Handler) AddFunc(ctx context.Context, namespace, name string) error {
	pass, err := h.gate(ctx, namespace, name, false)
	if !pass || h.next == nil {
		return err
	}
	return h.next.AddFunc(ctx, namespace, name)
}

// UpdateFunc is AddFunc for updates.
func (h *Handler) UpdateFunc(ctx context.Context, namespace, name string) error {
	pass, err := h.gate(ctx, namespace, name, false)
	if !pass || h.next == nil {
		return err
	}
	return h.next.UpdateFunc(ctx, namespace, name)
}

// DeleteFunc passes the delete on to next. With WithPauseDeletes it treats
// the delete path like adds and updates: a delete is held back if the
// object's final state carried the pause label, and a paused object being
// deleted (a Chain calls DeleteFunc for it) also gets the Paused condition.
func (h *Handler) DeleteFunc(ctx context.Context, namespace, name string) error {
	pass, err := h.gate(ctx, namespace, name, true)
	if !pass || h.next == nil {
		return err
	}
	return h.next.DeleteFunc(ctx, namespace, name)
}

// gate decides whether the event of namespace/name goes on. If not, err is
// what the callback returns: nil, kubehandler.CancelChain() for a step, or
// the failure of a status patch.
func (h *Handler) gate(ctx context.Context, namespace, name string, deleteCallback bool) (pass bool, err error) {
	obj, exists, err := h.object(ctx, namespace, name, deleteCallback)
	if err != nil {
		return false, err
	}
	if obj == nil {
		// Nothing to look at: a delete without a final state, or an
		// object gone since its event (its delete follows).
		return true, nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return false, kubehandler.Terminal(fmt.Errorf("pause: %w", err))
	}
	if deleting := !exists || m.GetDeletionTimestamp() != nil; deleting && !h.opts.pauseDeletes {
		return true, nil
	}
	if IsPaused(m, h.labelKey) {
		if exists {
			if err := h.markPaused(ctx, obj, m); err != nil {
				return false, err
			}
		}
		klog.FromContext(ctx).V(4).Info("Held back the event of a paused object", "label", h.labelKey)
		return false, h.held()
	}
	if exists {
		if err := h.markResumed(ctx, obj, m); err != nil {
			return false, err
		}
	}
	return true, nil
}

// held is what a callback returns for an event it holds back.
func (h *Handler) held() error {
	if h.next == nil {
		return kubehandler.CancelChain()
	}
	return nil
}

// object returns the object of the call, and whether it still exists: the
// Event's (a delete's is the final state of an object gone), or else the
// store's. It returns nil if neither has it, and for a delete whose Event
// has no object: a same-named object in the store would not be the one
// deleted. For the same reason DeleteFunc takes from the store only an
// object being deleted (a Chain's delete path).
func (h *Handler) object(ctx context.Context, namespace, name string, deleteCallback bool) (obj interface{}, exists bool, err error) {
	if ev, ok := kubehandler.EventFromContext(ctx); ok && ev.Key.Namespace == namespace && ev.Key.Name == name {
		gone := ev.Type == kubehandler.WorkqueueDeleteEvent
		if ev.Object != nil || gone {
			return ev.Object, !gone, nil
		}
	}
	store := h.opts.store
	if store == nil && h.next != nil {
		if informer := h.next.GetInformer(); informer != nil {
			store = informer.GetStore()
		}
	}
	if store == nil {
		return nil, false, nil
	}
	obj, exists, err = store.GetByKey(cache.ObjectName{Namespace: namespace, Name: name}.String())
	if err != nil || !exists {
		return nil, false, err
	}
	if deleteCallback {
		if m, err := meta.Accessor(obj); err != nil || m.GetDeletionTimestamp() == nil {
			return nil, false, nil
		}
	}
	return obj, true, nil
}

// markPaused sets the Paused condition (PausedByLabel) on obj unless a
// Paused condition with status True is there already.
func (h *Handler) markPaused(ctx context.Context, obj interface{}, m metav1.Object) error {
	cur, err := pausedCondition(obj)
	if err != nil {
		return kubehandler.Terminal(fmt.Errorf("pause: %w", err))
	}
	if isTrue(cur) {
		return nil // set once: by an earlier event, or by SelfPause
	}
	if err := h.writeCondition(ctx, obj, m, cur, NewPausedCondition(h.labelKey)); err != nil {
		return err
	}
	klog.FromContext(ctx).V(2).Info("Paused", "label", h.labelKey)
	h.event(obj, corev1.EventTypeNormal, ReasonPausedByLabel, "Paused: the label %s is set", h.labelKey)
	return nil
}

// markResumed removes obj's Paused condition, if it has one.
func (h *Handler) markResumed(ctx context.Context, obj interface{}, m metav1.Object) error {
	cur, err := pausedCondition(obj)
	if err != nil {
		return kubehandler.Terminal(fmt.Errorf("pause: %w", err))
	}
	if cur == nil {
		return nil
	}
	conds, err := conditionsOf(obj)
	if err != nil {
		return kubehandler.Terminal(fmt.Errorf("pause: %w", err))
	}
	if err := h.patchConditions(ctx, m, removeCondition(conds, ConditionTypePaused)); err != nil {
		return err
	}
	klog.FromContext(ctx).V(2).Info("Resumed", "label", h.labelKey)
	h.event(obj, corev1.EventTypeNormal, "Resumed", "Resumed: the label %s is gone", h.labelKey)
	return nil
}

// writeCondition sets cond, stamped with obj's generation and, unless the
// current Paused condition cur is True already, the time, among obj's
// conditions.
func (h *Handler) writeCondition(ctx context.Context, obj interface{}, m metav1.Object, cur map[string]interface{}, cond metav1.Condition) error {
	conds, err := conditionsOf(obj)
	if err != nil {
		return kubehandler.Terminal(fmt.Errorf("pause: %w", err))
	}
	cond.ObservedGeneration = m.GetGeneration()
	cond.LastTransitionTime = metav1.NewTime(h.opts.clock.Now())
	if since, ok := cur["lastTransitionTime"].(string); ok && isTrue(cur) {
		// The status stays True: the transition is the earlier one.
		_ = cond.LastTransitionTime.UnmarshalQueryParameter(since)
	}
	if conds, err = setCondition(conds, cond); err != nil {
		return err
	}
	return h.patchConditions(ctx, m, conds)
}

// patchConditions sets m's status conditions to conds.
func (h *Handler) patchConditions(ctx context.Context, m metav1.Object, conds []interface{}) error {
	data, err := conditionsPatch(m, conds)
	if err != nil {
		return err
	}
	if err := h.patch(ctx, m.GetNamespace(), m.GetName(), types.MergePatchType, data, "status"); err != nil {
		return fmt.Errorf("pause: patching the status conditions of %s: %w", objectName(m), err)
	}
	return nil
}

// event records an Event on obj, if there is a recorder.
func (h *Handler) event(obj interface{}, eventType, reason, messageFmt string, args ...interface{}) {
	if h.opts.recorder == nil {
		return
	}
	if ro, ok := obj.(runtime.Object); ok {
		h.opts.recorder.Eventf(ro, eventType, reason, messageFmt, args...)
	}
}

// objectName returns "namespace/name", or "name" when cluster-scoped.
func objectName(m metav1.Object) string {
	return cache.ObjectName{Namespace: m.GetNamespace(), Name: m.GetName()}.String()
}
