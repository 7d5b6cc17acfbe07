// Package v1alpha1 is version v1alpha1 of the samplecontroller.kubehandler.dev
// API group: the Foo custom resource. The clientset, listers and informers
// under pkg/generated and zz_generated.deepcopy.go are generated from these
// types by hack/update-codegen.sh; edit the types, then run it.
//
// +k8s:deepcopy-gen=package
// +groupName=samplecontroller.kubehandler.dev
// +groupGoName=Samplecontroller
package v1alpha1
