package e2e

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	samplev1alpha1 "github.com/kubehandler/kubehandler/sample-controller/pkg/apis/samplecontroller/v1alpha1"
	"github.com/kubehandler/kubehandler/sample-controller/pkg/controller"
)

const timeout = 30 * time.Second

func newFoo(namespace, name string, replicas int32) *samplev1alpha1.Foo {
	return &samplev1alpha1.Foo{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec:       samplev1alpha1.FooSpec{DeploymentName: name + "-deployment", Replicas: ptr.To(replicas)},
	}
}

// TestFoo creates a Foo and changes it and its Deployment: the Deployment
// follows the Foo's spec, and the Foo's status follows both.
func TestFoo(t *testing.T) {
	c := newClients(t, labConfig())
	ns := newNamespace(t, c)
	startController(t)
	foos := c.foo.SamplecontrollerV1alpha1().Foos(ns)
	deployments := c.kube.AppsV1().Deployments(ns)

	foo, err := foos.Create(t.Context(), newFoo(ns, "foo", 2), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitForDeployment(t, c, foo, 2)
	foo = waitForReady(t, c, foo)
	if foo.Status.AvailableReplicas != 0 {
		t.Errorf("status.availableReplicas = %d; no Pod runs without nodes, want 0", foo.Status.AvailableReplicas)
	}
	poll(t, timeout, "an Event DeploymentCreated about the Foo", func() (bool, error) {
		events, err := c.kube.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.name=foo,reason=DeploymentCreated"})
		if err != nil {
			return false, err
		}
		return len(events.Items) == 1 && events.Items[0].InvolvedObject.UID == foo.UID, notYetf("events %v", events.Items)
	})

	t.Run("spec changes are applied and observed", func(t *testing.T) {
		foo := updateFoo(t, c, foo, func(f *samplev1alpha1.Foo) { f.Spec.Replicas = ptr.To[int32](3) })
		waitForDeployment(t, c, foo, 3)
		waitForReady(t, c, foo)
	})

	t.Run("a Deployment scaled by hand is scaled back", func(t *testing.T) {
		scaleDeployment(t, c, foo, 7)
		waitForDeployment(t, c, foo, 3)
	})

	t.Run("a Deployment deleted by hand is created again", func(t *testing.T) {
		old, err := deployments.Get(t.Context(), foo.Spec.DeploymentName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := deployments.Delete(t.Context(), old.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		poll(t, timeout, "a new Deployment", func() (bool, error) {
			d, err := deployments.Get(t.Context(), old.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return d.UID != old.UID, nil
		})
		waitForDeployment(t, c, foo, 3)
	})

	t.Run("a Deployment the Foo does not control is left alone", func(t *testing.T) {
		other := newFoo(ns, "other", 1)
		other.Spec.DeploymentName = "taken"
		taken := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "taken", Namespace: ns},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](5),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "taken"}},
			},
		}
		taken.Spec.Template.Labels = taken.Spec.Selector.MatchLabels
		taken.Spec.Template.Spec.Containers = []corev1.Container{{Name: "c", Image: "busybox"}}
		if _, err := deployments.Create(t.Context(), taken, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		other, err := foos.Create(t.Context(), other, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		poll(t, timeout, "Ready=False DeploymentNotOwned", func() (bool, error) {
			got, err := foos.Get(t.Context(), other.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return meta.IsStatusConditionPresentAndEqual(got.Status.Conditions, controller.ConditionReady, metav1.ConditionFalse) &&
				meta.FindStatusCondition(got.Status.Conditions, controller.ConditionReady).Reason == controller.ReasonDeploymentNotOwned, nil
		})
		d, err := deployments.Get(t.Context(), "taken", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *d.Spec.Replicas != 5 || len(d.OwnerReferences) != 0 {
			t.Errorf("the foreign Deployment was changed: replicas %d, owners %v", *d.Spec.Replicas, d.OwnerReferences)
		}
	})
}

// updateFoo changes the Foo with change, retrying on conflicts, and returns
// it as written.
func updateFoo(t *testing.T, c clients, foo *samplev1alpha1.Foo, change func(*samplev1alpha1.Foo)) *samplev1alpha1.Foo {
	t.Helper()
	foos := c.foo.SamplecontrollerV1alpha1().Foos(foo.Namespace)
	var updated *samplev1alpha1.Foo
	poll(t, timeout, fmt.Sprintf("an update of Foo %s", foo.Name), func() (bool, error) {
		got, err := foos.Get(t.Context(), foo.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		change(got)
		updated, err = foos.Update(t.Context(), got, metav1.UpdateOptions{})
		return err == nil, err
	})
	return updated
}

// waitForDeployment waits until the Foo's Deployment has replicas and the
// Foo as its controller.
func waitForDeployment(t *testing.T, c clients, foo *samplev1alpha1.Foo, replicas int32) *appsv1.Deployment {
	t.Helper()
	var d *appsv1.Deployment
	poll(t, timeout, fmt.Sprintf("Deployment %s with %d replicas, controlled by Foo %s", foo.Spec.DeploymentName, replicas, foo.Name), func() (bool, error) {
		var err error
		d, err = c.kube.AppsV1().Deployments(foo.Namespace).Get(t.Context(), foo.Spec.DeploymentName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		ref := metav1.GetControllerOf(d)
		if ref == nil || ref.UID != foo.UID || ref.Kind != "Foo" || ref.APIVersion != samplev1alpha1.SchemeGroupVersion.String() {
			return false, notYetf("controller reference %v", ref)
		}
		if *d.Spec.Replicas != replicas {
			return false, notYetf("replicas %d", *d.Spec.Replicas)
		}
		return true, nil
	})
	return d
}

// waitForReady waits until the Foo is Ready and its status describes the
// generation it has now (foo's), and returns it.
func waitForReady(t *testing.T, c clients, foo *samplev1alpha1.Foo) *samplev1alpha1.Foo {
	t.Helper()
	var got *samplev1alpha1.Foo
	poll(t, timeout, fmt.Sprintf("Foo %s Ready at generation %d", foo.Name, foo.Generation), func() (bool, error) {
		var err error
		got, err = c.foo.SamplecontrollerV1alpha1().Foos(foo.Namespace).Get(t.Context(), foo.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return isReady(got, foo.Generation)
	})
	return got
}

// isReady reports whether foo is Ready at generation, and if not, why.
func isReady(foo *samplev1alpha1.Foo, generation int64) (bool, error) {
	if foo.Status.ObservedGeneration != generation {
		return false, notYetf("status.observedGeneration %d", foo.Status.ObservedGeneration)
	}
	ready := meta.FindStatusCondition(foo.Status.Conditions, controller.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionTrue || ready.ObservedGeneration != generation {
		return false, notYetf("Ready condition %+v", ready)
	}
	return true, nil
}

// gone reports whether the error of a Get says the object does not exist.
func gone[T any](_ T, err error) (bool, error) {
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, nil
}

// deployment returns the Foo's Deployment.
func deployment(t *testing.T, c clients, foo *samplev1alpha1.Foo) *appsv1.Deployment {
	t.Helper()
	d, err := c.kube.AppsV1().Deployments(foo.Namespace).Get(t.Context(), foo.Spec.DeploymentName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// scaleDeployment sets the replicas of the Foo's Deployment, as a person
// would with kubectl scale.
func scaleDeployment(t *testing.T, c clients, foo *samplev1alpha1.Foo, replicas int32) {
	t.Helper()
	deployments := c.kube.AppsV1().Deployments(foo.Namespace)
	poll(t, timeout, "a scale of the Deployment", func() (bool, error) {
		scale, err := deployments.GetScale(t.Context(), foo.Spec.DeploymentName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		scale.Spec.Replicas = replicas
		_, err = deployments.UpdateScale(t.Context(), foo.Spec.DeploymentName, scale, metav1.UpdateOptions{})
		return err == nil, err
	})
}
