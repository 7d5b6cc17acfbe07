package kubehandler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestIsResync(t *testing.T) {
	withRV := func(rv string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a", ResourceVersion: rv}}
	}
	unstructuredRV := func(rv string) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetResourceVersion(rv)
		return u
	}
	tests := []struct {
		name     string
		old, new interface{}
		want     bool
	}{
		{"typed same", withRV("5"), withRV("5"), true},
		{"typed changed", withRV("5"), withRV("6"), false},
		{"unstructured same", unstructuredRV("5"), unstructuredRV("5"), true},
		{"unstructured changed", unstructuredRV("5"), unstructuredRV("6"), false},
		{"no resourceVersion", withRV(""), withRV(""), false},
		{"not objects", "a", "a", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isResync(tt.old, tt.new); got != tt.want {
				t.Errorf("isResync = %v, want %v", got, tt.want)
			}
		})
	}
}
