package pause

import (
	"context"
	"encoding/json"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"

	"github.com/kubehandler/kubehandler"
)

// FieldManager is the field manager DynamicPatch sends its patches as: the
// managedFields of a paused object show it as the writer of its Paused
// condition.
const FieldManager = "kubehandler-pause"

// PatchFunc sends a patch of type pt to the object namespace/name of the
// handler's resource, or to its subresources (the handler uses "status")
// when given. It is kubehandler.PatchFunc, so kubehandler.ClientPatch makes
// one from a typed client, and one function serves a Chain's finalizer and
// this handler:
//
//	pause.New(next, "example.com/paused", kubehandler.ClientPatch(client.ExampleV1().Widgets))
//
// The handler sends JSON merge patches only (types.MergePatchType).
type PatchFunc = kubehandler.PatchFunc

// DynamicPatch returns a PatchFunc that patches objects of resource through
// the dynamic client, as FieldManager: for unstructured objects of any
// custom resource (or of any resource at all).
func DynamicPatch(client dynamic.Interface, resource schema.GroupVersionResource) PatchFunc {
	return func(ctx context.Context, namespace, name string, pt types.PatchType, data []byte, subresources ...string) error {
		_, err := client.Resource(resource).Namespace(namespace).Patch(ctx, name, pt, data,
			metav1.PatchOptions{FieldManager: FieldManager}, subresources...)
		return err
	}
}

// conditionsPatch returns a JSON merge patch of the status subresource that
// sets obj's status conditions to conds (removes the field when conds is
// empty), carrying obj's resourceVersion.
//
// A merge patch replaces a list as a whole, so on its own it would undo a
// change another writer made to the conditions since obj was read. The
// resourceVersion makes the patch conditional: the apiserver refuses it
// with a Conflict if the object changed in between, and the handler's
// error sends the event back through the loop, which retries it with the
// informer's newer object. The handler writes only when the condition is
// missing or wrong, once per pause or resume, so these conflicts are rare
// and never a storm. (Server-side apply would merge by condition type only
// where the CRD declares status.conditions a map list, and could not remove
// a Paused condition another field manager set.)
func conditionsPatch(obj metav1.Object, conds []interface{}) ([]byte, error) {
	var list interface{}
	if len(conds) > 0 {
		list = conds
	}
	patch := map[string]interface{}{
		"status": map[string]interface{}{"conditions": list},
	}
	if rv := obj.GetResourceVersion(); rv != "" {
		patch["metadata"] = map[string]interface{}{"resourceVersion": rv}
	}
	return json.Marshal(patch)
}

// labelPatch returns a JSON merge patch that sets one label, leaving the
// others as they are (a merge patch merges maps key by key).
func labelPatch(key, value string) ([]byte, error) {
	return json.Marshal(map[string]interface{}{
		"metadata": map[string]interface{}{"labels": map[string]string{key: value}},
	})
}
