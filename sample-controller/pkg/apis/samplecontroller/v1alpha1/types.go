package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Foo asks for a Deployment with a name and a number of replicas. The
// controller creates it, owned by the Foo, keeps its replicas as the Foo
// says, and reports in the Foo's status.
//
// +genclient
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type Foo struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   FooSpec   `json:"spec"`
	Status FooStatus `json:"status,omitempty"`
}

// FooSpec is what the user asks for.
type FooSpec struct {
	// DeploymentName is the name of the Deployment to create, in the Foo's
	// namespace.
	DeploymentName string `json:"deploymentName"`
	// Replicas is the number of replicas of the Deployment.
	Replicas *int32 `json:"replicas"`
}

// FooStatus is what the controller last saw.
type FooStatus struct {
	// AvailableReplicas is the Deployment's status.availableReplicas.
	AvailableReplicas int32 `json:"availableReplicas"`
	// ObservedGeneration is the metadata.generation of the Foo the
	// controller last acted on: when it equals metadata.generation, the
	// status describes the current spec.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions are the Foo's conditions: Ready (the Deployment exists,
	// has the replicas asked for, and the Deployment controller has seen
	// that), and Paused (set while the Foo carries the pause label).
	//
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// FooList is a list of Foos.
//
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type FooList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata"`

	Items []Foo `json:"items"`
}

// GetConditions returns the Foo's status conditions. It lets kubehandler's
// pause handler read them (pause.HasConditions).
func (f *Foo) GetConditions() []metav1.Condition { return f.Status.Conditions }
