package kubehandler_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/internal/looptest"
	"github.com/kubehandler/kubehandler/internal/memsource"
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
	source := memsource.New(func() runtime.Object { return &corev1.ConfigMapList{} })
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
	r := looptest.Start(t, loop, 1)
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

func TestProbesOfForeignLoops(t *testing.T) {
	if err := kubehandler.Readiness(struct{}{})(nil); err == nil {
		t.Error("Readiness of something else passed")
	}
	if kubehandler.IsLeader(nil) {
		t.Error("IsLeader(nil)")
	}
}

// WithDrainTimeout: Run returns after the timeout with an error naming the
// call still running; the call goes on, and a new Run leaves its key alone
// until it returns, then dispatches what arrived meanwhile.
func TestDrainTimeout(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Now())
	q := kubehandler.NewWorkQueue("drain", kubehandler.WithDrainTimeout(10*time.Second), kubehandler.WithClock(clock))
	entered, release := make(chan struct{}, 2), make(chan struct{})
	var calls, stuckInFlight, overlaps atomic.Int32
	q.RegisterAddHandler("k", func(ctx context.Context, namespace, name string) error {
		if name == "stuck" {
			if stuckInFlight.Add(1) > 1 {
				overlaps.Add(1)
			}
			defer stuckInFlight.Add(-1)
		}
		if calls.Add(1) == 1 {
			entered <- struct{}{}
			<-release // ignores its context: stuck
		}
		return nil
	})
	q.EnqueueAdd("k", "ns/stuck")
	r := looptest.Start(t, q, 2)
	<-entered
	r.Cancel()
	// Step the clock until the drain timer, set once Run starts stopping,
	// runs out.
	eventually(t, "Run returned", func() bool {
		select {
		case <-r.Done():
			return true
		default:
			clock.Step(time.Second)
			return false
		}
	})
	if !errors.Is(r.Err(), kubehandler.ErrDrainTimeout) || !strings.Contains(r.Err().Error(), "k/ns/stuck (running for") {
		t.Fatalf("Run = %v, want ErrDrainTimeout naming k/ns/stuck", r.Err())
	}

	// A new event for the stuck key while a second Run runs: held until the
	// stuck call returns.
	q.EnqueueAdd("k", "ns/stuck")
	r2 := looptest.Start(t, q, 2)
	q.EnqueueAdd("k", "ns/other")
	eventually(t, "other key dispatched", func() bool { return calls.Load() == 2 })
	if q.Length() != 1 {
		t.Errorf("Length = %d, want 1: the stuck key's new event waits", q.Length())
	}
	close(release)
	eventually(t, "stuck key dispatched again", func() bool { return calls.Load() == 3 })
	if overlaps.Load() != 0 {
		t.Error("two calls of one key ran at once across Runs")
	}
	if err := r2.Stop(); err != nil {
		t.Fatal(err)
	}
}

// Eventf records an Event about the object of the call through the
// recorder given with WithEventRecorder.
func TestEventf(t *testing.T) {
	rec := record.NewFakeRecorder(10)
	q := kubehandler.NewWorkQueue("events", kubehandler.WithEventRecorder(rec))
	q.RegisterAddHandler("cm", func(ctx context.Context, namespace, name string) error {
		kubehandler.Eventf(ctx, corev1.EventTypeNormal, "Handled", "handled %s", name)
		return nil
	})
	q.EnqueueAdd("cm", configMap("ns", "a", "1"))
	q.EnqueueAdd("cm", "ns/no-object") // a bare key: nothing to record about
	looptest.Start(t, q, 1)
	select {
	case ev := <-rec.Events:
		if ev != "Normal Handled handled a" {
			t.Errorf("event %q", ev)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no event recorded")
	}
	eventually(t, "both handled", func() bool { return q.Length() == 0 })
	select {
	case ev := <-rec.Events:
		t.Errorf("unexpected event %q", ev)
	default:
	}
	kubehandler.Eventf(t.Context(), corev1.EventTypeNormal, "Outside", "not in a call") // must not panic
}

func TestLeaderElectionConfigErrors(t *testing.T) {
	client := fake.NewClientset()
	tests := []struct {
		name string
		le   kubehandler.LeaderElection
		want string
	}{
		{"no client", kubehandler.LeaderElection{Namespace: "ns", Name: "lease"}, "no Client"},
		{"no name", kubehandler.LeaderElection{Client: client.CoordinationV1(), Namespace: "ns"}, "namespace and a name"},
		{"renew deadline too long", kubehandler.LeaderElection{Client: client.CoordinationV1(), Namespace: "ns", Name: "lease",
			LeaseDuration: time.Second, RenewDeadline: 2 * time.Second}, "leaseDuration must be greater than renewDeadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := kubehandler.NewWorkQueue("le", kubehandler.WithLeaderElection(tt.le))
			if err := q.Run(t.Context(), 1); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// Two loops on one Lease of a fake clientset: one leads and dispatches, the
// other stands by; when the leader's Run is cancelled it releases the lease
// and the standby takes over, dispatching what it queued meanwhile.
func TestLeaderElectionHandsOver(t *testing.T) {
	client := fake.NewClientset()
	le := func(id string) kubehandler.Option {
		return kubehandler.WithLeaderElection(kubehandler.LeaderElection{
			Client: client.CoordinationV1(), Namespace: "ns", Name: "lease", Identity: id,
			LeaseDuration: time.Hour, RenewDeadline: 50 * time.Minute, RetryPeriod: 20 * time.Millisecond,
		})
	}
	var handled [2]atomic.Int32
	queues := make([]kubehandler.WorkQueue, 2)
	for i := range queues {
		queues[i] = kubehandler.NewWorkQueue("le", le([]string{"a", "b"}[i]))
		queues[i].RegisterAddHandler("k", func(context.Context, string, string) error { handled[i].Add(1); return nil })
		queues[i].EnqueueAdd("k", "ns/x")
	}
	first := looptest.Start(t, queues[0], 1)
	eventually(t, "a leads", func() bool { return handled[0].Load() == 1 })
	second := looptest.Start(t, queues[1], 1)
	eventually(t, "b stands by, ready", func() bool { return kubehandler.Readiness(queues[1])(nil) == nil })
	if kubehandler.IsLeader(queues[1]) || handled[1].Load() != 0 {
		t.Fatal("the standby dispatches")
	}
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	// The lease was released: b takes over within a few retry periods,
	// not the hour-long lease duration.
	eventually(t, "b leads", func() bool { return handled[1].Load() == 1 })
	if !kubehandler.IsLeader(queues[1]) {
		t.Error("b dispatches but is not the leader")
	}
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
}
