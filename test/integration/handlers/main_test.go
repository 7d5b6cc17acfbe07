// Package handlers tests the ready-made handlers (handlers/pause,
// handlers/cascade) against a real kube-apiserver, etcd and
// kube-controller-manager (hack/kubelab): the status subresource, foreground
// deletion by the garbage collector, and finalizers, as a cluster does them.
package handlers

import (
	"context"
	_ "embed"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic/dynamicinformer"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
	"github.com/kubehandler/kubehandler/kubelabtest"
)

// projectCRD is the upstream resource: namespaced, with a status
// subresource whose status holds []metav1.Condition.
//
//go:embed testdata/project-crd.yaml
var projectCRD []byte

var (
	projects   = schema.GroupVersionResource{Group: "handlers.test.kubehandler.dev", Version: "v1", Resource: "projects"}
	configMaps = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

func TestMain(m *testing.M) {
	kubelabtest.Main(m, kubelabtest.Options{ControllerManager: true, CRDs: [][]byte{projectCRD}})
}

// newProject returns a Project ns/name to create.
func newProject(ns, name string) *unstructured.Unstructured {
	p := &unstructured.Unstructured{Object: map[string]interface{}{"spec": map[string]interface{}{"size": int64(1)}}}
	p.SetAPIVersion("handlers.test.kubehandler.dev/v1")
	p.SetKind("Project")
	p.SetNamespace(ns)
	p.SetName(name)
	return p
}

// informers returns a factory of informers of namespace ns ("" for all),
// started by runLoop.
func informers(ns string) dynamicinformer.DynamicSharedInformerFactory {
	return dynamicinformer.NewFilteredDynamicSharedInformerFactory(kubelabtest.Default().Dynamic(), 0, ns, nil)
}

// runLoop registers handlers on a loop and runs it, with factory, until the
// test ends.
func runLoop(t *testing.T, factory dynamicinformer.DynamicSharedInformerFactory, handlers ...kubehandler.EventHandler) {
	t.Helper()
	loop := kubehandler.NewEventLoop("handlers-" + t.Name())
	for _, h := range handlers {
		loop.Register(h)
	}
	kubehandlertest.Start(t, loop, 2, factory)
	// Return once the handlers have seen the informers' initial lists, so
	// that what the test does from now on reaches them as live events.
	ready := kubehandler.Readiness(loop)
	poll(t, "the loop is ready", func(context.Context) (bool, error) { return ready(nil) == nil, nil })
}

// poll waits up to 30 seconds for cond; an error from cond fails the test.
func poll(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 30*time.Second, true, cond); err != nil {
		t.Fatalf("waiting until %s: %v", what, err)
	}
}

// get returns the object ns/name of resource, or nil if it does not exist.
func get(ctx context.Context, resource schema.GroupVersionResource, ns, name string) (*unstructured.Unstructured, error) {
	obj, err := kubelabtest.Default().Dynamic().Resource(resource).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return obj, err
}
