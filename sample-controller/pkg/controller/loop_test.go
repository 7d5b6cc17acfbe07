package controller

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/utils/ptr"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
	samplev1alpha1 "github.com/kubehandler/kubehandler/sample-controller/pkg/apis/samplecontroller/v1alpha1"
	"github.com/kubehandler/kubehandler/sample-controller/pkg/generated/clientset/versioned"
	"github.com/kubehandler/kubehandler/sample-controller/pkg/generated/clientset/versioned/fake"
	listers "github.com/kubehandler/kubehandler/sample-controller/pkg/generated/listers/samplecontroller/v1alpha1"
)

// loopFixture runs the Foo and Deployment handlers on a real EventLoop over
// in-memory sources (kubehandlertest): real informers list and watch them,
// and the fake clientsets' requests are answered from them, with the API
// server's resourceVersions, conflicts, generations and status
// subresource. What the handlers write comes back to them as events, as on
// a cluster. A third handler plays the Deployment controller: it reports
// each Deployment's generation as observed.
type loopFixture struct {
	foos        *kubehandlertest.TypedSource[*samplev1alpha1.Foo]
	deployments *kubehandlertest.TypedSource[*appsv1.Deployment]
	fooClient   versioned.Interface
	// calls records the Foo handler's calls; it fails the test if two
	// calls of one Foo overlap.
	calls *kubehandlertest.Recorder
}

func newLoopFixture(t *testing.T) *loopFixture {
	t.Helper()
	f := &loopFixture{
		foos:        kubehandlertest.NewTypedSource[*samplev1alpha1.Foo](func() runtime.Object { return &samplev1alpha1.FooList{} }),
		deployments: kubehandlertest.NewTypedSource[*appsv1.Deployment](func() runtime.Object { return &appsv1.DeploymentList{} }),
	}
	kubeClient := kubefake.NewClientset()
	f.deployments.Serve(kubeClient, "deployments")
	fooClient := fake.NewSimpleClientset()
	f.foos.Serve(fooClient, "foos")
	f.fooClient = fooClient

	fooInformer, deploymentInformer := f.foos.Informer(t), f.deployments.Informer(t)
	foos := listers.NewFooLister(fooInformer.GetIndexer())
	deployments := appslisters.NewDeploymentLister(deploymentInformer.GetIndexer())
	f.calls = kubehandlertest.Record(t, &FooHandler{
		DefaultHandler: kubehandler.DefaultHandler{Name: "Foo", Informer: fooInformer},
		KubeClient:     kubeClient,
		FooClient:      fooClient,
		Foos:           foos,
		Deployments:    deployments,
	})
	loop := kubehandler.NewEventLoop("loop-test")
	loop.Register(f.calls)
	loop.Register(&DeploymentHandler{
		DefaultHandler: kubehandler.DefaultHandler{Name: "Deployment", Informer: deploymentInformer},
		Deployments:    deployments,
		Foos:           foos,
		FooHandler:     "Foo",
	})
	loop.Register(&deploymentController{
		DefaultHandler: kubehandler.DefaultHandler{Name: "DeploymentController", Informer: deploymentInformer},
		deployments:    deployments,
		client:         kubeClient,
	})
	kubehandlertest.Start(t, loop, 4)
	return f
}

// deploymentController does what kube-controller-manager's Deployment
// controller does that the Foo handler looks at: it sets a Deployment's
// status.observedGeneration to its generation.
type deploymentController struct {
	kubehandler.DefaultHandler
	deployments appslisters.DeploymentLister
	client      *kubefake.Clientset
}

func (c *deploymentController) AddFunc(ctx context.Context, namespace, name string) error {
	return c.UpdateFunc(ctx, namespace, name)
}

func (c *deploymentController) UpdateFunc(ctx context.Context, namespace, name string) error {
	d, err := c.deployments.Deployments(namespace).Get(name)
	if err != nil || d.Status.ObservedGeneration == d.Generation {
		return nil
	}
	d = d.DeepCopy()
	d.Status.ObservedGeneration = d.Generation
	_, err = c.client.AppsV1().Deployments(namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	return err // a conflict is retried, from the newer Deployment
}

// waitReady waits until the Foo ns/name is Ready for the generation it is
// at, and its Deployment has replicas.
func (f *loopFixture) waitReady(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	f.calls.WaitFunc(t, fmt.Sprintf("Foo %s/%s to be Ready with %d replicas", ns, name, replicas), func() bool {
		foo, ok := f.foos.Get(ns, name)
		if !ok {
			return false
		}
		ready := meta.FindStatusCondition(foo.Status.Conditions, ConditionReady)
		d, ok := f.deployments.Get(ns, foo.Spec.DeploymentName)
		return ready != nil && ready.Status == metav1.ConditionTrue && foo.Status.ObservedGeneration == foo.Generation &&
			ok && d.Spec.Replicas != nil && *d.Spec.Replicas == replicas && metav1.IsControlledBy(d, foo)
	})
}

func loopFoo(name string, replicas int32) *samplev1alpha1.Foo {
	return &samplev1alpha1.Foo{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec:       samplev1alpha1.FooSpec{DeploymentName: name, Replicas: ptr.To(replicas)},
	}
}

// TestFooHandlerOnTheLoop: Foos get their Deployments and become Ready;
// a change of spec scales the Deployment; a Deployment deleted by hand, or
// deleted while the informers were not watching (a tombstone after a
// relist), is created again. Every Foo's last call saw its final state, and
// no two calls of one Foo overlapped.
func TestFooHandlerOnTheLoop(t *testing.T) {
	f := newLoopFixture(t)
	ctx := t.Context()
	foos := f.fooClient.SamplecontrollerV1alpha1().Foos("ns")
	for i := range 5 {
		if _, err := foos.Create(ctx, loopFoo(fmt.Sprint("foo-", i), int32(i+1)), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 5 {
		f.waitReady(t, "ns", fmt.Sprint("foo-", i), int32(i+1))
	}

	// A change of spec, written from the Foo as read: generation 2.
	foo, _ := f.foos.Get("ns", "foo-0")
	foo = foo.DeepCopy()
	foo.Spec.Replicas = ptr.To[int32](7)
	if _, err := foos.Update(ctx, foo, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.waitReady(t, "ns", "foo-0", 7)
	if foo, _ := f.foos.Get("ns", "foo-0"); foo.Generation != 2 || foo.Status.ObservedGeneration != 2 {
		t.Errorf("foo-0: generation %d, observed %d; want 2 and 2", foo.Generation, foo.Status.ObservedGeneration)
	}

	// Deleted by hand; deleted unseen, so that the Deployment handler gets
	// a tombstone after the relist.
	f.deployments.Delete("ns", "foo-1")
	f.waitReady(t, "ns", "foo-1", 2)
	before, _ := f.deployments.Get("ns", "foo-2")
	f.deployments.DeleteUnseen("ns", "foo-2")
	f.calls.WaitFunc(t, "foo-2's Deployment to be created again", func() bool {
		d, ok := f.deployments.Get("ns", "foo-2")
		return ok && d.UID != before.UID
	})
	f.waitReady(t, "ns", "foo-2", 3)

	f.calls.Wait(t, f.foos.State("Foo"))
	t.Logf("%d calls of the Foo handler", len(f.calls.Calls()))
}
