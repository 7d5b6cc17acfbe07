package kubehandler_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// RetryUpTo(n): a handler that always fails is called n+1 times (retries 0
// to n), then Run stops with an error wrapping the handler's.
func TestRetryUpToStopsTheLoop(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			f := newFixture(t)
			h := newRecorder(f.informer, "cm")
			h.Fn = func(context.Context, kubehandler.Event) error { return fmt.Errorf("wrapped: %w", errBoom) }
			loop := kubehandler.NewEventLoop("retry-up-to", fastRetries(), kubehandler.WithErrorHandler(kubehandler.RetryUpTo(n)))
			loop.Register(h)
			r := kubehandlertest.Start(t, loop, 2)
			f.source.Create(configMap("ns", "doomed", "1"))
			if err := r.Wait(t); !errors.Is(err, errBoom) {
				t.Fatalf("Run = %v, want an error wrapping the handler's", r.Err())
			}
			calls := h.Calls()
			if len(calls) != n+1 {
				t.Fatalf("handler called %d times, want %d", len(calls), n+1)
			}
			for i, c := range calls {
				if c.Retries != i {
					t.Errorf("call %d has Retries %d, want %d", i, c.Retries, i)
				}
			}
		})
	}
}

// ErrorActionIgnore drops only that failure: no retry, and the next event for
// the key dispatches again, counting retries from 0.
func TestErrorActionIgnore(t *testing.T) {
	f := newFixture(t)
	h := newRecorder(f.informer, "cm")
	var failed atomic.Bool
	h.Fn = func(context.Context, kubehandler.Event) error {
		if failed.CompareAndSwap(false, true) {
			return errBoom
		}
		return nil
	}
	var asked atomic.Int32
	ignore := func(kubehandler.Key, int, error) kubehandler.ErrorAction {
		asked.Add(1)
		return kubehandler.ErrorActionIgnore
	}
	reg, gather := newRegistry()
	loop := kubehandler.NewEventLoop("ignore", kubehandler.WithErrorHandler(ignore), kubehandler.WithMetrics(reg))
	loop.Register(h)
	kubehandlertest.Start(t, loop, 1)

	f.source.Create(configMap("ns", "a", "1"))
	eventually(t, "failure counted", func() bool { return gather().calls("ignore", "cm", "add", "error") == 1 })
	if got := gather().value("workqueue_retries_total", "ignore"); got != 0 {
		t.Errorf("an ignored failure was requeued: workqueue_retries_total = %v", got)
	}
	rv := f.source.Update(configMap("ns", "a", "2"))
	eventually(t, "next event dispatched", func() bool { return len(h.Calls()) == 2 })
	c := h.Calls()
	if c[0].Retries != 0 || c[1].Retries != 0 || c[1].ResourceVersion() != rv || c[1].Type != kubehandler.WorkqueueUpdateEvent {
		t.Errorf("calls = %+v, want the add then the update, both with Retries 0", c)
	}
	if asked.Load() != 1 {
		t.Errorf("ErrorHandler asked %d times, want 1", asked.Load())
	}
}

// Failures are retried with growing backoff from the rate limiter, measured
// on the loop's clock, and Event.Retries counts them.
func TestRetriesBackOff(t *testing.T) {
	f := newFixture(t)
	clock := clocktesting.NewFakeClock(time.Now())
	h := newRecorder(f.informer, "cm")
	var mu sync.Mutex
	var seen []time.Time
	h.Fn = func(ctx context.Context, ev kubehandler.Event) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, clock.Now())
		if ev.Retries < 3 {
			return errBoom
		}
		return nil
	}
	loop := kubehandler.NewEventLoop("backoff", kubehandler.WithClock(clock))
	loop.Register(h)
	kubehandlertest.Start(t, loop, 1)
	f.source.Create(configMap("ns", "a", "1"))
	eventually(t, "four calls", func() bool {
		if len(h.Calls()) == 4 {
			return true
		}
		clock.Step(time.Millisecond)
		return false
	})
	mu.Lock()
	defer mu.Unlock()
	// The default limiter waits 5ms, 10ms, 20ms.
	for i, want := range []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond} {
		if d := seen[i+1].Sub(seen[i]); d < want {
			t.Errorf("retry %d came after %s, want at least %s", i+1, d, want)
		}
	}
	for i, c := range h.Calls() {
		if c.Retries != i {
			t.Errorf("call %d: Retries = %d, want %d", i, c.Retries, i)
		}
	}
}
