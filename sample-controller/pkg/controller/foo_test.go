package controller

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	core "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"

	samplev1alpha1 "github.com/kubehandler/kubehandler/sample-controller/pkg/apis/samplecontroller/v1alpha1"
)

func TestFooHandlerSync(t *testing.T) {
	deleting := newFoo("deleting", 1)
	deleting.DeletionTimestamp = &metav1.Time{}
	scaled := newFoo("scaled", 3)
	scaledDeployment := deploymentOf(newFoo("scaled", 1))
	unobserved := newFoo("unobserved", 1)
	unobservedDeployment := deploymentOf(unobserved)
	unobservedDeployment.Generation = 2
	foreign := newFoo("foreign", 1)
	foreignDeployment := deploymentOf(foreign)
	foreignDeployment.OwnerReferences = nil
	upToDate := newFoo("uptodate", 1)
	upToDateDeployment := deploymentOf(upToDate)
	upToDateDeployment.Status.AvailableReplicas = 1
	upToDate.Status = samplev1alpha1.FooStatus{AvailableReplicas: 1, ObservedGeneration: 3, Conditions: []metav1.Condition{
		readyWith(upToDate, readyCondition(upToDate, upToDateDeployment)),
	}}

	tests := []struct {
		name        string
		foo         *samplev1alpha1.Foo
		deployments []*appsv1.Deployment
		sync        string // the Foo to sync, if not foo
		wantErr     bool
		// wantWrites are the verbs and resources written, in order.
		wantWrites []string
		// wantReplicas is the Deployment's replicas after the sync, if written.
		wantReplicas *int32
		// wantReady is the Ready condition's status and reason written, if any.
		wantReady *metav1.Condition
		// wantEvents are the types and reasons of the Events recorded.
		wantEvents []string
	}{{
		name:         "creates the Deployment, owned by the Foo",
		foo:          newFoo("new", 2),
		wantWrites:   []string{"create deployments", "update foos/status"},
		wantReplicas: ptr.To[int32](2),
		// A fake clientset sets no generation: the Deployment looks observed.
		wantReady:  &metav1.Condition{Status: metav1.ConditionTrue, Reason: ReasonDeploymentReady},
		wantEvents: []string{"Normal DeploymentCreated"},
	}, {
		name:         "scales the Deployment to the Foo's replicas",
		foo:          scaled,
		deployments:  []*appsv1.Deployment{scaledDeployment},
		wantWrites:   []string{"update deployments", "update foos/status"},
		wantReplicas: ptr.To[int32](3),
		wantReady:    &metav1.Condition{Status: metav1.ConditionTrue, Reason: ReasonDeploymentReady},
		wantEvents:   []string{"Normal DeploymentScaled"},
	}, {
		name:        "not Ready until the Deployment controller has observed the Deployment",
		foo:         unobserved,
		deployments: []*appsv1.Deployment{unobservedDeployment},
		wantWrites:  []string{"update foos/status"},
		wantReady:   &metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonDeploymentProgressing},
	}, {
		name:        "leaves a Deployment it does not control alone, and says so",
		foo:         foreign,
		deployments: []*appsv1.Deployment{foreignDeployment},
		wantErr:     true,
		wantWrites:  []string{"update foos/status"},
		wantReady:   &metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonDeploymentNotOwned},
		wantEvents:  []string{"Warning DeploymentNotOwned"},
	}, {
		name:        "writes nothing when all is as it should be",
		foo:         upToDate,
		deployments: []*appsv1.Deployment{upToDateDeployment},
	}, {
		name: "does nothing for a Foo being deleted",
		foo:  deleting,
	}, {
		name: "does nothing for a Foo that is gone",
		foo:  newFoo("other", 1),
		sync: "gone",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, []*samplev1alpha1.Foo{tt.foo}, tt.deployments)
			name := tt.foo.Name
			if tt.sync != "" {
				name = tt.sync
			}
			before := tt.foo.DeepCopy()
			err := f.foos.Sync(t.Context(), tt.foo.Namespace, name)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Sync: error %v, want error: %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(before, tt.foo); diff != "" {
				t.Errorf("Sync changed the cached Foo (-before +after):\n%s", diff)
			}

			var got []string
			for _, a := range f.writes() {
				what := a.GetVerb() + " " + a.GetResource().Resource
				if a.GetSubresource() != "" {
					what += "/" + a.GetSubresource()
				}
				got = append(got, what)
			}
			if diff := cmp.Diff(tt.wantWrites, got); diff != "" {
				t.Fatalf("writes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantEvents, f.events()); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}

			if tt.wantReplicas != nil {
				d, err := f.kubeClient.AppsV1().Deployments(tt.foo.Namespace).Get(t.Context(), tt.foo.Spec.DeploymentName, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if *d.Spec.Replicas != *tt.wantReplicas {
					t.Errorf("Deployment replicas = %d, want %d", *d.Spec.Replicas, *tt.wantReplicas)
				}
				if !metav1.IsControlledBy(d, tt.foo) {
					t.Errorf("Deployment owners = %v, want the Foo as controller", d.OwnerReferences)
				}
			}

			if tt.wantReady != nil {
				foo, err := f.fooClient.SamplecontrollerV1alpha1().Foos(tt.foo.Namespace).Get(t.Context(), tt.foo.Name, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if foo.Status.ObservedGeneration != tt.foo.Generation {
					t.Errorf("status.observedGeneration = %d, want %d", foo.Status.ObservedGeneration, tt.foo.Generation)
				}
				ready := meta.FindStatusCondition(foo.Status.Conditions, ConditionReady)
				if ready == nil {
					t.Fatalf("no Ready condition in %v", foo.Status.Conditions)
				}
				opts := cmpopts.IgnoreFields(metav1.Condition{}, "Type", "Message", "LastTransitionTime", "ObservedGeneration")
				if diff := cmp.Diff(*tt.wantReady, *ready, opts); diff != "" {
					t.Errorf("Ready condition (-want +got):\n%s", diff)
				}
				if ready.ObservedGeneration != tt.foo.Generation {
					t.Errorf("Ready observedGeneration = %d, want %d", ready.ObservedGeneration, tt.foo.Generation)
				}
			}
		})
	}
}

