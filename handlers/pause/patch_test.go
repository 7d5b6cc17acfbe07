package pause_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubehandler/kubehandler/handlers/pause"
)

// TestDynamicPatch: the PatchFunc for the dynamic client patches the status
// subresource of the object of the resource it was made for, as
// FieldManager.
func TestDynamicPatch(t *testing.T) {
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{widgets: "WidgetList"}, widget("w", nil))
	patchStatus := pause.DynamicPatch(client, widgets)

	err := patchStatus(t.Context(), "ns", "w", types.MergePatchType,
		[]byte(`{"status":{"conditions":[{"type":"Paused","status":"True"}]}}`), "status")
	if err != nil {
		t.Fatal(err)
	}

	actions := client.Actions()
	if len(actions) != 1 {
		t.Fatalf("%d actions, want 1", len(actions))
	}
	p, ok := actions[0].(k8stesting.PatchActionImpl)
	if !ok {
		t.Fatalf("action %T, want a patch", actions[0])
	}
	if p.GetResource() != widgets || p.GetNamespace() != "ns" || p.GetName() != "w" ||
		p.GetSubresource() != "status" || p.GetPatchType() != types.MergePatchType || p.PatchOptions.FieldManager != pause.FieldManager {
		t.Errorf("patch %s %s/%s/%s type %s manager %q", p.GetResource(), p.GetNamespace(), p.GetName(),
			p.GetSubresource(), p.GetPatchType(), p.PatchOptions.FieldManager)
	}
	got, err := client.Resource(widgets).Namespace("ns").Get(t.Context(), "w", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	conds, _, _ := unstructured.NestedSlice(got.Object, "status", "conditions")
	want := []interface{}{map[string]interface{}{"type": "Paused", "status": "True"}}
	if diff := cmp.Diff(want, conds); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
}
