package kubehandlertest_test

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeT is a testing.TB whose failures are recorded, not reported, so that
// tests can check that the kit fails a test when it should. Its deadline is
// near, so that waits give up quickly. Methods it does not implement panic
// (the embedded nil TB).
type fakeT struct {
	testing.TB
	real     *testing.T
	deadline time.Time

	mu       sync.Mutex
	errs     []string
	fatal    []string
	cleanups []func()
}

func newFakeT(t *testing.T) *fakeT {
	return &fakeT{real: t, deadline: time.Now().Add(time.Second)}
}

func (f *fakeT) Helper()      {}
func (f *fakeT) Name() string { return f.real.Name() }

func (f *fakeT) Deadline() (time.Time, bool) { return f.deadline, true }

func (f *fakeT) Logf(format string, args ...any) { f.real.Logf(format, args...) }

func (f *fakeT) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

// Fatalf records the failure and ends the goroutine, as testing.T's does:
// call what may fail through run.
func (f *fakeT) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = append(f.fatal, fmt.Sprintf(format, args...))
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeT) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

// run calls fn in a goroutine of its own, which Fatalf may end, and waits.
func (f *fakeT) run(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// cleanup runs the registered cleanups, last first, as the test's end does.
func (f *fakeT) cleanup() {
	f.mu.Lock()
	fns := slices.Clone(f.cleanups)
	f.cleanups = nil
	f.mu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
}

func (f *fakeT) errors() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.errs)
}

func (f *fakeT) fatals() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.fatal)
}
