package cascade_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehandler/kubehandler/handlers/cascade"
)

const (
	uidLabel  = "example.com/project-uid"
	nameLabel = "example.com/project"
	finalizer = "example.com/dependents"
)

var (
	configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	projects   = schema.GroupVersionResource{Group: "test.kubehandler.dev", Version: "v1", Resource: "projects"}
	listKinds  = map[schema.GroupVersionResource]string{configMaps: "ConfigMapList", projects: "ProjectList"}
)

// project returns the upstream Project a/p (UID uid-p, resourceVersion 5)
// with finalizers, being deleted if deleting.
func project(deleting bool, finalizers ...string) *unstructured.Unstructured {
	p := &unstructured.Unstructured{}
	p.SetAPIVersion("test.kubehandler.dev/v1")
	p.SetKind("Project")
	p.SetNamespace("a")
	p.SetName("p")
	p.SetUID("uid-p")
	p.SetResourceVersion("5")
	p.SetFinalizers(finalizers)
	if deleting {
		p.SetDeletionTimestamp(&metav1.Time{Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
	}
	return p
}

// dep returns a ConfigMap ns/name, UID uid-ns-name, with labels.
func dep(ns, name string, labels map[string]string) *unstructured.Unstructured {
	cm := &unstructured.Unstructured{}
	cm.SetAPIVersion("v1")
	cm.SetKind("ConfigMap")
	cm.SetNamespace(ns)
	cm.SetName(name)
	cm.SetUID(types.UID("uid-" + ns + "-" + name))
	cm.SetLabels(labels)
	return cm
}

// world is the usual set of ConfigMaps: dependents of a/p by UID and by
// name in namespaces a, b and c, and objects that are not.
func world() []runtime.Object {
	return []runtime.Object{
		dep("a", "byuid", map[string]string{uidLabel: "uid-p"}),
		dep("a", "byname", map[string]string{nameLabel: "p"}),
		dep("a", "other", map[string]string{uidLabel: "uid-other", nameLabel: "q"}),
		dep("a", "plain", nil),
		dep("b", "byuid", map[string]string{uidLabel: "uid-p"}),
		dep("b", "plain", map[string]string{"app": "x"}),
		dep("c", "byuid", map[string]string{uidLabel: "uid-p"}),
		dep("c", "byname", map[string]string{nameLabel: "p"}),
	}
}

func newClient(objs ...runtime.Object) *dynamicfake.FakeDynamicClient {
	return dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds, objs...)
}

// upstreamInformer returns an informer, not started, whose store holds objs:
// where a handler called outside a loop finds its upstream object.
func upstreamInformer(t *testing.T, objs ...*unstructured.Unstructured) cache.SharedIndexInformer {
	t.Helper()
	informer := cache.NewSharedIndexInformer(&cache.ListWatch{}, &unstructured.Unstructured{}, 0, cache.Indexers{})
	for _, o := range objs {
		if err := informer.GetStore().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	return informer
}

// deletes returns the "ns/name" of each delete client got, sorted, and
// checks that each was a foreground delete with the UID precondition of
// the object deleted.
func deletes(t *testing.T, client *dynamicfake.FakeDynamicClient) []string {
	t.Helper()
	var out []string
	for _, a := range client.Actions() {
		d, ok := a.(k8stesting.DeleteActionImpl)
		if !ok {
			continue
		}
		key := d.GetNamespace() + "/" + d.GetName()
		out = append(out, key)
		opts := d.DeleteOptions
		if opts.PropagationPolicy == nil || *opts.PropagationPolicy != metav1.DeletePropagationForeground {
			t.Errorf("delete of %s: propagation %v, want Foreground", key, opts.PropagationPolicy)
		}
		wantUID := types.UID("uid-" + d.GetNamespace() + "-" + d.GetName())
		if opts.Preconditions == nil || opts.Preconditions.UID == nil || *opts.Preconditions.UID != wantUID {
			t.Errorf("delete of %s: preconditions %+v, want UID %s", key, opts.Preconditions, wantUID)
		}
	}
	sort.Strings(out)
	return out
}

// patches returns the bodies of the patches client got.
func patches(client *dynamicfake.FakeDynamicClient) []string {
	var out []string
	for _, a := range client.Actions() {
		if p, ok := a.(k8stesting.PatchActionImpl); ok {
			out = append(out, p.GetResource().Resource+" "+p.GetNamespace()+"/"+p.GetName()+" "+string(p.GetPatch()))
		}
	}
	return out
}

// failDeletes makes deletes of the ConfigMaps named in errs fail with their
// error.
func failDeletes(client *dynamicfake.FakeDynamicClient, errs map[string]error) {
	client.PrependReactor("delete", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		d := a.(k8stesting.DeleteActionImpl)
		if err, ok := errs[d.GetNamespace()+"/"+d.GetName()]; ok {
			return true, nil, err
		}
		return false, nil, nil
	})
}

// enforcePreconditions makes client refuse a delete whose UID precondition
// does not match the stored object, as the apiserver does.
func enforcePreconditions(client *dynamicfake.FakeDynamicClient) {
	client.PrependReactor("delete", "*", func(a k8stesting.Action) (bool, runtime.Object, error) {
		d := a.(k8stesting.DeleteActionImpl)
		pre := d.DeleteOptions.Preconditions
		if pre == nil || pre.UID == nil {
			return false, nil, nil
		}
		obj, err := client.Tracker().Get(d.GetResource(), d.GetNamespace(), d.GetName())
		if err != nil {
			return true, nil, err
		}
		if u := obj.(*unstructured.Unstructured); u.GetUID() != *pre.UID {
			return true, nil, apierrors.NewConflict(d.GetResource().GroupResource(), d.GetName(),
				fmt.Errorf("Precondition failed: UID in precondition: %s, UID in object meta: %s", *pre.UID, u.GetUID()))
		}
		return false, nil, nil
	})
}

// logSink collects log lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) add(prefix, args string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, args)
}

func (l *logSink) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// poll waits up to ten seconds for cond.
func poll(t *testing.T, what string, cond func() bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 5*time.Millisecond, 10*time.Second, true,
		func(context.Context) (bool, error) { return cond(), nil })
	if err != nil {
		t.Fatalf("waiting until %s: %v", what, err)
	}
}

// mustNew is cascade.New for options known to be valid.
func mustNew(t *testing.T, client *dynamicfake.FakeDynamicClient, opts ...cascade.Option) *cascade.Handler {
	t.Helper()
	h, err := cascade.New(client, configMaps, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
