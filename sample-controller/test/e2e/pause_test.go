package e2e

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/kubehandler/kubehandler/handlers/pause"
	samplev1alpha1 "github.com/kubehandler/kubehandler/sample-controller/pkg/apis/samplecontroller/v1alpha1"
	"github.com/kubehandler/kubehandler/sample-controller/pkg/controller"
)

// TestPause labels a Foo paused: its spec changes are not applied, its
// Deployment changed by hand is not put back, and the Paused condition says
// why. Without the label, changes are applied again.
func TestPause(t *testing.T) {
	c := newClients(t, labConfig())
	ns := newNamespace(t, c)
	r := startController(t)
	foos := c.foo.SamplecontrollerV1alpha1().Foos(ns)

	foo, err := foos.Create(t.Context(), newFoo(ns, "foo", 2), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	foo = waitForReady(t, c, foo)
	readyGeneration := foo.Generation

	foo = updateFoo(t, c, foo, func(f *samplev1alpha1.Foo) {
		f.Labels = map[string]string{controller.PauseLabel: ""}
	})
	waitForPaused(t, c, foo, true)

	t.Run("spec changes are not applied", func(t *testing.T) {
		foo = updateFoo(t, c, foo, func(f *samplev1alpha1.Foo) { f.Spec.Replicas = ptr.To[int32](4) })
		// Take the Paused condition away: when it is back, the pause
		// handler has handled the Foo as it is now, spec change included
		// (events of one Foo are handled in order).
		paused := removeCondition(t, c, foo, pause.ConditionTypePaused)
		poll(t, timeout, "the Paused condition set again", func() (bool, error) {
			got, err := foos.Get(t.Context(), foo.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return meta.IsStatusConditionTrue(got.Status.Conditions, pause.ConditionTypePaused) && got.ResourceVersion != paused.ResourceVersion, nil
		})
		got, err := foos.Get(t.Context(), foo.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.ObservedGeneration != readyGeneration {
			t.Errorf("status.observedGeneration = %d, want %d: the paused spec was observed", got.Status.ObservedGeneration, readyGeneration)
		}
		if d := deployment(t, c, foo); *d.Spec.Replicas != 2 {
			t.Errorf("Deployment replicas = %d, want 2: the paused spec was applied", *d.Spec.Replicas)
		}
	})

	t.Run("a Deployment changed by hand is left alone", func(t *testing.T) {
		before := r.calls(t, "Deployment")
		scaleDeployment(t, c, foo, 6)
		// Once the Deployment handler has returned from a call for the
		// change, a Foo not paused would have its Deployment back at its
		// replicas.
		poll(t, timeout, "a call of the Deployment handler", func() (bool, error) {
			return r.calls(t, "Deployment") > before, nil
		})
		if d := deployment(t, c, foo); *d.Spec.Replicas != 6 {
			t.Errorf("Deployment replicas = %d, want 6, as scaled by hand", *d.Spec.Replicas)
		}
	})

	t.Run("without the label, changes are applied again", func(t *testing.T) {
		foo = updateFoo(t, c, foo, func(f *samplev1alpha1.Foo) { delete(f.Labels, controller.PauseLabel) })
		waitForPaused(t, c, foo, false)
		waitForDeployment(t, c, foo, 4)
		waitForReady(t, c, foo)
	})
}

// waitForPaused waits until the Foo has the Paused condition (True,
// PausedByLabel) or, with !paused, none.
func waitForPaused(t *testing.T, c clients, foo *samplev1alpha1.Foo, paused bool) {
	t.Helper()
	poll(t, timeout, "the Paused condition", func() (bool, error) {
		got, err := c.foo.SamplecontrollerV1alpha1().Foos(foo.Namespace).Get(t.Context(), foo.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		cond := meta.FindStatusCondition(got.Status.Conditions, pause.ConditionTypePaused)
		if !paused {
			return cond == nil, notYetf("condition %+v", cond)
		}
		return cond != nil && cond.Status == metav1.ConditionTrue && cond.Reason == pause.ReasonPausedByLabel, notYetf("condition %+v", cond)
	})
}

// removeCondition removes a condition from the Foo's status and returns
// the Foo as written.
func removeCondition(t *testing.T, c clients, foo *samplev1alpha1.Foo, typ string) *samplev1alpha1.Foo {
	t.Helper()
	foos := c.foo.SamplecontrollerV1alpha1().Foos(foo.Namespace)
	var updated *samplev1alpha1.Foo
	poll(t, timeout, "the removal of condition "+typ, func() (bool, error) {
		got, err := foos.Get(t.Context(), foo.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if !meta.RemoveStatusCondition(&got.Status.Conditions, typ) {
			return false, notYetf("no condition %s", typ)
		}
		updated, err = foos.UpdateStatus(t.Context(), got, metav1.UpdateOptions{})
		return err == nil, err
	})
	return updated
}
