package kubehandlertest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
)

// FakeClient is what client-go's fake clientsets have in common
// (k8s.io/client-go/kubernetes/fake, dynamic/fake, and the fake clientsets
// that client-gen generates): they embed k8s.io/client-go/testing.Fake.
type FakeClient interface {
	PrependReactor(verb, resource string, reaction k8stesting.ReactionFunc)
	PrependWatchReactor(resource string, reaction k8stesting.WatchReactionFunc)
}

// Serve makes client answer every request for resource (a plural name such
// as "deployments") from the Source, as the API server would, so that what
// a handler writes through the fake clientset reaches the informers over
// the Source, and a write based on a stale cache fails as it would on a
// cluster. The fake's own object tracker is not used for resource.
//
// What the API server does, and Serve does too:
//   - resourceVersions: every write gets a new one; an update or patch
//     whose object carries an older one fails with a Conflict; a create of
//     an object that has one is refused (BadRequest).
//   - create: AlreadyExists; generateName; the namespace from the request;
//     uid and creationTimestamp set; status dropped.
//   - the status subresource: an update (or patch) of "status" changes
//     only the status; an update of the object keeps the stored status.
//   - metadata.generation: 1 on create, and one more each time the spec
//     changes, for objects that have a spec.
//   - delete: NotFound; preconditions (uid, resourceVersion) fail with a
//     Conflict; an object with finalizers gets a deletionTimestamp instead,
//     and goes once an update or patch removes its last finalizer.
//   - patch: JSON patch, merge patch, and strategic merge patch for typed
//     objects (not unstructured, as for custom resources).
//   - list and watch: of a namespace or all; label selectors, and field
//     selectors on metadata.name and metadata.namespace. A watch of a
//     label selector sees an object that leaves it as deleted.
//
// What it does not do: server-side apply, subresources other than status,
// admission, validation, defaulting, garbage collection (a foreground delete
// is an ordinary delete), and deletecollection.
func (s *Source) Serve(client FakeClient, resource string) {
	client.PrependReactor("*", resource, s.react)
	client.PrependWatchReactor(resource, s.reactWatch)
}

func (s *Source) react(action k8stesting.Action) (bool, runtime.Object, error) {
	gr := action.GetResource().GroupResource()
	if sub := action.GetSubresource(); sub != "" && sub != "status" {
		return true, nil, apierrors.NewBadRequest(fmt.Sprintf("kubehandlertest: the subresource %s of %s is not served", sub, gr))
	}
	// By verb: the action interfaces overlap (a DeleteAction is a GetAction).
	switch action.GetVerb() {
	case "get":
		a := action.(k8stesting.GetAction)
		obj, ok := s.Get(a.GetNamespace(), a.GetName())
		if !ok {
			return true, nil, apierrors.NewNotFound(gr, a.GetName())
		}
		return true, obj.DeepCopyObject(), nil
	case "list":
		a := action.(k8stesting.ListAction)
		keep, err := selection(a.GetNamespace(), a.GetListRestrictions().Labels, a.GetListRestrictions().Fields)
		if err != nil {
			return true, nil, err
		}
		list, err := s.list(keep)
		if err != nil {
			return true, nil, err
		}
		return true, list.DeepCopyObject(), nil
	case "create":
		if action.GetSubresource() != "" {
			return true, nil, apierrors.NewMethodNotSupported(gr, "create "+action.GetSubresource())
		}
		a := action.(k8stesting.CreateAction)
		obj, err := s.serveCreate(gr, a.GetNamespace(), a.GetObject())
		return true, obj, err
	case "update":
		a := action.(k8stesting.UpdateAction)
		obj, err := s.serveUpdate(gr, a.GetNamespace(), a.GetSubresource(), a.GetObject())
		return true, obj, err
	case "patch":
		obj, err := s.servePatch(gr, action.(k8stesting.PatchAction))
		return true, obj, err
	case "delete":
		a := action.(k8stesting.DeleteAction)
		return true, nil, s.serveDelete(gr, a.GetNamespace(), a.GetName(), a.GetDeleteOptions().Preconditions)
	}
	return true, nil, apierrors.NewMethodNotSupported(gr, action.GetVerb())
}

func (s *Source) reactWatch(action k8stesting.Action) (bool, watch.Interface, error) {
	a, ok := action.(k8stesting.WatchAction)
	if !ok {
		return true, nil, apierrors.NewBadRequest(fmt.Sprintf("kubehandlertest: a watch action of type %T", action))
	}
	r := a.GetWatchRestrictions()
	keep, err := selection(a.GetNamespace(), r.Labels, r.Fields)
	if err != nil {
		return true, nil, err
	}
	w, err := s.watch(r.ResourceVersion, keep)
	return true, w, err
}

