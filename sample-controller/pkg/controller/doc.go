// Package controller is the sample controller: it keeps, for each Foo, a
// Deployment with the name and replicas of the Foo's spec, and reports in the
// Foo's status what it saw. It is built on kubehandler: handlers registered
// on one EventLoop, each called with the namespace and name of an object.
//
//   - FooHandler (foo.go) creates or updates the Foo's Deployment and
//     writes the Foo's status. It is wrapped by the pause handler
//     (handlers/pause): a Foo labelled PauseLabel is left alone, and its
//     Paused condition says so.
//   - DeploymentHandler (deployment.go) maps a change of a Deployment to
//     the Foo that controls it, so that a Deployment changed by hand is put
//     back and the Foo's status follows the Deployment's.
//   - The cascade handler (handlers/cascade) deletes, when a Foo is deleted,
//     the ConfigMaps labelled DependentLabel=<the Foo's UID> in every
//     namespace, and holds the Foo with the finalizer Finalizer until they
//     are gone: ownerReferences cannot reach across namespaces.
//
// # Ready
//
// A Foo is Ready when its Deployment exists, is controlled by the Foo, has
// the replicas of the Foo's spec, and the Deployment controller has observed
// that generation of the Deployment (status.observedGeneration). Ready does
// not wait for the Pods to be available: status.availableReplicas reports
// them as the Deployment does, and a cluster without nodes (hack/kubelab)
// never runs a Pod. A controller whose users care about available Pods would
// add that to its Ready condition; the rest of this code stays the same.
//
// status.observedGeneration is the Foo's metadata.generation that the
// controller last acted on: while a Foo is paused it falls behind.
package controller
