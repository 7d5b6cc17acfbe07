package kubehandler_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/internal/looptest"
)

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
	looptest.Start(t, q, 1)
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
