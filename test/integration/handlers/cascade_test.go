package handlers

import (
	"context"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/handlers/cascade"
	"github.com/kubehandler/kubehandler/kubelabtest"
)

const (
	uidLabel      = "handlers.test.kubehandler.dev/project-uid"
	nameLabel     = "handlers.test.kubehandler.dev/project"
	cascadeFinal  = "handlers.test.kubehandler.dev/dependents"
	holdFinalizer = "handlers.test.kubehandler.dev/hold"
)

// configMap creates a ConfigMap ns/name with labels and finalizers, owned
// by owner if not nil.
func configMap(t *testing.T, ns, name string, labels map[string]string, owner *corev1.ConfigMap, finalizers ...string) *corev1.ConfigMap {
	t.Helper()
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels, Finalizers: finalizers}}
	if owner != nil {
		cm.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "ConfigMap", Name: owner.Name, UID: owner.UID,
			BlockOwnerDeletion: ptr.To(true),
		}}
	}
	cm, err := kubelabtest.Default().Client().CoreV1().ConfigMaps(ns).Create(t.Context(), cm, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

// configMapState returns "gone", "deleting" or "live" for the ConfigMap
// ns/name.
func configMapState(ctx context.Context, ns, name string) (string, error) {
	cm, err := get(ctx, configMaps, ns, name)
	switch {
	case err != nil:
		return "", err
	case cm == nil:
		return "gone", nil
	case cm.GetDeletionTimestamp() != nil:
		return "deleting", nil
	}
	return "live", nil
}

// TestCascadeWithFinalizer: a Project in one namespace has dependents in
// three (which ownerReferences cannot express). Deleted, it stays until
// every dependent is gone, one of them held by a finalizer and one waiting
// for its own owned child (foreground deletion, by the garbage collector);
// then it disappears. ConfigMaps without the label, or labelled for another
// Project, survive.
func TestCascadeWithFinalizer(t *testing.T) {
	lab := kubelabtest.Default()
	nsA, nsB, nsC := lab.Namespace(t), lab.Namespace(t), lab.Namespace(t)
	factory := informers(nsA)
	h, err := cascade.New(lab.Dynamic(), configMaps,
		cascade.WithUIDLabel(uidLabel),
		cascade.InAllNamespaces(),
		cascade.WithFinalizer(cascadeFinal, projects),
		cascade.WithRequeueInterval(100*time.Millisecond),
		cascade.WithInformer(factory.ForResource(projects).Informer()))
	if err != nil {
		t.Fatal(err)
	}
	runLoop(t, factory, h)
	projectsA := lab.Dynamic().Resource(projects).Namespace(nsA)

	p, err := projectsA.Create(t.Context(), newProject(nsA, "p"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the live Project gets the finalizer", func(ctx context.Context) (bool, error) {
		p, err = get(ctx, projects, nsA, "p")
		return err == nil && slices.Contains(p.GetFinalizers(), cascadeFinal), err
	})

	mine := map[string]string{uidLabel: string(p.GetUID())}
	configMap(t, nsA, "dep-a", mine, nil)
	depB := configMap(t, nsB, "dep-b", mine, nil)
	configMap(t, nsB, "child-of-dep-b", nil, depB) // no label: goes with dep-b, by the garbage collector
	configMap(t, nsC, "dep-c", mine, nil)
	configMap(t, nsC, "held", mine, nil, holdFinalizer)
	survivors := map[string]string{nsA: "plain", nsB: "other-project", nsC: "other-label"}
	configMap(t, nsA, "plain", nil, nil)
	configMap(t, nsB, "other-project", map[string]string{uidLabel: "7f1d8c5e-0000-4000-8000-000000000000"}, nil)
	configMap(t, nsC, "other-label", map[string]string{"app": "p"}, nil)

	if err := projectsA.Delete(t.Context(), "p", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	want := map[[2]string]string{
		{nsA, "dep-a"}: "gone", {nsB, "dep-b"}: "gone", {nsB, "child-of-dep-b"}: "gone", {nsC, "dep-c"}: "gone",
		{nsC, "held"}: "deleting",
	}
	poll(t, "every dependent but the held one is gone", func(ctx context.Context) (bool, error) {
		for k, state := range want {
			if got, err := configMapState(ctx, k[0], k[1]); err != nil || got != state {
				return false, err
			}
		}
		return true, nil
	})
	p, err = get(t.Context(), projects, nsA, "p")
	if err != nil {
		t.Fatal(err)
	}
	if p == nil || p.GetDeletionTimestamp() == nil || !slices.Contains(p.GetFinalizers(), cascadeFinal) {
		t.Fatalf("the Project went before its held dependent: %v", p)
	}

	// Let the held dependent go; then the Project goes.
	cms := lab.Client().CoreV1().ConfigMaps(nsC)
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		held, err := cms.Get(t.Context(), "held", metav1.GetOptions{})
		if err != nil {
			return err
		}
		held.Finalizers = slices.DeleteFunc(held.Finalizers, func(f string) bool { return f == holdFinalizer })
		_, err = cms.Update(t.Context(), held, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "the Project is gone", func(ctx context.Context) (bool, error) {
		p, err := get(ctx, projects, nsA, "p")
		return p == nil, err
	})
	if state, err := configMapState(t.Context(), nsC, "held"); err != nil || state != "gone" {
		t.Errorf("the held dependent is %s (%v), want gone", state, err)
	}
	for ns, name := range survivors {
		if state, err := configMapState(t.Context(), ns, name); err != nil || state != "live" {
			t.Errorf("%s/%s is %s (%v), want live", ns, name, state, err)
		}
	}
}

// deletesDone signals each return of the wrapped handler's DeleteFunc.
type deletesDone struct {
	kubehandler.EventHandler
	done chan error
}

func (d *deletesDone) DeleteFunc(ctx context.Context, namespace, name string) error {
	err := d.EventHandler.DeleteFunc(ctx, namespace, name)
	d.done <- err
	return err
}

// TestCascadeOnDelete: without a finalizer the delete event acts; the
// dependents are selected by the Project's name, in its namespace only.
func TestCascadeOnDelete(t *testing.T) {
	lab := kubelabtest.Default()
	ns, other := lab.Namespace(t), lab.Namespace(t)
	factory := informers(ns)
	h, err := cascade.New(lab.Dynamic(), configMaps,
		cascade.WithNameLabel(nameLabel),
		cascade.WithInformer(factory.ForResource(projects).Informer()))
	if err != nil {
		t.Fatal(err)
	}
	spy := &deletesDone{EventHandler: h, done: make(chan error, 1)}
	runLoop(t, factory, spy)
	mine := map[string]string{nameLabel: "p"}
	configMap(t, ns, "dep", mine, nil)
	configMap(t, ns, "plain", nil, nil)
	configMap(t, other, "dep-elsewhere", mine, nil) // out of scope

	projectsNS := lab.Dynamic().Resource(projects).Namespace(ns)
	if _, err := projectsNS.Create(t.Context(), newProject(ns, "p"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := projectsNS.Delete(t.Context(), "p", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-spy.done:
		if err != nil {
			t.Fatalf("DeleteFunc = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the delete was not dispatched")
	}

	poll(t, "the dependent is gone", func(ctx context.Context) (bool, error) {
		state, err := configMapState(ctx, ns, "dep")
		return state == "gone", err
	})
	for _, k := range [][2]string{{ns, "plain"}, {other, "dep-elsewhere"}} {
		if state, err := configMapState(t.Context(), k[0], k[1]); err != nil || state != "live" {
			t.Errorf("%s/%s is %s (%v), want live", k[0], k[1], state, err)
		}
	}
}
