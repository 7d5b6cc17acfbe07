package controller

import (
	"context"

	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	kubeinformers "k8s.io/client-go/informers"
	kubefake "k8s.io/client-go/kubernetes/fake"
	core "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/handlers/pause"
	samplev1alpha1 "github.com/kubehandler/kubehandler/sample-controller/pkg/apis/samplecontroller/v1alpha1"
	"github.com/kubehandler/kubehandler/sample-controller/pkg/generated/clientset/versioned/fake"
	informers "github.com/kubehandler/kubehandler/sample-controller/pkg/generated/informers/externalversions"
)

// fixture holds fake clientsets and listers filled with objects, as
// kubernetes/sample-controller's tests do: the handlers read the listers and
// write through the clients, and the tests look at the clients' actions.
type fixture struct {
	t          *testing.T
	kubeClient *kubefake.Clientset
	fooClient  *fake.Clientset
	foos       *FooHandler
	deploys    *DeploymentHandler
	recorder   *record.FakeRecorder
}

func newFixture(t *testing.T, foos []*samplev1alpha1.Foo, deployments []*appsv1.Deployment) *fixture {
	t.Helper()
	var kubeObjects, fooObjects []runtime.Object
	for _, d := range deployments {
		kubeObjects = append(kubeObjects, d)
	}
	for _, f := range foos {
		fooObjects = append(fooObjects, f)
	}
	f := &fixture{
		t:          t,
		kubeClient: kubefake.NewClientset(kubeObjects...),
		fooClient:  fake.NewSimpleClientset(fooObjects...),
		recorder:   record.NewFakeRecorder(10),
	}
	kubeInformers := kubeinformers.NewSharedInformerFactory(f.kubeClient, 0)
	fooInformers := informers.NewSharedInformerFactory(f.fooClient, 0)
	fooInformer := fooInformers.Samplecontroller().V1alpha1().Foos()
	deploymentInformer := kubeInformers.Apps().V1().Deployments()
	for _, foo := range foos {
		if err := fooInformer.Informer().GetIndexer().Add(foo); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range deployments {
		if err := deploymentInformer.Informer().GetIndexer().Add(d); err != nil {
			t.Fatal(err)
		}
	}
	f.foos = &FooHandler{
		DefaultHandler: kubehandler.DefaultHandler{Name: "Foo", Informer: fooInformer.Informer()},
		KubeClient:     f.kubeClient,
		FooClient:      f.fooClient,
		Foos:           fooInformer.Lister(),
		Deployments:    deploymentInformer.Lister(),
		Recorder:       f.recorder,
	}
	f.deploys = &DeploymentHandler{
		DefaultHandler: kubehandler.DefaultHandler{Name: "Deployment", Informer: deploymentInformer.Informer()},
		Deployments:    deploymentInformer.Lister(),
		Foos:           fooInformer.Lister(),
		FooHandler:     "Foo",
		// Outside a loop there is nothing to queue on: sync at once.
		Enqueue: func(ctx context.Context, key kubehandler.Key) (bool, error) {
			return true, f.foos.Sync(ctx, key.Namespace, key.Name)
		},
		Paused: func(foo *samplev1alpha1.Foo) bool { return pause.IsPaused(foo, PauseLabel) },
	}
	return f
}

// writes returns the clients' actions other than reads.
func (f *fixture) writes() []core.Action {
	var out []core.Action
	for _, a := range append(f.kubeClient.Actions(), f.fooClient.Actions()...) {
		switch a.GetVerb() {
		case "get", "list", "watch":
			continue
		}
		out = append(out, a)
	}
	return out
}

func newFoo(name string, replicas int32) *samplev1alpha1.Foo {
	return &samplev1alpha1.Foo{
		TypeMeta: metav1.TypeMeta{APIVersion: samplev1alpha1.SchemeGroupVersion.String(), Kind: "Foo"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            name,
			Namespace:       metav1.NamespaceDefault,
			UID:             types.UID(name + "-uid"),
			Generation:      3,
			ResourceVersion: "10",
		},
		Spec: samplev1alpha1.FooSpec{DeploymentName: name + "-deployment", Replicas: ptr.To(replicas)},
	}
}

// deploymentOf returns the Deployment foo asks for, as the Deployment
// controller leaves it once it has observed it.
func deploymentOf(foo *samplev1alpha1.Foo) *appsv1.Deployment {
	d := newDeployment(foo)
	d.Generation = 1
	d.ResourceVersion = "20"
	d.Status.ObservedGeneration = 1
	return d
}

// events returns the reasons of the Events recorded, with their types.
func (f *fixture) events() []string {
	var out []string
	for {
		select {
		case e := <-f.recorder.Events:
			typ, rest, _ := strings.Cut(e, " ")
			reason, _, _ := strings.Cut(rest, " ")
			out = append(out, typ+" "+reason)
		default:
			return out
		}
	}
}