// selection returns whether an object is in the namespace (all if "") and
// matches the selectors (nil selects everything).
func selection(namespace string, ls labels.Selector, fs fields.Selector) (func(runtime.Object) bool, error) {
	if ls == nil {
		ls = labels.Everything()
	}
	if fs == nil {
		fs = fields.Everything()
	}
	for _, r := range fs.Requirements() {
		if r.Field != "metadata.name" && r.Field != "metadata.namespace" {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("kubehandlertest: field selectors on %s are not served", r.Field))
		}
	}
	return func(obj runtime.Object) bool {
		m := mustAccessor(obj)
		return (namespace == "" || m.GetNamespace() == namespace) &&
			ls.Matches(labels.Set(m.GetLabels())) &&
			fs.Matches(fields.Set{"metadata.name": m.GetName(), "metadata.namespace": m.GetNamespace()})
	}, nil
}

func (s *Source) serveCreate(gr schema.GroupResource, namespace string, in runtime.Object) (runtime.Object, error) {
	obj := in.DeepCopyObject()
	m := mustAccessor(obj)
	switch {
	case m.GetNamespace() == "":
		m.SetNamespace(namespace)
	case namespace != "" && m.GetNamespace() != namespace:
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the namespace of the object (%s) does not match the namespace of the request (%s)", m.GetNamespace(), namespace))
	}
	if m.GetResourceVersion() != "" {
		return nil, apierrors.NewBadRequest("resourceVersion should not be set on objects to be created")
	}
	if m.GetName() == "" && m.GetGenerateName() != "" {
		m.SetName(m.GetGenerateName() + rand.String(5))
	}
	if m.GetName() == "" {
		return nil, apierrors.NewBadRequest("name or generateName is required")
	}
	m.SetUID("") // the server picks it
	m.SetCreationTimestamp(metav1.Now())
	m.SetDeletionTimestamp(nil)
	content, err := toMap(obj)
	if err != nil {
		return nil, err
	}
	delete(content, "status")
	if _, ok := content["spec"]; ok {
		_ = unstructured.SetNestedField(content, int64(1), "metadata", "generation")
	}
	if obj, err = fromMap(content, obj); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.storeLocked(watch.Added, obj, gr); err != nil {
		return nil, err
	}
	return obj.DeepCopyObject(), nil
}

// serveUpdate stores in as the new state of its object, or of the
// object's status if subresource is "status".
func (s *Source) serveUpdate(gr schema.GroupResource, namespace, subresource string, in runtime.Object) (runtime.Object, error) {
	m := mustAccessor(in)
	if m.GetNamespace() != "" && namespace != "" && m.GetNamespace() != namespace {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the namespace of the object (%s) does not match the namespace of the request (%s)", m.GetNamespace(), namespace))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.updateLocked(gr, cache.ObjectName{Namespace: namespace, Name: m.GetName()}, subresource, func(runtime.Object) (runtime.Object, error) {
		return in, nil
	})
}

func (s *Source) servePatch(gr schema.GroupResource, a k8stesting.PatchAction) (runtime.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := cache.ObjectName{Namespace: a.GetNamespace(), Name: a.GetName()}
	return s.updateLocked(gr, key, a.GetSubresource(), func(old runtime.Object) (runtime.Object, error) {
		return patch(old, a.GetPatchType(), a.GetPatch())
	})
}

