package kubehandlertest_test

import (
	"context"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/informers"
	kubefake "k8s.io/client-go/kubernetes/fake"
	typedappsv1 "k8s.io/client-go/kubernetes/typed/apps/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"

	"github.com/kubehandler/kubehandler/kubehandlertest"
)

func deployment(name string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, Labels: map[string]string{"app": name}},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
	}
}

// servedDeployments returns a Source of Deployments and the Deployments of
// namespace ns of a fake clientset that it serves.
func servedDeployments() (*kubehandlertest.TypedSource[*appsv1.Deployment], typedappsv1.DeploymentInterface) {
	src := kubehandlertest.NewTypedSource[*appsv1.Deployment](func() runtime.Object { return &appsv1.DeploymentList{} })
	client := kubefake.NewClientset()
	src.Serve(client, "deployments")
	return src, client.AppsV1().Deployments("ns")
}

// Writes through a fake clientset are answered as the API server answers
// them: resourceVersions and conflicts, generation, the status subresource.
func TestServeWrites(t *testing.T) {
	src, deployments := servedDeployments()
	ctx := t.Context()

	in := deployment("d", 1)
	in.Status.Replicas = 5 // dropped on create
	created, err := deployments.Create(ctx, in, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if created.ResourceVersion != "1" || created.Generation != 1 || created.UID == "" || created.CreationTimestamp.IsZero() || created.Status.Replicas != 0 {
		t.Errorf("created: rv %q, generation %d, uid %q, created %v, status %+v", created.ResourceVersion, created.Generation, created.UID, created.CreationTimestamp, created.Status)
	}
	if stored, _ := src.Get("ns", "d"); stored.ResourceVersion != "1" {
		t.Errorf("the Source holds rv %q", stored.ResourceVersion)
	}
	if _, err := deployments.Create(ctx, deployment("d", 1), metav1.CreateOptions{}); !apierrors.IsAlreadyExists(err) {
		t.Errorf("second create: %v, want AlreadyExists", err)
	}
	if _, err := deployments.Create(ctx, created, metav1.CreateOptions{}); !apierrors.IsBadRequest(err) {
		t.Errorf("create with a resourceVersion: %v, want BadRequest", err)
	}

	// An update from a stale copy conflicts; from the newest, it goes.
	stale := created.DeepCopy()
	scaled := created.DeepCopy()
	scaled.Spec.Replicas = ptr.To[int32](3)
	scaled.Status.Replicas = 9 // ignored: the status subresource holds it
	scaled, err = deployments.Update(ctx, scaled, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if scaled.Generation != 2 || scaled.Status.Replicas != 0 || *scaled.Spec.Replicas != 3 {
		t.Errorf("after the update: generation %d, status %+v, replicas %d", scaled.Generation, scaled.Status, *scaled.Spec.Replicas)
	}
	stale.Spec.Replicas = ptr.To[int32](7)
	if _, err := deployments.Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
		t.Errorf("update from a stale copy: %v, want Conflict", err)
	}

	// A status update changes only the status.
	status := scaled.DeepCopy()
	status.Status.ObservedGeneration = 2
	status.Spec.Replicas = ptr.To[int32](8) // ignored
	status, err = deployments.UpdateStatus(ctx, status, metav1.UpdateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if status.Status.ObservedGeneration != 2 || *status.Spec.Replicas != 3 || status.Generation != 2 {
		t.Errorf("after the status update: %+v, replicas %d, generation %d", status.Status, *status.Spec.Replicas, status.Generation)
	}

	if _, err := deployments.Get(ctx, "nothing", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("get of nothing: %v, want NotFound", err)
	}
	if _, err := deployments.Update(ctx, deployment("nothing", 1), metav1.UpdateOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("update of nothing: %v, want NotFound", err)
	}
	err = deployments.Delete(ctx, "d", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr.To(types.UID("other"))}})
	if !apierrors.IsConflict(err) {
		t.Errorf("delete with another UID: %v, want Conflict", err)
	}
	err = deployments.Delete(ctx, "d", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr.To(status.UID), ResourceVersion: ptr.To(status.ResourceVersion)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := src.Get("ns", "d"); ok {
		t.Error("still there after the delete")
	}
}

// An object with finalizers is marked deleted, and goes when the last
// finalizer does; patches of each type apply, with the resourceVersion
// precondition they carry.
func TestServeFinalizersAndPatches(t *testing.T) {
	src, deployments := servedDeployments()
	ctx := t.Context()

	in := deployment("d", 1)
	in.Finalizers = []string{"example.com/a", "example.com/b"}
	if _, err := deployments.Create(ctx, in, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := deployments.Delete(ctx, "d", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	d, ok := src.Get("ns", "d")
	if !ok || d.DeletionTimestamp == nil {
		t.Fatalf("after the delete: %v (exists %v), want it held by its finalizers", d, ok)
	}

	// Strategic merge: finalizers merge, so one is removed with a
	// directive; a label is added.
	_, err := deployments.Patch(ctx, "d", types.StrategicMergePatchType,
		[]byte(`{"metadata":{"labels":{"patched":"yes"},"$deleteFromPrimitiveList/finalizers":["example.com/a"]}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	d, _ = src.Get("ns", "d")
	if d.Labels["patched"] != "yes" || d.Labels["app"] != "d" || !slices.Equal(d.Finalizers, []string{"example.com/b"}) {
		t.Errorf("after the strategic merge patch: labels %v, finalizers %v", d.Labels, d.Finalizers)
	}
	// A merge patch with a stale resourceVersion conflicts.
	_, err = deployments.Patch(ctx, "d", types.MergePatchType,
		[]byte(`{"metadata":{"resourceVersion":"1","finalizers":null}}`), metav1.PatchOptions{})
	if !apierrors.IsConflict(err) {
		t.Errorf("merge patch from resourceVersion 1: %v, want Conflict", err)
	}
	// A JSON patch removes the last finalizer: the object goes.
	_, err = deployments.Patch(ctx, "d", types.JSONPatchType,
		[]byte(`[{"op":"test","path":"/metadata/resourceVersion","value":"`+d.ResourceVersion+`"},{"op":"remove","path":"/metadata/finalizers"}]`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := src.Get("ns", "d"); ok {
		t.Error("still there once its last finalizer is gone")
	}
	if _, err := deployments.Patch(ctx, "d", types.MergePatchType, []byte(`{}`), metav1.PatchOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("patch of a deleted object: %v, want NotFound", err)
	}
}

// An informer factory of the fake clientset lists and watches the Source,
// in a namespace and with a label selector: an object that loses the label
// leaves the informer's cache.
func TestServeInformerFactory(t *testing.T) {
	src := kubehandlertest.NewConfigMapSource()
	client := kubefake.NewClientset()
	src.Serve(client, "configmaps")
	labelled := func(ns, name string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"watched": "yes"}}}
	}
	src.Create(labelled("ns", "a"))
	src.Create(labelled("other", "a"))
	src.Create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "unlabelled"}})

	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace("ns"),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = "watched=yes" }))
	informer := factory.Core().V1().ConfigMaps().Informer()
	d := newDeliveries()
	if _, err := informer.AddEventHandler(d); err != nil {
		t.Fatal(err)
	}
	kubehandlertest.Start(t, idle{}, 1, factory)
	if !cache.WaitForCacheSync(t.Context().Done(), informer.HasSynced) {
		t.Fatal("informer did not sync")
	}
	keys := func() []string {
		k := informer.GetStore().ListKeys()
		slices.Sort(k)
		return k
	}
	if got := keys(); !slices.Equal(got, []string{"ns/a"}) {
		t.Errorf("listed %v, want [ns/a]", got)
	}

	if _, err := client.CoreV1().ConfigMaps("ns").Create(t.Context(), labelled("ns", "b"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	d.until(t, "b, created through the client", func() bool { return slices.Equal(keys(), []string{"ns/a", "ns/b"}) })
	a, _ := src.Get("ns", "a")
	a = a.DeepCopy()
	a.Labels = nil
	src.Update(a)
	d.until(t, "a to leave the selection", func() bool { return slices.Equal(keys(), []string{"ns/b"}) })
	d.mu.Lock()
	deletes := len(d.deletes)
	d.mu.Unlock()
	if deletes != 1 {
		t.Errorf("%d deletes delivered, want 1 (a leaving the selection)", deletes)
	}
}

// idle is a loop that waits for its end: Start runs the factory with it.
type idle struct{}

func (idle) Run(ctx context.Context, _ int) error { <-ctx.Done(); return nil }

// A dynamic fake client served from an unstructured Source: custom
// resources, merge patches, and no strategic merge patch.
func TestServeDynamic(t *testing.T) {
	gvr := schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	src := kubehandlertest.NewUnstructuredSource(gvr.GroupVersion().WithKind("Widget"))
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{gvr: "WidgetList"})
	src.Serve(client, "widgets")
	widgets := client.Resource(gvr).Namespace("ns")
	ctx := t.Context()

	w := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"size": int64(1)}}}
	w.SetAPIVersion("example.com/v1")
	w.SetKind("Widget")
	w.SetGenerateName("w-")
	created, err := widgets.Create(ctx, w, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(created.GetName()) != len("w-")+5 || created.GetGeneration() != 1 || created.GetResourceVersion() == "" {
		t.Errorf("created %s, generation %d, rv %q", created.GetName(), created.GetGeneration(), created.GetResourceVersion())
	}
	patched, err := widgets.Patch(ctx, created.GetName(), types.MergePatchType, []byte(`{"spec":{"size":2}}`), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if size, _, _ := unstructured.NestedInt64(patched.Object, "spec", "size"); size != 2 || patched.GetGeneration() != 2 {
		t.Errorf("after the patch: size %d, generation %d", size, patched.GetGeneration())
	}
	if _, err := widgets.Patch(ctx, created.GetName(), types.StrategicMergePatchType, []byte(`{}`), metav1.PatchOptions{}); err == nil {
		t.Error("a strategic merge patch of a custom resource succeeded")
	}
	list, err := widgets.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.GetResourceVersion() != patched.GetResourceVersion() {
		t.Errorf("list: %d items at rv %s", len(list.Items), list.GetResourceVersion())
	}
}
