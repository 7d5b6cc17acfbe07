// Package looptest runs an EventLoop or WorkQueue in the background of a
// test, with the informer factories it needs, and stops everything when the
// test ends. Tests of every tier share it.
package looptest

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Loop is what is run: a kubehandler.EventLoop or WorkQueue.
type Loop interface {
	Run(ctx context.Context, threadiness int) error
}

// Factory is an informer factory: informers.SharedInformerFactory or
// dynamicinformer.DynamicSharedInformerFactory.
type Factory interface {
	Start(stopCh <-chan struct{})
	Shutdown()
}

// Running is a Run in the background.
type Running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // what Run returned, once done is closed

	mu      sync.Mutex
	checked bool // the test looked at what Run returned
}

// Start starts factories, then loop.Run with threadiness workers, in the
// background. When the test ends, it cancels Run, waits for it, shuts the
// factories down and, unless the test looked at Run's result itself (Stop,
// Wait, Err), fails the test if Run returned an error.
func Start(t testing.TB, loop Loop, threadiness int, factories ...Factory) *Running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	for _, f := range factories {
		f.Start(ctx.Done())
	}
	r := &Running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = loop.Run(ctx, threadiness)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
		for _, f := range factories {
			f.Shutdown()
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if !r.checked && r.err != nil {
			t.Errorf("Run = %v", r.err)
		}
	})
	return r
}

// Cancel cancels Run's context without waiting.
func (r *Running) Cancel() { r.cancel() }

// Done is closed once Run has returned.
func (r *Running) Done() <-chan struct{} { return r.done }

// Err returns what Run returned; call it once Done is closed.
func (r *Running) Err() error {
	r.mu.Lock()
	r.checked = true
	r.mu.Unlock()
	return r.err
}

// Stop cancels Run's context and returns what Run returned.
func (r *Running) Stop() error {
	r.cancel()
	<-r.done
	return r.Err()
}

// Wait returns what Run returned once it returns by itself, failing the
// test if that takes longer than 30 seconds.
func (r *Running) Wait(t testing.TB) error {
	t.Helper()
	select {
	case <-r.done:
		return r.Err()
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}