// updateLocked replaces the object key by what change makes of it, with the
// API server's rules (see Serve). s.mu must be held.
func (s *Source) updateLocked(gr schema.GroupResource, key cache.ObjectName, subresource string, change func(old runtime.Object) (runtime.Object, error)) (runtime.Object, error) {
	old, ok := s.objects[key]
	if !ok {
		return nil, apierrors.NewNotFound(gr, key.Name)
	}
	in, err := change(old.DeepCopyObject())
	if err != nil {
		return nil, err
	}
	if rv := mustAccessor(in).GetResourceVersion(); rv != "" && rv != mustAccessor(old).GetResourceVersion() {
		return nil, apierrors.NewConflict(gr, key.Name, errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	}
	oldContent, err := toMap(old)
	if err != nil {
		return nil, err
	}
	inContent, err := toMap(in)
	if err != nil {
		return nil, err
	}
	var content map[string]any
	if subresource == "status" {
		// Only the status changes.
		content = runtime.DeepCopyJSON(oldContent)
		setOrDelete(content, inContent, "status")
	} else {
		// Everything but the status, and the metadata the server owns.
		content = inContent
		setOrDelete(content, oldContent, "status")
		oldMeta, _ := oldContent["metadata"].(map[string]any)
		newMeta, _ := content["metadata"].(map[string]any)
		if newMeta == nil {
			newMeta = map[string]any{}
			content["metadata"] = newMeta
		}
		for _, f := range []string{"namespace", "name", "uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"} {
			setOrDelete(newMeta, oldMeta, f)
		}
		if spec, ok := content["spec"]; ok && !equality.Semantic.DeepEqual(spec, oldContent["spec"]) {
			generation, _, _ := unstructured.NestedInt64(content, "metadata", "generation")
			_ = unstructured.SetNestedField(content, generation+1, "metadata", "generation")
		}
	}
	obj, err := fromMap(content, old)
	if err != nil {
		return nil, err
	}
	m := mustAccessor(obj)
	if m.GetDeletionTimestamp() != nil && len(m.GetFinalizers()) == 0 {
		// The last finalizer is gone: so is the object.
		s.deleteLocked(key)
		return obj, nil
	}
	if _, err := s.storeLocked(watch.Modified, obj, gr); err != nil {
		return nil, err
	}
	return obj.DeepCopyObject(), nil
}

func (s *Source) serveDelete(gr schema.GroupResource, namespace, name string, pre *metav1.Preconditions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := cache.ObjectName{Namespace: namespace, Name: name}
	old, ok := s.objects[key]
	if !ok {
		return apierrors.NewNotFound(gr, name)
	}
	m := mustAccessor(old)
	if pre != nil {
		if pre.UID != nil && *pre.UID != m.GetUID() {
			return apierrors.NewConflict(gr, name, fmt.Errorf("precondition failed: UID in precondition: %v, UID in object meta: %v", *pre.UID, m.GetUID()))
		}
		if pre.ResourceVersion != nil && *pre.ResourceVersion != m.GetResourceVersion() {
			return apierrors.NewConflict(gr, name, fmt.Errorf("precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *pre.ResourceVersion, m.GetResourceVersion()))
		}
	}
	if len(m.GetFinalizers()) == 0 {
		s.deleteLocked(key)
		return nil
	}
	if m.GetDeletionTimestamp() != nil {
		return nil // already being deleted
	}
	obj := old.DeepCopyObject()
	now := metav1.Now()
	mustAccessor(obj).SetDeletionTimestamp(&now)
	_, err := s.storeLocked(watch.Modified, obj, gr)
	return err
}

// patch applies a patch of type pt to a copy of obj.
func patch(obj runtime.Object, pt types.PatchType, data []byte) (runtime.Object, error) {
	original, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	var patched []byte
	switch pt {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(data)
		if err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		if patched, err = p.Apply(original); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
	case types.MergePatchType:
		if patched, err = jsonpatch.MergePatch(original, data); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
	case types.StrategicMergePatchType:
		if _, ok := obj.(runtime.Unstructured); ok {
			return nil, apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", schema.GroupResource{}, "", "kubehandlertest: patch type "+string(pt)+" is not served", 0, false)
		}
		if patched, err = strategicpatch.StrategicMergePatch(original, data, obj); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
	default:
		return nil, apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", schema.GroupResource{}, "", "kubehandlertest: patch type "+string(pt)+" is not served", 0, false)
	}
	out := newLike(obj)
	if err := json.Unmarshal(patched, out); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return out, nil
}

// toMap returns obj's content as JSON-like maps (a copy).
func toMap(obj runtime.Object) (map[string]any, error) {
	if u, ok := obj.(runtime.Unstructured); ok {
		return runtime.DeepCopyJSON(u.UnstructuredContent()), nil
	}
	return runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
}

// fromMap returns an object of like's type with content.
func fromMap(content map[string]any, like runtime.Object) (runtime.Object, error) {
	out := newLike(like)
	if u, ok := out.(runtime.Unstructured); ok {
		u.SetUnstructuredContent(content)
		return out, nil
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(content, out); err != nil {
		return nil, err
	}
	return out, nil
}

// newLike returns a new, empty object of obj's type.
func newLike(obj runtime.Object) runtime.Object {
	return reflect.New(reflect.TypeOf(obj).Elem()).Interface().(runtime.Object)
}

// setOrDelete sets dst[field] to src[field], or deletes it if src has none.
func setOrDelete(dst, src map[string]any, field string) {
	if v, ok := src[field]; ok {
		dst[field] = v
	} else {
		delete(dst, field)
	}
}
