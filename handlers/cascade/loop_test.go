package cascade_test

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic/dynamicinformer"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/handlers/cascade"
)

// runLoop runs a loop with h until the test ends.
func runLoop(t *testing.T, factory dynamicinformer.DynamicSharedInformerFactory, h kubehandler.EventHandler) {
	t.Helper()
	loop := kubehandler.NewEventLoop("cascade-test")
	loop.Register(h)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	factory.Start(ctx.Done())
	go func() { done <- loop.Run(ctx, 2) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
		factory.Shutdown()
	})
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
