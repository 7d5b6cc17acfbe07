package cascade_test

import (
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic/dynamicinformer"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/handlers/cascade"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// runLoop runs h on a loop, with factory, until the test ends.
func runLoop(t *testing.T, factory dynamicinformer.DynamicSharedInformerFactory, h kubehandler.EventHandler) {
	t.Helper()
	loop := kubehandler.NewEventLoop("cascade-test")
	loop.Register(h)
	kubehandlertest.Start(t, loop, 2, factory)
}

// configMapNames returns the "ns/name" of every ConfigMap client has.
func configMapNames(t *testing.T, client *dynamicfake.FakeDynamicClient) []string {
	t.Helper()
	list, err := client.Resource(configMaps).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, cm := range list.Items {
		out = append(out, cm.GetNamespace()+"/"+cm.GetName())
	}
	sort.Strings(out)
	return out
}

// survivors is what world() leaves once a/p's dependents by UID are gone.
var survivors = []string{"a/byname", "a/other", "a/plain", "b/plain", "c/byname"}

// TestFinalizerThroughLoop runs the handler on an EventLoop over a fake
// dynamic client: the live upstream gets the finalizer; once it is being
// deleted its dependents go, in every namespace, then the finalizer.
func TestFinalizerThroughLoop(t *testing.T) {
	for _, cached := range []bool{false, true} {
		name := "listed from the apiserver"
		if cached {
			name = "listed from an informer"
		}
		t.Run(name, func(t *testing.T) {
			up := project(false)
			up.SetResourceVersion("") // else the fake client's updates look like resyncs
			client := newClient(append(world(), up)...)
			factory := dynamicinformer.NewDynamicSharedInformerFactory(client, 0)
			opts := []cascade.Option{cascade.WithUIDLabel(uidLabel), cascade.InAllNamespaces(),
				cascade.WithFinalizer(finalizer, projects), cascade.WithRequeueInterval(10 * time.Millisecond),
				cascade.WithInformer(factory.ForResource(projects).Informer())}
			if cached {
				opts = append(opts, cascade.WithDependentInformer(factory.ForResource(configMaps)))
			}
			h := mustNew(t, client, opts...)
			runLoop(t, factory, h)

			projectsClient := client.Resource(projects).Namespace("a")
			finalizers := func() []string {
				p, err := projectsClient.Get(t.Context(), "p", metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return p.GetFinalizers()
			}
			poll(t, "the live project has the finalizer", func() bool { return len(finalizers()) == 1 })
			if got := configMapNames(t, client); len(got) != len(world()) {
				t.Fatalf("a live project lost dependents: %v", got)
			}

			p, err := projectsClient.Get(t.Context(), "p", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			p.SetDeletionTimestamp(&metav1.Time{Time: time.Now()})
			if _, err := projectsClient.Update(t.Context(), p, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}

			poll(t, "the finalizer is removed", func() bool { return len(finalizers()) == 0 })
			if diff := cmp.Diff(survivors, configMapNames(t, client)); diff != "" {
				t.Errorf("ConfigMaps left (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDeleteEventThroughLoop: without a finalizer the delete event acts,
// selecting by the UID of the deleted object's final state.
func TestDeleteEventThroughLoop(t *testing.T) {
	up := project(false)
	client := newClient(append(world(), up)...)
	factory := dynamicinformer.NewDynamicSharedInformerFactory(client, 0)
	h := mustNew(t, client, cascade.WithUIDLabel(uidLabel), cascade.InAllNamespaces(),
		cascade.WithInformer(factory.ForResource(projects).Informer()))
	runLoop(t, factory, h)
	poll(t, "the informer has the project", func() bool {
		_, exists, _ := h.GetInformer().GetStore().GetByKey("a/p")
		return exists
	})

	if err := client.Resource(projects).Namespace("a").Delete(t.Context(), "p", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	poll(t, "the dependents are gone", func() bool { return cmp.Equal(survivors, configMapNames(t, client)) })
}

// TestChainStep: as a step of a Chain that owns a finalizer, the handler
// keeps the Chain's finalizer on until the dependents are gone.
func TestChainStep(t *testing.T) {
	up := project(false)
	up.SetResourceVersion("")
	client := newClient(append(world(), up)...)
	// The dependents go slowly: each delete leaves the object being deleted,
	// and the second list shows it so; the third list shows it gone.
	var lists atomic.Int32
	client.PrependReactor("list", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if lists.Add(1) != 2 {
			return false, nil, nil
		}
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion("v1")
		l.SetKind("ConfigMapList")
		d := dep("b", "byuid", map[string]string{uidLabel: "uid-p"})
		d.SetDeletionTimestamp(&metav1.Time{Time: time.Now()})
		l.Items = append(l.Items, *d)
		return true, l, nil
	})
	factory := dynamicinformer.NewDynamicSharedInformerFactory(client, 0)
	informer := factory.ForResource(projects).Informer()
	step := mustNew(t, client, cascade.WithUIDLabel(uidLabel), cascade.InAllNamespaces(),
		cascade.WithRequeueInterval(10*time.Millisecond))
	runLoop(t, factory, &kubehandler.Chain{
		DefaultHandler: kubehandler.DefaultHandler{Informer: informer, Name: "projects"},
		Steps:          []kubehandler.Step{step},
		Finalizer:      finalizer,
		Patch:          kubehandler.ClientPatch(client.Resource(projects).Namespace),
	})

	projectsClient := client.Resource(projects).Namespace("a")
	finalizers := func() []string {
		p, err := projectsClient.Get(t.Context(), "p", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return p.GetFinalizers()
	}
	poll(t, "the chain adds its finalizer", func() bool { return len(finalizers()) == 1 })
	p, err := projectsClient.Get(t.Context(), "p", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.SetDeletionTimestamp(&metav1.Time{Time: time.Now()})
	if _, err := projectsClient.Update(t.Context(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	poll(t, "the chain removes its finalizer", func() bool { return len(finalizers()) == 0 })
	if n := lists.Load(); n < 3 {
		t.Errorf("the finalizer went after %d lists of the dependents, want 3: first deletes, then one being deleted, then none", n)
	}
	if diff := cmp.Diff(survivors, configMapNames(t, client)); diff != "" {
		t.Errorf("ConfigMaps left (-want +got):\n%s", diff)
	}
}
