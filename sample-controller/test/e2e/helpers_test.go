package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"github.com/kubehandler/kubehandler"
	samplev1alpha1 "github.com/kubehandler/kubehandler/sample-controller/pkg/apis/samplecontroller/v1alpha1"
	"github.com/kubehandler/kubehandler/sample-controller/pkg/controller"
	"github.com/kubehandler/kubehandler/sample-controller/pkg/generated/clientset/versioned"
)

// clients are the clients of one test, made from the lab's configuration.
type clients struct {
	kube    kubernetes.Interface
	foo     versioned.Interface
	dynamic dynamic.Interface
}

func newClients(t testing.TB, cfg *rest.Config) clients {
	t.Helper()
	return clients{
		kube:    kubernetes.NewForConfigOrDie(cfg),
		foo:     versioned.NewForConfigOrDie(cfg),
		dynamic: dynamic.NewForConfigOrDie(cfg),
	}
}

// newNamespace creates a namespace for the test, named after it, deleted
// when the test ends. Call it before starting a controller: when the test
// ends, the controller stops first, then the namespace's Foos lose their
// finalizers and the namespace is deleted, so that no Foo is left for the
// next test's controller to finish.
func newNamespace(t *testing.T, c clients) string {
	t.Helper()
	prefix := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	if len(prefix) > 40 {
		prefix = prefix[:40]
	}
	ns, err := c.kube.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: strings.Trim(prefix, "-") + "-" + rand.String(5)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.WithoutCancel(t.Context())
		foos := c.foo.SamplecontrollerV1alpha1().Foos(ns.Name)
		list, err := foos.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Errorf("listing the Foos of namespace %s: %v", ns.Name, err)
		}
		for _, foo := range list.Items {
			if len(foo.Finalizers) == 0 {
				continue
			}
			_, err := foos.Patch(ctx, foo.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("removing the finalizers of Foo %s/%s: %v", ns.Name, foo.Name, err)
			}
		}
		// Not waited for: the namespace controller finishes it.
		if err := c.kube.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting namespace %s: %v", ns.Name, err)
		}
	})
	return ns.Name
}

// runningController is a controller run in this process by a test.
type runningController struct {
	metrics *prometheus.Registry
	ctl     *controller.Controller
	cancel  context.CancelFunc
	done    chan error
}

// startController runs the sample controller in this process until the
// test ends, and waits until its informers have synced. The test fails if
// Run returns an error. The controller acts as the ServiceAccount of
// artifacts/deploy, with the permissions its RBAC grants.
func startController(t *testing.T) *runningController {
	t.Helper()
	cfg := labConfig()
	cfg.Impersonate.UserName = serviceAccount
	c := newClients(t, cfg)
	r := &runningController{metrics: prometheus.NewRegistry(), done: make(chan error, 1)}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := samplev1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	recorder, stopRecorder := kubehandler.NewEventRecorder(c.kube.CoreV1(), scheme, controller.Name)
	t.Cleanup(stopRecorder) // after the controller has stopped (cleanups run last first)
	var err error
	r.ctl, err = controller.New(controller.Config{
		KubeClient:    c.kube,
		FooClient:     c.foo,
		DynamicClient: c.dynamic,
		LoopOptions:   []kubehandler.Option{kubehandler.WithMetrics(r.metrics)},
		EventRecorder: recorder,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	r.cancel = cancel
	go func() { r.done <- r.ctl.Run(ctx, 4) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-r.done; err != nil {
				t.Errorf("controller.Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	poll(t, 30*time.Second, "the controller's informers to sync", func() (bool, error) {
		select {
		case err := <-r.done:
			r.done <- err
			return false, fmt.Errorf("controller.Run returned early: %v", err)
		default:
		}
		return r.ctl.Readiness(nil) == nil, nil
	})
	return r
}

// calls returns how many calls the controller's handler has returned from,
// whatever the result.
func (r *runningController) calls(t *testing.T, handler string) int {
	t.Helper()
	families, err := r.metrics.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, f := range families {
		if f.GetName() != "kubehandler_handler_calls_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if label(m, "handler") == handler {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return int(n)
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// poll calls cond every 100ms until it returns true, and fails the test if
// that takes longer than timeout or cond returns an error. The last error
// cond returned is in the message.
func poll(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	if err := pollErr(timeout, cond); err != nil {
		t.Fatalf("waiting %s for %s: %v", timeout, what, err)
	}
}

func pollErr(timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		ok, err := cond()
		if err != nil && !isRetryable(err) {
			return false, err
		}
		last = err
		return ok, nil
	})
	if err != nil && last != nil {
		return fmt.Errorf("%w (last: %v)", err, last)
	}
	return err
}

// isRetryable reports errors a poll goes on after: an object not there yet,
// or a condition not met yet (notYet).
func isRetryable(err error) bool {
	_, ok := err.(notYet)
	return ok || apierrors.IsNotFound(err) || apierrors.IsConflict(err)
}

// notYet is an error a poll condition returns to say why it is not done.
type notYet string

func (e notYet) Error() string { return string(e) }

func notYetf(format string, args ...any) error { return notYet(fmt.Sprintf(format, args...)) }
