package kubehandler

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
)

// Key identifies one object for one handler. Kind is the handler's name (for
// an EventLoop) or the kind passed to the WorkQueue's Enqueue and Register
// methods; Namespace is empty for cluster-scoped objects.
//
// Key is a comparable struct, never a string to split: names may contain ':'
// (system:node) and namespaces and names are kept apart exactly as the API
// server returned them.
type Key struct {
	Kind      string
	Namespace string
	Name      string
}

// String returns "kind/namespace/name", or "kind/name" when the object is
// cluster-scoped. It is meant for logs and errors; never parse it back.
func (k Key) String() string {
	if k.Namespace == "" {
		return k.Kind + "/" + k.Name
	}
	return k.Kind + "/" + k.Namespace + "/" + k.Name
}

// storeKey returns the key of k's object in an informer's store
// ("namespace/name", or "name" when cluster-scoped).
func (k Key) storeKey() string {
	if k.Namespace == "" {
		return k.Name
	}
	return k.Namespace + "/" + k.Name
}

// objectKey returns the namespace and name of obj, and the object to hand to
// handlers in Event.Object. It accepts what informers deliver (objects with
// metadata, cache.DeletedFinalStateUnknown tombstones, which it unwraps) and
// what kubehandler v2 users passed to WorkQueue (cache.ExplicitKey and plain
// "namespace/name" strings, and cache.ObjectName).
func objectKey(obj interface{}) (namespace, name string, object interface{}, err error) {
	switch o := obj.(type) {
	case metav1.Object:
		return o.GetNamespace(), o.GetName(), obj, nil
	case cache.DeletedFinalStateUnknown:
		if m, ok := o.Obj.(metav1.Object); ok {
			return m.GetNamespace(), m.GetName(), o.Obj, nil
		}
		n, err := cache.DeletionHandlingObjectToName(o)
		return n.Namespace, n.Name, o.Obj, err
	case cache.ObjectName:
		return o.Namespace, o.Name, nil, nil
	case cache.ExplicitKey:
		n, err := cache.ParseObjectName(string(o))
		return n.Namespace, n.Name, nil, err
	case string:
		n, err := cache.ParseObjectName(o)
		return n.Namespace, n.Name, nil, err
	case nil:
		return "", "", nil, fmt.Errorf("kubehandler: cannot key a nil object")
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return "", "", nil, fmt.Errorf("kubehandler: cannot key object of type %T: %w", obj, err)
	}
	return m.GetNamespace(), m.GetName(), obj, nil
}
