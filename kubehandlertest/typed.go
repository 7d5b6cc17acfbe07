package kubehandlertest

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TypedSource is a Source of objects of type T (a pointer type such as
// *corev1.ConfigMap, or *unstructured.Unstructured): Create, Update and Get
// take and return T, and Example is what an informer of it expects.
// Everything else is the embedded Source's.
type TypedSource[T runtime.Object] struct {
	*Source
	example T
}

// NewTypedSource returns an empty Source of T whose List returns the list
// type newList makes, for example
//
//	kubehandlertest.NewTypedSource[*appsv1.Deployment](func() runtime.Object { return &appsv1.DeploymentList{} })
func NewTypedSource[T runtime.Object](newList func() runtime.Object) *TypedSource[T] {
	return &TypedSource[T]{Source: NewSource(newList)}
}

// NewConfigMapSource returns an empty Source of ConfigMaps.
func NewConfigMapSource() *TypedSource[*corev1.ConfigMap] {
	return &TypedSource[*corev1.ConfigMap]{
		Source:  NewSource(func() runtime.Object { return &corev1.ConfigMapList{} }),
		example: &corev1.ConfigMap{},
	}
}

// NewUnstructuredSource returns an empty Source of unstructured objects of
// kind gvk (a custom resource, say). Create and Update set the apiVersion
// and kind of objects that have none, and Lists are of gvk.Kind + "List".
func NewUnstructuredSource(gvk schema.GroupVersionKind) *TypedSource[*unstructured.Unstructured] {
	example := &unstructured.Unstructured{}
	example.SetGroupVersionKind(gvk)
	return &TypedSource[*unstructured.Unstructured]{
		Source: NewSource(func() runtime.Object {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
			return list
		}),
		example: example,
	}
}

// Create stores obj as a new object; see Source.Create.
func (s *TypedSource[T]) Create(obj T) string {
	return s.Source.Create(s.withKind(obj))
}

// Update stores obj as the newest state of its object; see Source.Update.
func (s *TypedSource[T]) Update(obj T) string {
	return s.Source.Update(s.withKind(obj))
}

// Get returns the stored object named namespace/name; see Source.Get.
func (s *TypedSource[T]) Get(namespace, name string) (T, bool) {
	obj, ok := s.Source.Get(namespace, name)
	if !ok {
		var zero T
		return zero, false
	}
	typed, ok := obj.(T)
	if !ok {
		panic(fmt.Sprintf("kubehandlertest: the Source holds a %T, not a %T", obj, typed))
	}
	return typed, true
}

// Example returns an object of T for an informer's objectType (NewInformer
// does without): a typed nil pointer for typed objects, which is enough for
// client-go, and an object of the Source's kind for unstructured ones.
func (s *TypedSource[T]) Example() T {
	return s.example
}

// withKind sets the apiVersion and kind of an unstructured object that has
// none.
func (s *TypedSource[T]) withKind(obj T) runtime.Object {
	if u, ok := any(obj).(*unstructured.Unstructured); ok && u.GetKind() == "" {
		if ex, ok := any(s.example).(*unstructured.Unstructured); ok && ex != nil {
			u.SetGroupVersionKind(ex.GroupVersionKind())
		}
	}
	return obj
}
