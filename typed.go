package kubehandler

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
)

// TypedHandler is an EventHandler (and so a Step of a Chain) that hands its
// functions the object itself, typed, instead of its namespace and name:
//
//	h := &kubehandler.TypedHandler[*appsv1.Deployment]{
//		DefaultHandler: kubehandler.DefaultHandler{Name: "deployments", Informer: deploymentInformer.Informer()},
//		Sync: func(ctx context.Context, d *appsv1.Deployment) error { ... },
//	}
//
// T is the pointer type the informer stores: a typed object such as
// *appsv1.Deployment, or *unstructured.Unstructured for a dynamic informer.
//
// The object is the call's Event.Object (EventFromContext): for an add or
// update the newest object seen, for a delete its final state (from a
// tombstone when the informer missed the deletion). When the event carries
// no object (a WorkQueue given a bare key), it is looked up with Get, or
// else in the informer's store. An add or update whose object neither has is
// skipped: the object is gone and its delete follows. A delete without a
// final state cannot be handed to Delete and is a Terminal error, as is an
// object that is not a T.
//
// Objects handed out come from the informer's cache and are shared with
// every other user of it: do not mutate them; DeepCopy first. The library
// itself never mutates them.
type TypedHandler[T runtime.Object] struct {
	DefaultHandler

	// Sync is called for adds and updates (EventFromContext tells which).
	// In a Chain, it is not called for objects being deleted: Delete is.
	// Nil means nothing to do.
	Sync func(ctx context.Context, obj T) error

	// Delete is called with the final state of a deleted object, and, in a
	// Chain, with an object being deleted. Nil means nothing to do.
	Delete func(ctx context.Context, obj T) error

	// Get, if set, looks an object up when the event carries none, for
	// example from a lister:
	//
	//	Get: func(namespace, name string) (*appsv1.Deployment, error) {
	//		return lister.Deployments(namespace).Get(name)
	//	}
	//
	// A NotFound error means the object does not exist. Without Get, the
	// informer's store is used.
	Get func(namespace, name string) (T, error)
}

var _ EventHandler = (*TypedHandler[runtime.Object])(nil)

// AddFunc calls Sync with the object.
func (h *TypedHandler[T]) AddFunc(ctx context.Context, namespace, name string) error {
	return h.sync(ctx, namespace, name)
}

// UpdateFunc calls Sync with the object.
func (h *TypedHandler[T]) UpdateFunc(ctx context.Context, namespace, name string) error {
	return h.sync(ctx, namespace, name)
}

// DeleteFunc calls Delete with the object's final state.
func (h *TypedHandler[T]) DeleteFunc(ctx context.Context, namespace, name string) error {
	if h.Delete == nil {
		return nil
	}
	obj, found, err := h.object(ctx, namespace, name)
	if err != nil {
		return err
	}
	if !found {
		return Terminal(fmt.Errorf("kubehandler: delete of %s without its final state", objectName(namespace, name)))
	}
	return h.Delete(ctx, obj)
}

func (h *TypedHandler[T]) sync(ctx context.Context, namespace, name string) error {
	if h.Sync == nil {
		return nil
	}
	obj, found, err := h.object(ctx, namespace, name)
	if err != nil {
		return err
	}
	if !found {
		klog.FromContext(ctx).V(4).Info("Object not found; skipped, its delete will follow")
		return nil
	}
	return h.Sync(ctx, obj)
}

// object returns the object namespace/name, as a T.
func (h *TypedHandler[T]) object(ctx context.Context, namespace, name string) (T, bool, error) {
	var zero T
	var obj interface{}
	var found bool
	var err error
	if h.Get != nil {
		obj, found, err = lookupWith(ctx, namespace, name, func() (interface{}, bool, error) {
			obj, err := h.Get(namespace, name)
			if apierrors.IsNotFound(err) {
				return nil, false, nil
			}
			return obj, err == nil, err
		})
	} else {
		obj, found, err = lookup(ctx, informerStore(h.Informer), namespace, name)
	}
	if err != nil || !found {
		return zero, false, err
	}
	t, ok := obj.(T)
	if !ok {
		return zero, false, Terminal(fmt.Errorf("kubehandler: %s is a %T, the handler takes %T", objectName(namespace, name), obj, zero))
	}
	return t, true, nil
}

// lookup returns the object namespace/name: the Event.Object of the call
// whose context is ctx, if that call is for this object, else the one in
// store (which may be nil).
func lookup(ctx context.Context, store cache.Store, namespace, name string) (interface{}, bool, error) {
	return lookupWith(ctx, namespace, name, func() (interface{}, bool, error) {
		if store == nil {
			return nil, false, nil
		}
		return store.GetByKey(objectName(namespace, name))
	})
}

// lookupWith returns the Event.Object of the call whose context is ctx, if
// that call is for the object namespace/name and carries one; else what get
// finds, except for a delete, whose final state the event alone can tell (a
// same-named object may exist by now).
func lookupWith(ctx context.Context, namespace, name string, get func() (interface{}, bool, error)) (interface{}, bool, error) {
	if ev, ok := EventFromContext(ctx); ok && ev.Key.Namespace == namespace && ev.Key.Name == name {
		if ev.Object != nil {
			return ev.Object, true, nil
		}
		if ev.Type == WorkqueueDeleteEvent {
			return nil, false, nil
		}
	}
	return get()
}

// informerStore returns informer's store, or nil without an informer.
func informerStore(informer cache.SharedInformer) cache.Store {
	if informer == nil {
		return nil
	}
	return informer.GetStore()
}

// objectName returns the store key of namespace/name: "namespace/name", or
// "name" when cluster-scoped.
func objectName(namespace, name string) string {
	return cache.ObjectName{Namespace: namespace, Name: name}.String()
}
