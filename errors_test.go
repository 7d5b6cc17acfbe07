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

var errBoom = errors.New("boom")

// Terminal errors are not retried and the ErrorHandler is not asked; errors.Is
// sees through the wrapper.
func TestTerminalErrorsAreNotRetried(t *testing.T) {
	f := newFixture(t)
	h := newRecorder(f.informer, "cm")
	h.Fn = func(ctx context.Context, ev kubehandler.Event) error {
		if ev.Type == kubehandler.WorkqueueAddEvent {
			return kubehandler.Terminal(errBoom)
		}
		return nil
	}
	var asked atomic.Int32
	reg, gather := newRegistry()
	loop := kubehandler.NewEventLoop("terminal", fastRetries(), kubehandler.WithMetrics(reg),
		kubehandler.WithErrorHandler(func(kubehandler.Key, int, error) kubehandler.ErrorAction {
			asked.Add(1)
			return kubehandler.ErrorActionRetry
		}))
	loop.Register(h)
	kubehandlertest.Start(t, loop, 1)

	f.source.Create(configMap("ns", "a", "1"))
	eventually(t, "terminal counted", func() bool { return gather().calls("terminal", "cm", "add", "terminal") == 1 })
	f.source.Update(configMap("ns", "a", "2"))
	eventually(t, "update dispatched", func() bool { return len(h.Calls()) == 2 })
	if c := h.Calls(); c[1].Type != kubehandler.WorkqueueUpdateEvent {
		t.Errorf("after the terminal add came %s, want the update (the add was retried?)", c[1].Type)
	}
	if asked.Load() != 0 {
		t.Errorf("ErrorHandler asked %d times about a terminal error", asked.Load())
	}
	if got := gather().value("workqueue_retries_total", "terminal"); got != 0 {
		t.Errorf("workqueue_retries_total = %v, want 0", got)
	}
}

func TestTerminalAndIsTerminal(t *testing.T) {
	err := fmt.Errorf("reconcile: %w", kubehandler.Terminal(errBoom))
	if !kubehandler.IsTerminal(err) || !errors.Is(err, errBoom) {
		t.Errorf("IsTerminal=%v errors.Is=%v, want both true", kubehandler.IsTerminal(err), errors.Is(err, errBoom))
	}
	if kubehandler.IsTerminal(errBoom) {
		t.Error("a plain error is not terminal")
	}
	if got := kubehandler.Terminal(errBoom).Error(); got != "terminal error: boom" {
		t.Errorf("Error() = %q", got)
	}
}

// RequeueAfter redelivers the same event after the delay, measured on the
// loop's clock, and resets the key's backoff.
func TestRequeueAfter(t *testing.T) {
	f := newFixture(t)
	clock := clocktesting.NewFakeClock(time.Now())
	h := newRecorder(f.informer, "cm")
	var mu sync.Mutex
	var seen []time.Time
	h.Fn = func(ctx context.Context, ev kubehandler.Event) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, clock.Now())
		if len(seen) == 1 {
			return fmt.Errorf("not yet: %w", kubehandler.RequeueAfter(time.Minute))
		}
		return nil
	}
	reg, gather := newRegistry()
	loop := kubehandler.NewEventLoop("requeue", kubehandler.WithClock(clock), kubehandler.WithMetrics(reg))
	loop.Register(h)
	kubehandlertest.Start(t, loop, 1)

	rv := f.source.Create(configMap("ns", "a", "1"))
	eventually(t, "requeue counted", func() bool { return gather().calls("requeue", "cm", "add", "requeue") == 1 })
	// Step the fake clock until the requeue fires; the delay is measured from
	// when the loop requeued, so any call it makes has seen a minute pass.
	eventually(t, "redelivered", func() bool {
		if len(h.Calls()) == 2 {
			return true
		}
		clock.Step(10 * time.Second)
		return false
	})
	mu.Lock()
	defer mu.Unlock()
	if d := seen[1].Sub(seen[0]); d < time.Minute {
		t.Errorf("redelivered after %s of clock time, want at least 1m", d)
	}
	c := h.Calls()
	if c[1].Type != kubehandler.WorkqueueAddEvent || c[1].ResourceVersion() != rv || c[1].Retries != 0 {
		t.Errorf("redelivery = %+v, want the same add with Retries 0", c[1])
	}
}

func TestControlErrors(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("reconciling: %w", err) }
	tests := []struct {
		name                         string
		err                          error
		skip, cancel, keep, terminal bool
	}{
		{"skip", wrap(kubehandler.SkipStep()), true, false, false, false},
		{"cancel", wrap(kubehandler.CancelChain()), false, true, false, false},
		{"keep", wrap(kubehandler.KeepFinalizer(time.Second)), false, false, true, false},
		{"plain", errBoom, false, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if kubehandler.IsSkipStep(tt.err) != tt.skip || kubehandler.IsCancelChain(tt.err) != tt.cancel ||
				kubehandler.IsKeepFinalizer(tt.err) != tt.keep || kubehandler.IsTerminal(tt.err) != tt.terminal {
				t.Errorf("%v: skip=%v cancel=%v keep=%v", tt.err, kubehandler.IsSkipStep(tt.err),
					kubehandler.IsCancelChain(tt.err), kubehandler.IsKeepFinalizer(tt.err))
			}
		})
	}
	if errors.Is(kubehandler.SkipStep(), kubehandler.CancelChain()) {
		t.Error("SkipStep is CancelChain")
	}
}

// Returned by a plain handler, SkipStep and CancelChain are successes and
// KeepFinalizer is a RequeueAfter, none of them a failure.
func TestControlErrorsOutsideAChain(t *testing.T) {
	clock := clocktesting.NewFakeClock(time.Now())
	reg, gather := newRegistry()
	q := kubehandler.NewWorkQueue("control", kubehandler.WithClock(clock), kubehandler.WithMetrics(reg),
		kubehandler.WithErrorHandler(func(key kubehandler.Key, _ int, err error) kubehandler.ErrorAction {
			t.Errorf("ErrorHandler asked about %s: %v", key, err)
			return kubehandler.ErrorActionIgnore
		}))
	calls := make(chan string, 10)
	q.RegisterAddHandler("k", func(ctx context.Context, _, name string) error {
		calls <- name
		switch name {
		case "skip":
			return kubehandler.SkipStep()
		case "cancel":
			return kubehandler.CancelChain()
		default:
			ev, _ := kubehandler.EventFromContext(ctx)
			if ev.Retries > 0 {
				t.Errorf("KeepFinalizer counted as a retry")
			}
			return kubehandler.KeepFinalizer(time.Minute)
		}
	})
	for _, name := range []string{"skip", "cancel", "keep"} {
		q.EnqueueAdd("k", "ns/"+name)
	}
	kubehandlertest.Start(t, q, 1)
	eventually(t, "counted", func() bool {
		g := gather()
		return g.calls("control", "k", "add", "success") == 2 && g.calls("control", "k", "add", "requeue") == 1
	})
	eventually(t, "keep replayed after a minute", func() bool {
		if len(calls) >= 4 {
			return true
		}
		clock.Step(10 * time.Second)
		return false
	})
	if n := q.Length(); n != 1 {
		t.Errorf("Length = %d, want 1 (the kept key, waiting again)", n)
	}
}
