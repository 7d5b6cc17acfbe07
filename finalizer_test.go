package kubehandler_test

import (
	"context"
	"errors"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubehandler/kubehandler"
)

func TestAddAndRemoveFinalizer(t *testing.T) {
	gr := schema.GroupResource{Resource: "widgets"}
	conflict := apierrors.NewConflict(gr, "w", errors.New("modified"))
	notFound := apierrors.NewNotFound(gr, "w")
	tests := []struct {
		name      string
		remove    bool
		has       []string
		patchErr  error
		wantOK    bool
		wantErr   bool
		wantPatch string // "" when no patch is sent
	}{
		{"add", false, []string{"other"}, nil, true, false, `{"metadata":{"finalizers":["other","ours"],"resourceVersion":"7"}}`},
		{"add present", false, []string{"ours"}, nil, true, false, ""},
		{"add conflicts: the next event adds it", false, nil, conflict, false, false, `{"metadata":{"finalizers":["ours"],"resourceVersion":"7"}}`},
		{"add to a gone object", false, nil, notFound, false, false, `{"metadata":{"finalizers":["ours"],"resourceVersion":"7"}}`},
		{"add fails", false, nil, errBoom, false, true, `{"metadata":{"finalizers":["ours"],"resourceVersion":"7"}}`},
		{"remove", true, []string{"ours", "other"}, nil, true, false, `{"metadata":{"finalizers":["other"],"resourceVersion":"7"}}`},
		{"remove the last", true, []string{"ours"}, nil, true, false, `{"metadata":{"finalizers":null,"resourceVersion":"7"}}`},
		{"remove absent", true, []string{"other"}, nil, true, false, ""},
		{"remove conflicts", true, []string{"ours"}, conflict, false, false, `{"metadata":{"finalizers":null,"resourceVersion":"7"}}`},
		{"remove from a gone object", true, []string{"ours"}, notFound, true, false, `{"metadata":{"finalizers":null,"resourceVersion":"7"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Spare capacity: an append into it would change the cached
			// object's backing array.
			finalizers := append(make([]string, 0, 4), tt.has...)
			obj := &metav1.ObjectMeta{Namespace: "ns", Name: "w", ResourceVersion: "7", Finalizers: finalizers}
			cached := append([]string(nil), finalizers...)
			var sent string
			patch := func(_ context.Context, namespace, name string, pt types.PatchType, data []byte, _ ...string) error {
				if namespace != "ns" || name != "w" || pt != types.MergePatchType {
					t.Errorf("patch of %s/%s, type %s", namespace, name, pt)
				}
				sent = string(data)
				return tt.patchErr
			}
			f := kubehandler.AddFinalizer
			if tt.remove {
				f = kubehandler.RemoveFinalizer
			}
			ok, err := f(t.Context(), patch, obj, "ours")
			if ok != tt.wantOK || (err != nil) != tt.wantErr {
				t.Errorf("= %v, %v; want %v, error %v", ok, err, tt.wantOK, tt.wantErr)
			}
			if sent != tt.wantPatch {
				t.Errorf("patch %s, want %s", sent, tt.wantPatch)
			}
			full := finalizers[:cap(finalizers)]
			for i, f := range cached {
				if full[i] != f {
					t.Errorf("the object's finalizers were changed: %v, were %v", obj.Finalizers, cached)
				}
			}
			if len(full) > len(cached) && full[len(cached)] != "" {
				t.Errorf("something was written past the object's finalizers: %q", full[len(cached)])
			}
		})
	}
}
