package looptest

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// loopFunc adapts a function to Loop.
type loopFunc func(ctx context.Context, threadiness int) error

func (f loopFunc) Run(ctx context.Context, threadiness int) error { return f(ctx, threadiness) }

// factory records Start and Shutdown.
type factory struct{ started, shut bool }

func (f *factory) Start(<-chan struct{}) { f.started = true }
func (f *factory) Shutdown()             { f.shut = true }

func TestStartStop(t *testing.T) {
	f := &factory{}
	// Cleanups run last-in first-out: this one runs after Start's.
	t.Cleanup(func() {
		if !f.shut {
			t.Error("factory not shut down")
		}
	})
	var got int
	r := Start(t, loopFunc(func(ctx context.Context, n int) error {
		got = n
		<-ctx.Done()
		return nil
	}), 3, f)
	if !f.started {
		t.Error("factory not started")
	}
	if err := r.Stop(); err != nil || got != 3 {
		t.Errorf("Stop = %v, threadiness %d", err, got)
	}
}

func TestWaitReturnsRunsError(t *testing.T) {
	boom := errors.New("boom")
	r := Start(t, loopFunc(func(context.Context, int) error { return boom }), 1)
	if err := r.Wait(t); !errors.Is(err, boom) {
		t.Errorf("Wait = %v", err)
	}
	<-r.Done()
}
