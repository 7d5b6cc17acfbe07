package controller

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/kubehandler/kubehandler"
	samplev1alpha1 "github.com/kubehandler/kubehandler/sample-controller/pkg/apis/samplecontroller/v1alpha1"
	"github.com/kubehandler/kubehandler/sample-controller/pkg/generated/clientset/versioned"
	listers "github.com/kubehandler/kubehandler/sample-controller/pkg/generated/listers/samplecontroller/v1alpha1"
)

// FooHandler keeps each Foo's Deployment as the Foo's spec asks and writes
// the Foo's status. Its informer is the Foos' informer.
//
// A deleted Foo needs nothing from it: the Deployment has the Foo as its
// controller owner, so the garbage collector deletes it, and the cascade
// handler deletes the dependent ConfigMaps.
type FooHandler struct {
	kubehandler.DefaultHandler

	KubeClient  kubernetes.Interface
	FooClient   versioned.Interface
	Foos        listers.FooLister
	Deployments appslisters.DeploymentLister
	// Recorder records Kubernetes Events about Foos; nil records none.
	Recorder record.EventRecorder
}

var _ kubehandler.EventHandler = (*FooHandler)(nil)

// AddFunc syncs the Foo.
func (h *FooHandler) AddFunc(ctx context.Context, namespace, name string) error {
	return h.Sync(ctx, namespace, name)
}

// UpdateFunc syncs the Foo.
func (h *FooHandler) UpdateFunc(ctx context.Context, namespace, name string) error {
	return h.Sync(ctx, namespace, name)
}

// Sync makes the Foo namespace/name's Deployment match its spec and writes
// its status. It reads the Foo and the Deployment from the informers' caches
// and writes with their resourceVersions, so a write based on a stale cache
// fails with a conflict instead of undoing a newer change. Such a conflict
// is not a failure: the newer version's event is on its way to this
// controller and will sync the Foo again.
func (h *FooHandler) Sync(ctx context.Context, namespace, name string) error {
	err := h.sync(ctx, namespace, name)
	if apierrors.IsConflict(err) {
		klog.FromContext(ctx).V(4).Info("Cache behind the server; the next event syncs again", "err", err)
		return nil
	}
	return err
}

