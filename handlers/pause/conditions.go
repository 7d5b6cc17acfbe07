package pause

import (
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// ConditionTypePaused is the type of the status condition that says an
// object is paused.
const ConditionTypePaused = "Paused"

// The reasons of a Paused condition.
const (
	// ReasonPausedByLabel is the reason of a Paused condition set because
	// the object carries the pause label.
	ReasonPausedByLabel = "PausedByLabel"
	// ReasonPausedByController is the reason of a Paused condition set by
	// the controller itself (Handler.SelfPause).
	ReasonPausedByController = "PausedByController"
)

// IsPaused reports whether obj carries the label labelKey, whatever its
// value. A nil obj is not paused.
func IsPaused(obj metav1.Object, labelKey string) bool {
	if obj == nil {
		return false
	}
	_, ok := obj.GetLabels()[labelKey]
	return ok
}

// NewPausedCondition returns the condition the handler sets on an object
// that carries the pause label labelKey: Paused, True, PausedByLabel, with a
// message naming the label. Its LastTransitionTime and ObservedGeneration
// are left for the caller (the handler fills them).
func NewPausedCondition(labelKey string) metav1.Condition {
	return metav1.Condition{
		Type:    ConditionTypePaused,
		Status:  metav1.ConditionTrue,
		Reason:  ReasonPausedByLabel,
		Message: fmt.Sprintf("The label %s is set: the controller leaves this object alone until the label is removed.", labelKey),
	}
}

// NewSelfPausedCondition returns the condition Handler.SelfPause sets:
// Paused, True, PausedByController, with a message that says how to resume
// (remove the label labelKey). Its LastTransitionTime and
// ObservedGeneration are left for the caller.
func NewSelfPausedCondition(labelKey string) metav1.Condition {
	return metav1.Condition{
		Type:   ConditionTypePaused,
		Status: metav1.ConditionTrue,
		Reason: ReasonPausedByController,
		Message: fmt.Sprintf("The controller paused this object after a failure that retrying cannot fix "+
			"(see the object's events and the controller's logs). Fix the cause, then remove the label %s to resume.", labelKey),
	}
}

// HasConditions is implemented by typed objects whose status holds
// []metav1.Condition, so that the handler can read them:
//
//	func (w *Widget) GetConditions() []metav1.Condition { return w.Status.Conditions }
//
// Unstructured objects need nothing: the handler reads status.conditions.
type HasConditions interface {
	// GetConditions returns the object's status conditions. The handler
	// only reads them.
	GetConditions() []metav1.Condition
}

// conditionsOf returns obj's status conditions as JSON values (one
// map[string]interface{} each), a copy the caller may change. An
// unstructured object's conditions are taken as stored, so that fields
// metav1.Condition does not know survive a patch that rewrites the list.
func conditionsOf(obj interface{}) ([]interface{}, error) {
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		conds, _, err := unstructured.NestedSlice(o.Object, "status", "conditions") // a deep copy
		if err != nil {
			return nil, fmt.Errorf("reading status.conditions: %w", err)
		}
		return conds, nil
	case HasConditions:
		var conds []interface{}
		if err := roundTrip(o.GetConditions(), &conds); err != nil {
			return nil, err
		}
		return conds, nil
	default:
		return nil, fmt.Errorf("%T has no status conditions the pause handler can read: "+
			"use unstructured objects or implement pause.HasConditions", obj)
	}
}

// pausedCondition returns obj's Paused condition as a JSON value, or nil.
// Unlike conditionsOf it copies nothing else: it runs on every event.
func pausedCondition(obj interface{}) (map[string]interface{}, error) {
	switch o := obj.(type) {
	case *unstructured.Unstructured:
		field, found, err := unstructured.NestedFieldNoCopy(o.Object, "status", "conditions")
		if err != nil || !found {
			return nil, err
		}
		conds, ok := field.([]interface{})
		if !ok {
			return nil, fmt.Errorf("reading status.conditions: %T, not a list", field)
		}
		_, c := findCondition(conds, ConditionTypePaused)
		return c, nil
	case HasConditions:
		for _, c := range o.GetConditions() {
			if c.Type == ConditionTypePaused {
				var v map[string]interface{}
				err := roundTrip(c, &v)
				return v, err
			}
		}
		return nil, nil
	default:
		_, err := conditionsOf(obj)
		return nil, err
	}
}

// findCondition returns the index and value of the condition of type typ in
// conds, or -1 and nil.
func findCondition(conds []interface{}, typ string) (int, map[string]interface{}) {
	for i, c := range conds {
		if m, ok := c.(map[string]interface{}); ok && m["type"] == typ {
			return i, m
		}
	}
	return -1, nil
}

// isTrue reports whether the condition c (a JSON value) has status True.
func isTrue(c map[string]interface{}) bool {
	return c != nil && c["status"] == string(metav1.ConditionTrue)
}

// setCondition returns conds with c in place of the condition of its type,
// or appended.
func setCondition(conds []interface{}, c metav1.Condition) ([]interface{}, error) {
	var v map[string]interface{}
	if err := roundTrip(c, &v); err != nil {
		return nil, err
	}
	if i, _ := findCondition(conds, c.Type); i >= 0 {
		conds[i] = v
		return conds, nil
	}
	return append(conds, v), nil
}

// removeCondition returns conds without the condition of type typ.
func removeCondition(conds []interface{}, typ string) []interface{} {
	if i, _ := findCondition(conds, typ); i >= 0 {
		return append(conds[:i], conds[i+1:]...)
	}
	return conds
}

// roundTrip converts in to out through JSON, as the apiserver would see it.
func roundTrip(in, out interface{}) error {
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, out)
}
