package kubehandler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
)

func TestObjectKey(t *testing.T) {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "system:node:a"}}
	u := &unstructured.Unstructured{}
	u.SetNamespace("ns")
	u.SetName("u")
	tests := []struct {
		name    string
		obj     interface{}
		ns, n   string
		object  interface{}
		wantErr bool
	}{
		{"typed", pod, "ns", "p", pod, false},
		{"cluster-scoped with colons", node, "", "system:node:a", node, false},
		{"unstructured", u, "ns", "u", u, false},
		{"tombstone with object", cache.DeletedFinalStateUnknown{Key: "ns/p", Obj: pod}, "ns", "p", pod, false},
		{"tombstone without object", cache.DeletedFinalStateUnknown{Key: "ns/p"}, "ns", "p", nil, false},
		{"object name", cache.ObjectName{Namespace: "ns", Name: "x"}, "ns", "x", nil, false},
		{"explicit key", cache.ExplicitKey("ns/x"), "ns", "x", nil, false},
		{"string key", "ns/system:x", "ns", "system:x", nil, false},
		{"cluster-scoped string key", "x", "", "x", nil, false},
		{"bad key", "a/b/c", "", "", nil, true},
		{"nil", nil, "", "", nil, true},
		{"no metadata", 42, "", "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, n, object, err := objectKey(tt.obj)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if ns != tt.ns || n != tt.n || object != tt.object {
				t.Errorf("objectKey = %q, %q, %v; want %q, %q, %v", ns, n, object, tt.ns, tt.n, tt.object)
			}
		})
	}
}