func (h *FooHandler) sync(ctx context.Context, namespace, name string) error {
	foo, err := h.Foos.Foos(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil // deleted since; the delete is someone else's work
	}
	if err != nil {
		return err
	}
	if foo.DeletionTimestamp != nil {
		return nil // being deleted: nothing to create or report
	}
	logger := klog.FromContext(ctx)

	deployment, err := h.Deployments.Deployments(namespace).Get(foo.Spec.DeploymentName)
	if apierrors.IsNotFound(err) {
		deployment, err = h.KubeClient.AppsV1().Deployments(namespace).Create(ctx, newDeployment(foo), metav1.CreateOptions{})
		if err == nil {
			logger.V(2).Info("Created Deployment", "deployment", klog.KObj(deployment))
			h.event(foo, corev1.EventTypeNormal, "DeploymentCreated", "Created Deployment %s with %d replicas", deployment.Name, replicas(foo))
		}
	}
	if err != nil {
		// AlreadyExists included: the cache has not seen it yet; a retry will.
		return err
	}

	if !metav1.IsControlledBy(deployment, foo) {
		msg := fmt.Sprintf("Deployment %q already exists and is not controlled by this Foo; delete it or choose another spec.deploymentName", deployment.Name)
		h.event(foo, corev1.EventTypeWarning, ReasonDeploymentNotOwned, "%s", msg)
		if err := h.updateStatus(ctx, foo, nil, metav1.Condition{
			Type: ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonDeploymentNotOwned, Message: msg,
		}); err != nil {
			return err
		}
		// Retried with backoff: the Deployment may go away.
		return fmt.Errorf("foo %s: %s", klog.KObj(foo), msg)
	}

	if want := replicas(foo); deployment.Spec.Replicas == nil || *deployment.Spec.Replicas != want {
		logger.V(2).Info("Updating Deployment replicas", "deployment", klog.KObj(deployment), "replicas", want)
		deployment = deployment.DeepCopy()
		deployment.Spec.Replicas = &want
		deployment, err = h.KubeClient.AppsV1().Deployments(namespace).Update(ctx, deployment, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		h.event(foo, corev1.EventTypeNormal, "DeploymentScaled", "Scaled Deployment %s to %d replicas", deployment.Name, want)
	}

	return h.updateStatus(ctx, foo, deployment, readyCondition(foo, deployment))
}

// readyCondition returns the Ready condition of a Foo whose controlled
// Deployment is deployment (see the package doc).
func readyCondition(foo *samplev1alpha1.Foo, deployment *appsv1.Deployment) metav1.Condition {
	want := replicas(foo)
	switch {
	case deployment.Spec.Replicas == nil || *deployment.Spec.Replicas != want:
		return metav1.Condition{Type: ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonDeploymentProgressing,
			Message: fmt.Sprintf("Deployment %q is being scaled to %d replicas", deployment.Name, want)}
	case deployment.Status.ObservedGeneration < deployment.Generation:
		return metav1.Condition{Type: ConditionReady, Status: metav1.ConditionFalse, Reason: ReasonDeploymentProgressing,
			Message: fmt.Sprintf("Deployment %q: waiting for the Deployment controller to observe generation %d", deployment.Name, deployment.Generation)}
	default:
		return metav1.Condition{Type: ConditionReady, Status: metav1.ConditionTrue, Reason: ReasonDeploymentReady,
			Message: fmt.Sprintf("Deployment %q has %d replicas, %d available", deployment.Name, want, deployment.Status.AvailableReplicas)}
	}
}

// updateStatus writes the Foo's status with ready as its Ready condition,
// the Deployment's available replicas (none without a Deployment) and the
// Foo's generation as observed, unless the status is that already. Other
// conditions (Paused) are kept.
func (h *FooHandler) updateStatus(ctx context.Context, foo *samplev1alpha1.Foo, deployment *appsv1.Deployment, ready metav1.Condition) error {
	status := foo.Status.DeepCopy()
	status.ObservedGeneration = foo.Generation
	status.AvailableReplicas = 0
	if deployment != nil {
		status.AvailableReplicas = deployment.Status.AvailableReplicas
	}
	ready.ObservedGeneration = foo.Generation
	meta.SetStatusCondition(&status.Conditions, ready)
	if equality.Semantic.DeepEqual(status, &foo.Status) {
		return nil
	}
	// Objects from the cache are shared: change a copy.
	foo = foo.DeepCopy()
	foo.Status = *status
	_, err := h.FooClient.SamplecontrollerV1alpha1().Foos(foo.Namespace).UpdateStatus(ctx, foo, metav1.UpdateOptions{})
	return err
}

// event records an Event about foo, if the handler has a Recorder. (The
// Foo handler's Sync also runs in the Deployment handler's calls, whose
// object is a Deployment: kubehandler.Eventf would record about that.)
func (h *FooHandler) event(foo *samplev1alpha1.Foo, eventtype, reason, messageFmt string, args ...interface{}) {
	if h.Recorder != nil {
		h.Recorder.Eventf(foo, eventtype, reason, messageFmt, args...)
	}
}

// newDeployment returns the Deployment a Foo asks for, controlled by the Foo.
func newDeployment(foo *samplev1alpha1.Foo) *appsv1.Deployment {
	labels := map[string]string{
		"app.kubernetes.io/name":       "nginx",
		"app.kubernetes.io/managed-by": "sample-controller",
		"app.kubernetes.io/instance":   foo.Name,
	}
	replicas := replicas(foo)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:      foo.Spec.DeploymentName,
			Namespace: foo.Namespace,
			Labels:    labels,
			OwnerReferences: []metav1.OwnerReference{
				*metav1.NewControllerRef(foo, samplev1alpha1.SchemeGroupVersion.WithKind("Foo")),
			},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "nginx", Image: "nginx:latest"}},
				},
			},
		},
	}
}

// replicas returns the replicas the Foo asks for; the CRD requires the
// field, so 1 for a nil one only protects against a panic.
func replicas(foo *samplev1alpha1.Foo) int32 {
	if foo.Spec.Replicas == nil {
		return 1
	}
	return *foo.Spec.Replicas
}
