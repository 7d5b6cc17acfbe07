package kubehandler_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

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
	r := kubehandlertest.Start(t, q, 2)
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
	r2 := kubehandlertest.Start(t, q, 2)
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

// Promise 6: on cancel, Run waits for the call in flight (whose context is
// cancelled) to return, and leaves no goroutine behind.
func TestRunWaitsForInFlightCalls(t *testing.T) {
	f := newFixture(t)
	h := newRecorder(f.informer, "cm")
	sawCancel, release := make(chan struct{}), make(chan struct{})
	h.Fn = func(ctx context.Context, ev kubehandler.Event) error {
		<-ctx.Done()
		close(sawCancel)
		<-release
		return nil
	}
	loop := kubehandler.NewEventLoop("cancel")
	loop.Register(h)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- loop.Run(ctx, 2) }()

	f.source.Create(configMap("ns", "slow", "1"))
	eventually(t, "call in flight", func() bool { return len(h.Calls()) == 1 })
	cancel()
	<-sawCancel
	select {
	case err := <-errc:
		t.Fatalf("Run returned (%v) while a call was in flight", err)
	default:
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatalf("Run after cancel = %v, want nil", err)
	}
	goleak.VerifyNone(t, goleak.IgnoreCurrent())
}

func TestSecondConcurrentRunFails(t *testing.T) {
	f := newFixture(t)
	loop := kubehandler.NewEventLoop("twice")
	h := newRecorder(f.informer, "cm")
	loop.Register(h)
	r := kubehandlertest.Start(t, loop, 1)
	f.source.Create(configMap("ns", "a", "1"))
	eventually(t, "first Run dispatching", func() bool { return len(h.Calls()) == 1 })
	if err := loop.Run(t.Context(), 1); err == nil || !contains(err.Error(), "already running") {
		t.Fatalf("second Run = %v, want 'already running'", err)
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("first Run = %v", err)
	}
	// Once the first Run has returned, the loop may run again, and events
	// that arrived in between are dispatched.
	f.source.Update(configMap("ns", "a", "2"))
	r = kubehandlertest.Start(t, loop, 1)
	eventually(t, "second Run dispatching", func() bool { return len(h.Calls()) >= 2 })
	if err := r.Stop(); err != nil {
		t.Fatalf("Run after Run = %v", err)
	}
}
