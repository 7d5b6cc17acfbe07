package controller

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehandler/kubehandler"
	samplev1alpha1 "github.com/kubehandler/kubehandler/sample-controller/pkg/apis/samplecontroller/v1alpha1"
)

func TestDeploymentHandler(t *testing.T) {
	foo := newFoo("foo", 1)
	owned := deploymentOf(foo)
	unowned := deploymentOf(newFoo("unowned", 1))
	unowned.OwnerReferences = nil
	otherKind := deploymentOf(newFoo("otherkind", 1))
	otherKind.OwnerReferences[0].Kind = "ReplicaSet"
	otherKind.OwnerReferences[0].APIVersion = "apps/v1"
	stale := deploymentOf(newFoo("stale", 1))
	stale.OwnerReferences[0].Name = foo.Name // a Foo of that name, but not this one
	pausedFoo := newFoo("paused", 1)
	pausedFoo.Labels = map[string]string{PauseLabel: ""}
	ofPaused := deploymentOf(pausedFoo)

	tests := []struct {
		name       string
		deployment *appsv1.Deployment
		want       []string // the Foos queued
	}{
		{"a Deployment maps to the Foo that controls it", owned, []string{"default/foo"}},
		{"a Deployment without a controller is ignored", unowned, nil},
		{"a Deployment controlled by something else is ignored", otherKind, nil},
		{"a Deployment of a Foo since replaced by one of the same name is ignored", stale, nil},
		{"a paused Foo is left alone", ofPaused, nil},
	}
	for _, tt := range tests {
		for _, event := range []string{"add", "update", "delete"} {
			t.Run(tt.name+"/"+event, func(t *testing.T) {
				f := newFixture(t, []*samplev1alpha1.Foo{foo, pausedFoo}, []*appsv1.Deployment{tt.deployment})
				var queued []string
				f.deploys.Enqueue = func(_ context.Context, key kubehandler.Key) (bool, error) {
					if key.Kind != "Foo" {
						t.Errorf("queued for handler %q, want Foo", key.Kind)
					}
					queued = append(queued, key.Namespace+"/"+key.Name)
					return true, nil
				}
				call := map[string]func(context.Context, string, string) error{
					"add": f.deploys.AddFunc, "update": f.deploys.UpdateFunc, "delete": f.deploys.DeleteFunc,
				}[event]
				if err := call(t.Context(), tt.deployment.Namespace, tt.deployment.Name); err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(tt.want, queued); diff != "" {
					t.Errorf("Foos queued (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestDeploymentHandlerDeleted checks that a deleted Deployment, no longer
// in the lister, still maps to its Foo, which creates it again.
func TestDeploymentHandlerDeleted(t *testing.T) {
	foo := newFoo("foo", 2)
	f := newFixture(t, []*samplev1alpha1.Foo{foo}, nil)
	// Outside a loop's call there is no Event: the lister has nothing, and
	// the handler has nothing to map.
	if err := f.deploys.DeleteFunc(t.Context(), foo.Namespace, foo.Spec.DeploymentName); err != nil {
		t.Fatal(err)
	}
	if w := f.writes(); len(w) != 0 {
		t.Fatalf("writes without an event: %v", w)
	}
	if err := f.foos.Sync(t.Context(), foo.Namespace, foo.Name); err != nil {
		t.Fatal(err)
	}
	d, err := f.kubeClient.AppsV1().Deployments(foo.Namespace).Get(t.Context(), foo.Spec.DeploymentName, metav1.GetOptions{})
	if err != nil || *d.Spec.Replicas != 2 {
		t.Fatalf("Deployment after sync: %v, %v", d, err)
	}
}
