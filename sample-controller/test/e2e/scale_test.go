package e2e

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	samplev1alpha1 "github.com/kubehandler/kubehandler/sample-controller/pkg/apis/samplecontroller/v1alpha1"
)

// TestManyFoos creates 200 Foos at once and reports how long it takes until
// all are Ready.
func TestManyFoos(t *testing.T) {
	const n = 200
	c := newClients(t, labConfig())
	ns := newNamespace(t, c)
	startController(t)

	start := time.Now()
	createFoos(t, c, ns, "foo", n)
	created := time.Since(start)
	waitForAllReady(t, c, ns, n, 2*time.Minute)
	report(t, "%d Foos created in %s, all Ready %s after the first create", n, created.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// createFoos creates Foos prefix-0 ... prefix-(n-1), with 1 replica, from
// 20 goroutines.
func createFoos(t *testing.T, c clients, ns, prefix string, n int) {
	t.Helper()
	foos := c.foo.SamplecontrollerV1alpha1().Foos(ns)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int)
	for range 20 {
		wg.Go(func() {
			for i := range next {
				if _, err := foos.Create(t.Context(), newFoo(ns, fmt.Sprintf("%s-%d", prefix, i), 1), metav1.CreateOptions{}); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// waitForAllReady waits until the namespace has n Foos, each Ready at its
// current generation with a Deployment of its replicas.
func waitForAllReady(t *testing.T, c clients, ns string, n int, timeout time.Duration) {
	t.Helper()
	poll(t, timeout, fmt.Sprintf("%d Foos Ready", n), func() (bool, error) {
		list, err := c.foo.SamplecontrollerV1alpha1().Foos(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		if len(list.Items) != n {
			return false, notYetf("%d Foos", len(list.Items))
		}
		notReady := 0
		var example *samplev1alpha1.Foo
		for i := range list.Items {
			if ok, _ := isReady(&list.Items[i], list.Items[i].Generation); !ok {
				notReady++
				example = &list.Items[i]
			}
		}
		if notReady > 0 {
			_, why := isReady(example, example.Generation)
			return false, notYetf("%d not Ready, e.g. %s: %v", notReady, example.Name, why)
		}
		deployments, err := c.kube.AppsV1().Deployments(ns).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		replicas := map[string]int32{}
		for _, d := range deployments.Items {
			replicas[d.Name] = *d.Spec.Replicas
		}
		for _, f := range list.Items {
			if got, ok := replicas[f.Spec.DeploymentName]; !ok || got != *f.Spec.Replicas {
				return false, fmt.Errorf("Foo %s is Ready, but its Deployment has %d replicas (exists: %v), want %d", f.Name, got, ok, *f.Spec.Replicas)
			}
		}
		return true, nil
	})
}

// report logs a figure, and prints it where `go test` without -v shows it.
func report(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	t.Log(msg)
	fmt.Fprintf(os.Stderr, "e2e: %s: %s\n", t.Name(), msg)
}
