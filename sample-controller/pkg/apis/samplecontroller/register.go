// Package samplecontroller holds the API group of the sample controller's
// custom resources. Its versions are in the subpackages.
package samplecontroller

// GroupName is the API group of Foo. hack/rename.sh rewrites it (and every
// other mention of the group) when you copy the sample controller.
const GroupName = "samplecontroller.kubehandler.dev"
