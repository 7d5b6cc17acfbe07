package kubehandler_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubehandler/kubehandler"
)

// A Chain runs its steps in order, as one handler. With a Finalizer it adds
// that finalizer to live objects first (through Patch), and removes it once
// every step's delete path is done.
func ExampleChain() {
	client := fake.NewClientset(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", ResourceVersion: "1"},
	})
	factory := informers.NewSharedInformerFactory(client, 0)
	informer := factory.Core().V1().ConfigMaps().Informer()

	done := make(chan struct{})
	chain := &kubehandler.Chain{
		DefaultHandler: kubehandler.DefaultHandler{Name: "configmaps", Informer: informer},
		Steps: []kubehandler.Step{
			kubehandler.StepFunc(func(ctx context.Context, namespace, name string) error {
				fmt.Println("1. ensure the dependent of", namespace+"/"+name)
				return nil
			}),
			kubehandler.StepFunc(func(ctx context.Context, namespace, name string) error {
				fmt.Println("2. nothing to do here")
				return kubehandler.SkipStep()
			}),
			kubehandler.StepFunc(func(ctx context.Context, namespace, name string) error {
				fmt.Println("3. write the status")
				close(done)
				return nil
			}),
		},
		Finalizer: "example.com/cleanup",
		Patch:     kubehandler.ClientPatch(client.CoreV1().ConfigMaps),
	}
	loop := kubehandler.NewEventLoop("example")
	loop.Register(chain)

	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	stopped := make(chan error)
	go func() { stopped <- loop.Run(ctx, 1) }()
	<-done
	cancel()
	<-stopped
	factory.Shutdown()

	cm, _ := client.CoreV1().ConfigMaps("default").Get(context.Background(), "web", metav1.GetOptions{})
	fmt.Println("finalizers:", cm.Finalizers)
	// Output:
	// 1. ensure the dependent of default/web
	// 2. nothing to do here
	// 3. write the status
	// finalizers: [example.com/cleanup]
}

// A step that finds nothing to do returns SkipStep, from wherever it is
// decided: the chain goes on with the next step.
func ExampleSkipStep() {
	ensureDependent := func(ctx context.Context, namespace, name string) error {
		if err := checkUpToDate(name); err != nil {
			return fmt.Errorf("checking %s: %w", name, err) // wrapping is fine
		}
		fmt.Println("creating the dependent of", name)
		return nil
	}
	chain := &kubehandler.Chain{Steps: []kubehandler.Step{
		kubehandler.StepFunc(ensureDependent),
		kubehandler.StepFunc(func(ctx context.Context, namespace, name string) error {
			fmt.Println("writing the status of", name)
			return nil
		}),
	}}
	fmt.Println(chain.UpdateFunc(context.Background(), "default", "current"))
	// Output:
	// writing the status of current
	// <nil>
}

func checkUpToDate(name string) error {
	if name == "current" {
		return kubehandler.SkipStep()
	}
	return nil
}

// CancelChain ends the handling of an event as a success: no later step
// runs. This is how a pause step (handlers/pause works this way as a step)
// stops everything after it for a paused object.
func ExampleCancelChain() {
	pause := kubehandler.StepFunc(func(ctx context.Context, namespace, name string) error {
		if name == "paused" { // a real step reads the object's labels
			fmt.Println(name, "is paused")
			return kubehandler.CancelChain()
		}
		return nil
	})
	reconcile := kubehandler.StepFunc(func(ctx context.Context, namespace, name string) error {
		fmt.Println("reconciling", name)
		return nil
	})
	chain := &kubehandler.Chain{Steps: []kubehandler.Step{pause, reconcile}}
	fmt.Println(chain.UpdateFunc(context.Background(), "default", "paused"))
	fmt.Println(chain.UpdateFunc(context.Background(), "default", "running"))
	// Output:
	// paused is paused
	// <nil>
	// reconciling running
	// <nil>
}

// On the delete path, a step whose cleanup is not finished returns
// KeepFinalizer: the chain leaves its finalizer on, so the object stays,
// and the delete path runs again after the delay. No error is reported.
func ExampleKeepFinalizer() {
	dependentsLeft := 2
	cleanup := kubehandler.DeleteStepFunc(func(ctx context.Context, namespace, name string) error {
		if dependentsLeft > 0 {
			dependentsLeft-- // a real step deletes them, then waits
			return kubehandler.KeepFinalizer(10 * time.Second)
		}
		return nil
	})
	chain := &kubehandler.Chain{Steps: []kubehandler.Step{cleanup}}
	for {
		err := chain.DeleteFunc(context.Background(), "default", "web")
		fmt.Println(err)
		if !kubehandler.IsKeepFinalizer(err) {
			break
		}
	}
	// Output:
	// keep the finalizer; requeue after 10s
	// keep the finalizer; requeue after 10s
	// <nil>
}

// A failing step stops the chain; the error names the step, and the loop
// retries the whole chain through its rate limiter (a Terminal error is not
// retried).
func ExampleChain_failure() {
	chain := &kubehandler.Chain{Steps: []kubehandler.Step{
		kubehandler.StepFunc(func(context.Context, string, string) error { return nil }),
		kubehandler.StepFunc(func(context.Context, string, string) error { return errors.New("quota exceeded") }),
		kubehandler.StepFunc(func(context.Context, string, string) error { panic("never reached") }),
	}}
	fmt.Println(chain.AddFunc(context.Background(), "default", "web"))
	// Output: kubehandler: chain step 2/3 (kubehandler.StepFunc): quota exceeded
}
