package kubehandler_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// probe returns the status code and body of check served by ProbeHandler.
func probe(t *testing.T, check func(*http.Request) error) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	kubehandler.ProbeHandler(check).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	return rec.Code, strings.TrimSpace(rec.Body.String())
}

// Readiness: not running, waiting for caches, ready; Liveness: fine until a
// call runs longer than the bound.
func TestReadinessAndLiveness(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Now())
	source := kubehandlertest.NewSource(func() runtime.Object { return &corev1.ConfigMapList{} })
	informer := cache.NewSharedIndexInformer(source, &corev1.ConfigMap{}, 0, cache.Indexers{})
	h := newRecorder(informer, "cm")
	entered, release := make(chan struct{}), make(chan struct{})
	h.Fn = func(ctx context.Context, ev kubehandler.Event) error {
		close(entered)
		<-release
		return nil
	}
	loop := kubehandler.NewEventLoop("health", kubehandler.WithLivenessTimeout(time.Minute), kubehandler.WithClock(clock))
	loop.Register(h)
	ready, live := kubehandler.Readiness(loop), kubehandler.Liveness(loop)

	if code, body := probe(t, ready); code != http.StatusServiceUnavailable || !strings.Contains(body, "not running") {
		t.Errorf("before Run: readiness %d %q", code, body)
	}
	if code, _ := probe(t, live); code != http.StatusOK {
		t.Errorf("before Run: liveness %d", code)
	}
	r := kubehandlertest.Start(t, loop, 1)
	eventually(t, "waiting for caches", func() bool {
		_, body := probe(t, ready)
		return strings.Contains(body, "waiting for its caches to sync")
	})
	if kubehandler.IsLeader(loop) {
		t.Error("IsLeader before the caches synced")
	}
	// Start the informer: the caches sync and the loop is ready.
	f := &fixture{source: source, informer: informer}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.informer.RunWithContext(ctx) }()
	defer func() { cancel(); <-done }()
	eventually(t, "ready", func() bool { code, _ := probe(t, ready); return code == http.StatusOK })
	if !kubehandler.IsLeader(loop) {
		t.Error("a loop without leader election that runs workers is its own leader")
	}

	source.Create(configMap("ns", "stuck", "1"))
	<-entered
	clock.Step(30 * time.Second)
	if code, _ := probe(t, live); code != http.StatusOK {
		t.Errorf("a call running for 30s, bound 1m: liveness %d", code)
	}
	clock.Step(31 * time.Second)
	if code, body := probe(t, live); code != http.StatusServiceUnavailable || !strings.Contains(body, "cm/ns/stuck has been running for 1m1s") {
		t.Errorf("a call running for 61s: liveness %d %q", code, body)
	}
	close(release)
	eventually(t, "live again", func() bool { code, _ := probe(t, live); return code == http.StatusOK })
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if code, _ := probe(t, ready); code != http.StatusServiceUnavailable {
		t.Errorf("after Run: readiness %d", code)
	}
}

// foreignLoop is a Loop this package did not make.
type foreignLoop struct{}

func (foreignLoop) Run(context.Context, int) error { return nil }

// The checks take a Loop; an EventLoop and a WorkQueue are Loops as they
// are. Of a Loop this package did not make, or none, they fail.
func TestProbesOfForeignLoops(t *testing.T) {
	var _ kubehandler.Loop = kubehandler.NewEventLoop("static")
	var _ kubehandler.Loop = kubehandler.NewWorkQueue("static")
	if err := kubehandler.Readiness(foreignLoop{})(nil); err == nil {
		t.Error("Readiness of something else passed")
	}
	if err := kubehandler.Liveness(foreignLoop{})(nil); err == nil {
		t.Error("Liveness of something else passed")
	}
	if kubehandler.IsLeader(foreignLoop{}) {
		t.Error("IsLeader of something else")
	}
	if kubehandler.IsLeader(nil) {
		t.Error("IsLeader(nil)")
	}
	if err := kubehandler.Readiness(nil)(nil); err == nil {
		t.Error("Readiness(nil) passed")
	}
}