// TestFooHandlerConflict checks that a conflict, which means the cache is
// behind and a newer event is coming, is not reported as a failure, and
// that other errors are.
func TestFooHandlerConflict(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		wantErr bool
	}{
		{"conflict", apierrors.NewConflict(samplev1alpha1.Resource("foos"), "foo", errors.New("stale")), false},
		{"other error", apierrors.NewInternalError(errors.New("boom")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			foo := newFoo("foo", 1)
			f := newFixture(t, []*samplev1alpha1.Foo{foo}, nil)
			f.fooClient.PrependReactor("update", "foos", func(core.Action) (bool, runtime.Object, error) {
				return true, nil, tt.err
			})
			err := f.foos.Sync(t.Context(), foo.Namespace, foo.Name)
			if (err != nil) != tt.wantErr {
				t.Errorf("Sync: error %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}

// TestFooHandlerKeepsOtherConditions checks that writing Ready leaves the
// Paused condition, which the pause handler owns, as it was.
func TestFooHandlerKeepsOtherConditions(t *testing.T) {
	foo := newFoo("paused-before", 1)
	paused := metav1.Condition{Type: "Paused", Status: metav1.ConditionFalse, Reason: "Resumed", Message: "m", LastTransitionTime: metav1.Now()}
	foo.Status.Conditions = []metav1.Condition{paused}
	f := newFixture(t, []*samplev1alpha1.Foo{foo}, nil)
	if err := f.foos.Sync(t.Context(), foo.Namespace, foo.Name); err != nil {
		t.Fatal(err)
	}
	got, err := f.fooClient.SamplecontrollerV1alpha1().Foos(foo.Namespace).Get(t.Context(), foo.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := meta.FindStatusCondition(got.Status.Conditions, "Paused"); c == nil || !cmp.Equal(*c, paused) {
		t.Errorf("Paused condition = %v, want %v", c, paused)
	}
	if meta.FindStatusCondition(got.Status.Conditions, ConditionReady) == nil {
		t.Errorf("no Ready condition in %v", got.Status.Conditions)
	}
}

func TestReadyCondition(t *testing.T) {
	foo := newFoo("foo", 2)
	tests := []struct {
		name       string
		change     func(*appsv1.Deployment)
		wantStatus metav1.ConditionStatus
		wantReason string
	}{
		{"observed, replicas as asked", func(*appsv1.Deployment) {}, metav1.ConditionTrue, ReasonDeploymentReady},
		{"replicas differ", func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](1) }, metav1.ConditionFalse, ReasonDeploymentProgressing},
		{"no replicas", func(d *appsv1.Deployment) { d.Spec.Replicas = nil }, metav1.ConditionFalse, ReasonDeploymentProgressing},
		{"generation not observed", func(d *appsv1.Deployment) { d.Generation = 2 }, metav1.ConditionFalse, ReasonDeploymentProgressing},
		{"no Pod available is still Ready", func(d *appsv1.Deployment) { d.Status.AvailableReplicas = 0 }, metav1.ConditionTrue, ReasonDeploymentReady},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := deploymentOf(foo)
			tt.change(d)
			c := readyCondition(foo, d)
			if c.Type != ConditionReady || c.Status != tt.wantStatus || c.Reason != tt.wantReason {
				t.Errorf("readyCondition = %s %s %s, want Ready %s %s", c.Type, c.Status, c.Reason, tt.wantStatus, tt.wantReason)
			}
		})
	}
}

// readyWith returns c as the Foo handler writes it for foo.
func readyWith(foo *samplev1alpha1.Foo, c metav1.Condition) metav1.Condition {
	c.ObservedGeneration = foo.Generation
	c.LastTransitionTime = metav1.Now()
	return c
}
