package e2e

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubehandler/kubehandler/sample-controller/pkg/controller"
)

// hold is a finalizer the test puts on a dependent ConfigMap, so that it
// stays while being deleted until the test lets it go.
const hold = "e2e.kubehandler.dev/hold"

// TestDeleteWithDependents deletes a Foo whose dependent ConfigMaps live in
// other namespaces: they are deleted first, the Foo waits for the last of
// them and is gone after them; ConfigMaps of no Foo, or of another, stay.
func TestDeleteWithDependents(t *testing.T) {
	c := newClients(t, labConfig())
	ns := newNamespace(t, c)
	others := []string{newNamespace(t, c), newNamespace(t, c), newNamespace(t, c)}
	startController(t)
	foos := c.foo.SamplecontrollerV1alpha1().Foos(ns)

	foo, err := foos.Create(t.Context(), newFoo(ns, "foo", 1), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitForReady(t, c, foo)
	poll(t, timeout, "the finalizer on the Foo", func() (bool, error) {
		got, err := foos.Get(t.Context(), foo.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return slices.Contains(got.Finalizers, controller.Finalizer), nil
	})

	type cm struct {
		namespace, name string
		labels          map[string]string
		finalizers      []string
	}
	ofFoo := map[string]string{controller.DependentLabel: string(foo.UID)}
	dependents := []cm{
		{others[0], "dependent", ofFoo, []string{hold}}, // the last to go
		{others[1], "dependent", ofFoo, nil},
		{others[2], "dependent", ofFoo, nil},
		{ns, "dependent", ofFoo, nil},
	}
	unrelated := []cm{
		{others[1], "of-another-foo", map[string]string{controller.DependentLabel: "7a3e4c1e-0000-4000-8000-000000000000"}, nil},
		{others[2], "unlabelled", nil, nil},
		{ns, "unlabelled", map[string]string{"app": "foo"}, nil},
	}
	uids := map[string]types.UID{}
	for _, d := range append(slices.Clone(dependents), unrelated...) {
		got, err := c.kube.CoreV1().ConfigMaps(d.namespace).Create(t.Context(), &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: d.name, Labels: d.labels, Finalizers: d.finalizers},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uids[d.namespace+"/"+d.name] = got.UID
	}
	t.Cleanup(func() { releaseHold(t, c, dependents[0].namespace, dependents[0].name) })

	if err := foos.Delete(t.Context(), foo.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	for _, d := range dependents[1:] {
		poll(t, timeout, "ConfigMap "+d.namespace+"/"+d.name+" deleted", func() (bool, error) {
			return gone(c.kube.CoreV1().ConfigMaps(d.namespace).Get(t.Context(), d.name, metav1.GetOptions{}))
		})
	}
	held := dependents[0]
	poll(t, timeout, "the held ConfigMap being deleted", func() (bool, error) {
		got, err := c.kube.CoreV1().ConfigMaps(held.namespace).Get(t.Context(), held.name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return got.DeletionTimestamp != nil, nil
	})
	// While a dependent is left, the Foo stays, held by its finalizer.
	got, err := foos.Get(t.Context(), foo.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the Foo went before its last dependent: %v", err)
	}
	if got.DeletionTimestamp == nil || !slices.Contains(got.Finalizers, controller.Finalizer) {
		t.Errorf("the Foo: deletionTimestamp %v, finalizers %v; want it being deleted, held by %s", got.DeletionTimestamp, got.Finalizers, controller.Finalizer)
	}

	releaseHold(t, c, held.namespace, held.name)
	poll(t, timeout, "the held ConfigMap gone", func() (bool, error) {
		return gone(c.kube.CoreV1().ConfigMaps(held.namespace).Get(t.Context(), held.name, metav1.GetOptions{}))
	})
	poll(t, timeout, "the Foo gone", func() (bool, error) {
		return gone(foos.Get(t.Context(), foo.Name, metav1.GetOptions{}))
	})
	// The Foo's Deployment goes too, through its owner reference, once
	// the garbage collector knows the Foo resource (it reads discovery every
	// 30 seconds): not waited for here.

	for _, u := range unrelated {
		got, err := c.kube.CoreV1().ConfigMaps(u.namespace).Get(t.Context(), u.name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("unrelated ConfigMap %s/%s: %v", u.namespace, u.name, err)
			continue
		}
		if got.UID != uids[u.namespace+"/"+u.name] || got.DeletionTimestamp != nil {
			t.Errorf("unrelated ConfigMap %s/%s was deleted or replaced", u.namespace, u.name)
		}
	}
}

// releaseHold removes the test's finalizer from a ConfigMap, if it is there.
// It also works in a Cleanup, after t.Context() is cancelled.
func releaseHold(t *testing.T, c clients, namespace, name string) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	poll(t, timeout, "the hold on ConfigMap "+namespace+"/"+name+" released", func() (bool, error) {
		got, err := c.kube.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		if !slices.Contains(got.Finalizers, hold) {
			return true, nil
		}
		got.Finalizers = slices.DeleteFunc(got.Finalizers, func(f string) bool { return f == hold })
		_, err = c.kube.CoreV1().ConfigMaps(namespace).Update(ctx, got, metav1.UpdateOptions{})
		return err == nil, err
	})
}
