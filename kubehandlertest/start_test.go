package kubehandlertest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kubehandler/kubehandler/kubehandlertest"
)

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
	r := kubehandlertest.Start(t, loopFunc(func(ctx context.Context, n int) error {
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
	r := kubehandlertest.Start(t, loopFunc(func(context.Context, int) error { return boom }), 1)
	if err := r.Wait(t); !errors.Is(err, boom) {
		t.Errorf("Wait = %v", err)
	}
	<-r.Done()
}

// An error from Run that the test never looked at fails the test when it
// ends; one it looked at does not.
func TestUncheckedErrorFailsTheTest(t *testing.T) {
	boom := errors.New("boom")
	for _, checked := range []bool{false, true} {
		ft := newFakeT(t)
		r := kubehandlertest.Start(ft, loopFunc(func(context.Context, int) error { return boom }), 1)
		<-r.Done()
		if checked {
			_ = r.Err()
		}
		ft.cleanup()
		errs := ft.errors()
		if checked && len(errs) != 0 {
			t.Errorf("checked: the test failed: %q", errs)
		}
		if !checked && (len(errs) != 1 || !strings.Contains(errs[0], "boom")) {
			t.Errorf("unchecked: errors %q, want Run's", errs)
		}
	}
}

// Wait gives up near the test's deadline, with a message.
func TestWaitGivesUp(t *testing.T) {
	ft := newFakeT(t)
	r := kubehandlertest.Start(ft, loopFunc(func(ctx context.Context, _ int) error {
		<-ctx.Done()
		return nil
	}), 1)
	ft.run(func() { r.Wait(ft) })
	if f := ft.fatals(); len(f) != 1 || !strings.Contains(f[0], "Run did not return") {
		t.Errorf("fatals %q", f)
	}
	ft.cleanup() // stops the loop
}
