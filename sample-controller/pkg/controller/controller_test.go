package controller

import (
	"context"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"

	samplev1alpha1 "github.com/kubehandler/kubehandler/sample-controller/pkg/apis/samplecontroller/v1alpha1"
	"github.com/kubehandler/kubehandler/sample-controller/pkg/generated/clientset/versioned/fake"
)

// TestControllerRun runs the whole controller on fake clientsets: a Foo
// gets its Deployment and the cascade handler's finalizer, and Run returns
// nil, with every goroutine stopped (goleak), once its context is cancelled.
func TestControllerRun(t *testing.T) {
	foo := newFoo("foo", 2)
	kubeClient := kubefake.NewClientset()
	fooClient := fake.NewSimpleClientset(foo)
	scheme := runtime.NewScheme()
	if err := samplev1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	dynamicClient := dynamicfake.NewSimpleDynamicClient(scheme, foo)
	ctl, err := New(Config{KubeClient: kubeClient, FooClient: fooClient, DynamicClient: dynamicClient})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- ctl.Run(ctx, 2) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	err = wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		d, err := kubeClient.AppsV1().Deployments(foo.Namespace).Get(ctx, foo.Spec.DeploymentName, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return *d.Spec.Replicas == 2 && metav1.IsControlledBy(d, foo), nil
	})
	if err != nil {
		t.Fatalf("waiting for the Foo's Deployment: %v", err)
	}
	err = wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		u, err := dynamicClient.Resource(samplev1alpha1.SchemeGroupVersion.WithResource("foos")).Namespace(foo.Namespace).Get(ctx, foo.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		return slices.Contains(u.GetFinalizers(), Finalizer), nil
	})
	if err != nil {
		t.Fatalf("waiting for the finalizer %s: %v", Finalizer, err)
	}
	if err := ctl.Readiness(nil); err != nil {
		t.Errorf("Readiness while the controller works: %v", err)
	}
	if err := ctl.Liveness(nil); err != nil {
		t.Errorf("Liveness while the controller works: %v", err)
	}
	if err := ctl.Run(t.Context(), 1); err == nil {
		t.Error("a second Run returned nil, want an error")
	}
}

func TestNewNeedsClients(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without clients returned no error")
	}
}
