package kubehandlertest

import (
	"context"
	"sync"
	"testing"
	"time"
)

// Loop is what Start runs: a kubehandler.EventLoop or kubehandler.WorkQueue.
type Loop interface {
	Run(ctx context.Context, threadiness int) error
}

// Factory is an informer factory that Start starts and, when the test
// ends, shuts down: informers.SharedInformerFactory,
// dynamicinformer.DynamicSharedInformerFactory, or a generated one.
type Factory interface {
	Start(stopCh <-chan struct{})
	Shutdown()
}

// WaitTimeout bounds Running.Wait, Recorder.Wait and Recorder.WaitFunc: a
// test whose deadline (go test -timeout) comes sooner stops waiting a
// little before it instead, so that it fails with its own message.
const WaitTimeout = 30 * time.Second

// Running is a loop's Run in the background of a test; Start returns it.
type Running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // what Run returned, once done is closed

	mu      sync.Mutex
	checked bool // the test looked at what Run returned
}

// Start starts factories, then loop.Run with threadiness workers, in the
// background. When the test ends (t.Cleanup), it cancels Run's context,
// waits for Run to return, shuts the factories down, and, unless the test
// has looked at what Run returned (Stop, Wait, Err), fails the test if Run
// returned an error. Run's context is not the test's (t.Context is already
// cancelled when cleanups run): a test that needs the loop to stop earlier
// calls Stop or Cancel.
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
			t.Errorf("kubehandlertest: Run = %v", r.err)
		}
	})
	return r
}

// Cancel cancels Run's context without waiting for Run to return.
func (r *Running) Cancel() { r.cancel() }

// Done is closed once Run has returned.
func (r *Running) Done() <-chan struct{} { return r.done }

// Err returns what Run returned. Call it once Done is closed.
func (r *Running) Err() error {
	r.mu.Lock()
	r.checked = true
	r.mu.Unlock()
	return r.err
}

// Stop cancels Run's context, waits for Run to return, and returns what it
// returned.
func (r *Running) Stop() error {
	r.cancel()
	<-r.done
	return r.Err()
}

// Wait waits for Run to return by itself (an ErrorActionStop, a misuse
// error) and returns what it returned. It fails the test (t.Fatalf) if Run
// is still running after WaitTimeout or near the test's deadline.
func (r *Running) Wait(t testing.TB) error {
	t.Helper()
	d := waitTimeout(t)
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-r.done:
		return r.Err()
	case <-timer.C:
		t.Fatalf("kubehandlertest: Run did not return within %v", d.Round(time.Millisecond))
		return nil
	}
}

// waitTimeout is WaitTimeout, or less when the test's deadline is nearer:
// a tenth of the time left before it, at most a minute, is kept back.
func waitTimeout(t testing.TB) time.Duration {
	d := WaitTimeout
	if dt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := dt.Deadline(); ok {
			left := time.Until(deadline)
			left -= min(left/10, time.Minute)
			d = max(min(d, left), 0)
		}
	}
	return d
}
