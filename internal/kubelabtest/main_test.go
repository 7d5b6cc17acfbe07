package kubelabtest

import (
	"testing"
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

func TestMain(m *testing.M) {
	Main(m, Options{ControllerManager: true, CRDs: [][]byte{[]byte(widgetCRD)}})
}
