package kubelabtest

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// widgetCRD is a namespaced custom resource with a free-form schema.
const widgetCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.kubelab.example.com
spec:
  group: kubelab.example.com
  scope: Namespaced
  names:
    kind: Widget
    listKind: WidgetList
    plural: widgets
    singular: widget
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
`

// setupConfigMap is created by Setup, before the tests.
const setupConfigMap = "kubelabtest-setup"

func TestMain(m *testing.M) {
	Main(m, Options{
		ControllerManager: true,
		CRDs:              [][]byte{[]byte(widgetCRD)},
		Setup: func(ctx context.Context, lab *Lab) error {
			_, err := lab.Client().CoreV1().ConfigMaps(metav1.NamespaceDefault).Create(ctx,
				&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: setupConfigMap}}, metav1.CreateOptions{})
			return err
		},
	})
}
