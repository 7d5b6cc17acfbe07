package controller

import (
	"github.com/kubehandler/kubehandler/sample-controller/pkg/apis/samplecontroller"
)

// Labels, the finalizer, and the condition types and reasons of Foos.
const (
	// PauseLabel pauses a Foo while it is present (its value is ignored):
	// the controller no longer changes the Foo's Deployment.
	PauseLabel = samplecontroller.GroupName + "/paused"
	// DependentLabel marks a ConfigMap, in any namespace, as a dependent
	// of the Foo whose UID is the label's value: it is deleted with the Foo.
	DependentLabel = samplecontroller.GroupName + "/foo-uid"
	// Finalizer holds a Foo that is being deleted until its dependent
	// ConfigMaps are gone.
	Finalizer = samplecontroller.GroupName + "/configmaps"

	// ConditionReady is True when the Foo's Deployment is as the Foo's
	// spec asks and the Deployment controller has seen it.
	ConditionReady = "Ready"

	// ReasonDeploymentReady: the Deployment is as the spec asks.
	ReasonDeploymentReady = "DeploymentReady"
	// ReasonDeploymentProgressing: the Deployment was created or changed,
	// and the Deployment controller has not yet observed the change.
	ReasonDeploymentProgressing = "DeploymentProgressing"
	// ReasonDeploymentNotOwned: a Deployment of that name exists and is
	// not controlled by this Foo; the controller leaves it alone.
	ReasonDeploymentNotOwned = "DeploymentNotOwned"
)
