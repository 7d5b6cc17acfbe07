package controller

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	appslisters "k8s.io/client-go/listers/apps/v1"

	"github.com/kubehandler/kubehandler"
	samplev1alpha1 "github.com/kubehandler/kubehandler/sample-controller/pkg/apis/samplecontroller/v1alpha1"
	listers "github.com/kubehandler/kubehandler/sample-controller/pkg/generated/listers/samplecontroller/v1alpha1"
)

// DeploymentHandler maps a change of a Deployment (created, updated, deleted)
// to the Foo that controls it, and queues that Foo for the Foo handler
// (kubehandler.Enqueue), which syncs it with the loop's guarantees (one call
// at a time per Foo): a Deployment scaled or deleted by hand is put back, and
// the Foo's status follows the Deployment's. Deployments not controlled by a
// Foo are ignored. Its informer is the Deployments' informer.
type DeploymentHandler struct {
	kubehandler.DefaultHandler

	Deployments appslisters.DeploymentLister
	Foos        listers.FooLister
	// FooHandler is the name the Foo handler is registered under.
	FooHandler string
	// Enqueue queues a key for another handler of the loop; nil means
	// kubehandler.Enqueue (tests replace it).
	Enqueue func(ctx context.Context, key kubehandler.Key) (bool, error)
	// Paused reports whether a Foo is paused; a paused Foo's Deployment is
	// left as it is.
	Paused func(foo *samplev1alpha1.Foo) bool
}

var _ kubehandler.EventHandler = (*DeploymentHandler)(nil)

// AddFunc queues the Deployment's Foo.
func (h *DeploymentHandler) AddFunc(ctx context.Context, namespace, name string) error {
	return h.enqueueOwner(ctx, namespace, name)
}

// UpdateFunc queues the Deployment's Foo.
func (h *DeploymentHandler) UpdateFunc(ctx context.Context, namespace, name string) error {
	return h.enqueueOwner(ctx, namespace, name)
}

// DeleteFunc queues the Deployment's Foo, which creates the Deployment again
// unless the Foo is being deleted too.
func (h *DeploymentHandler) DeleteFunc(ctx context.Context, namespace, name string) error {
	return h.enqueueOwner(ctx, namespace, name)
}

var fooGroupKind = schema.GroupKind{Group: samplev1alpha1.SchemeGroupVersion.Group, Kind: "Foo"}

func (h *DeploymentHandler) enqueueOwner(ctx context.Context, namespace, name string) error {
	deployment := h.deployment(ctx, namespace, name)
	if deployment == nil {
		return nil
	}
	ref := metav1.GetControllerOf(deployment)
	if ref == nil {
		return nil
	}
	if gv, err := schema.ParseGroupVersion(ref.APIVersion); err != nil || gv.WithKind(ref.Kind).GroupKind() != fooGroupKind {
		return nil
	}
	foo, err := h.Foos.Foos(namespace).Get(ref.Name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if foo.UID != ref.UID {
		return nil // controlled by an earlier Foo of that name, now gone
	}
	if h.Paused != nil && h.Paused(foo) {
		return nil
	}
	enqueue := h.Enqueue
	if enqueue == nil {
		enqueue = kubehandler.Enqueue
	}
	_, err = enqueue(ctx, kubehandler.Key{Kind: h.FooHandler, Namespace: namespace, Name: foo.Name})
	return err
}

// deployment returns the Deployment of the event being handled: for a
// delete its final state, otherwise the newest one seen.
func (h *DeploymentHandler) deployment(ctx context.Context, namespace, name string) *appsv1.Deployment {
	if ev, ok := kubehandler.EventFromContext(ctx); ok {
		if d, ok := ev.Object.(*appsv1.Deployment); ok {
			return d
		}
	}
	d, err := h.Deployments.Deployments(namespace).Get(name)
	if err != nil {
		return nil
	}
	return d
}
