package kubehandlertest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehandler/kubehandler"
)

// Call is one handler call as a Recorder saw it.
type Call struct {
	// Type is kubehandler.WorkqueueAddEvent, WorkqueueUpdateEvent or
	// WorkqueueDeleteEvent.
	Type string
	// Key is the call's key; its Kind is the handler's name.
	Key kubehandler.Key
	// Object is the call's Event.Object: the object the call saw.
	Object interface{}
	// Retries is the call's Event.Retries.
	Retries int
	// Returned reports whether the call has returned, Err what it returned
	// (ErrPanicked if it panicked).
	Returned bool
	Err      error
}

// ErrPanicked is the Err of a Call that panicked.
var ErrPanicked = errors.New("kubehandlertest: the call panicked")

// ResourceVersion returns the resourceVersion of the call's object, or ""
// if it has none.
func (c Call) ResourceVersion() string {
	if m, ok := c.Object.(metav1.Object); ok {
		return m.GetResourceVersion()
	}
	return ""
}

// Recorder is a kubehandler.EventHandler for tests that records every call
// with its Event. It checks promise 1 as calls happen: when a call starts
// while another call of the same key is in flight, it fails the test
// (t.Errorf, from the worker's goroutine). Wait and WaitFunc let a test
// wait, without sleeping, until the calls say what it expects (promise 3).
//
// NewRecorder makes one that only records (Fn decides each call's outcome);
// Record wraps a handler of yours. Register the Recorder on the loop in the
// handler's place. Its methods are safe for concurrent use.
type Recorder struct {
	kubehandler.DefaultHandler
	// Fn, if set, is called for each call after it is recorded, and
	// decides its outcome. Set it before the loop runs.
	Fn func(ctx context.Context, ev kubehandler.Event) error

	t testing.TB

	mu       sync.Mutex
	calls    []Call
	inFlight map[kubehandler.Key]int // calls in flight per key
	overlaps []kubehandler.Key
	changed  chan struct{} // closed, and replaced, when a call starts or returns
}

var _ kubehandler.EventHandler = (*Recorder)(nil)

// NewRecorder returns a Recorder of informer's events named name, whose
// calls succeed unless Fn says otherwise. It fails t when two calls of one
// key are in flight at once. t may be nil where there is no test to fail (a
// benchmark's harness, a shared fixture): then check Overlaps yourself.
func NewRecorder(t testing.TB, informer cache.SharedInformer, name string) *Recorder {
	return &Recorder{
		DefaultHandler: kubehandler.DefaultHandler{Informer: informer, Name: name},
		t:              t,
		inFlight:       make(map[kubehandler.Key]int),
		changed:        make(chan struct{}),
	}
}

// Record returns a Recorder that passes every call on to h, under h's
// name (its Go type's name if GetName returns "", as the EventLoop does),
// informer and synced func. Register the Recorder in h's place. It fails t
// when two calls of one key are in flight at once. Fn is set to the call of
// h: replace it only to wrap that.
func Record(t testing.TB, h kubehandler.EventHandler) *Recorder {
	r := NewRecorder(t, h.GetInformer(), handlerName(h))
	r.Synced = h.GetSynced()
	r.Fn = func(ctx context.Context, ev kubehandler.Event) error {
		switch ev.Type {
		case kubehandler.WorkqueueAddEvent:
			return h.AddFunc(ctx, ev.Key.Namespace, ev.Key.Name)
		case kubehandler.WorkqueueUpdateEvent:
			return h.UpdateFunc(ctx, ev.Key.Namespace, ev.Key.Name)
		default:
			return h.DeleteFunc(ctx, ev.Key.Namespace, ev.Key.Name)
		}
	}
	return r
}

// handlerName is h's name, or its Go type's name, as the EventLoop names
// handlers (promise 8).
func handlerName(h kubehandler.EventHandler) string {
	if name := h.GetName(); name != "" {
		return name
	}
	t := reflect.TypeOf(h)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Name() != "" {
		return t.Name()
	}
	return t.String()
}

// AddFunc records an add, then calls Fn.
func (r *Recorder) AddFunc(ctx context.Context, namespace, name string) error {
	return r.handle(ctx, kubehandler.WorkqueueAddEvent, namespace, name)
}

// UpdateFunc records an update, then calls Fn.
func (r *Recorder) UpdateFunc(ctx context.Context, namespace, name string) error {
	return r.handle(ctx, kubehandler.WorkqueueUpdateEvent, namespace, name)
}

// DeleteFunc records a delete, then calls Fn.
func (r *Recorder) DeleteFunc(ctx context.Context, namespace, name string) error {
	return r.handle(ctx, kubehandler.WorkqueueDeleteEvent, namespace, name)
}

func (r *Recorder) handle(ctx context.Context, typ, namespace, name string) (err error) {
	ev, ok := kubehandler.EventFromContext(ctx)
	if !ok {
		// Called directly, not by a loop: there is no Event to record.
		ev = kubehandler.Event{Type: typ, Key: kubehandler.Key{Kind: r.GetName(), Namespace: namespace, Name: name}}
	}
	if ev.Type != typ || ev.Key.Namespace != namespace || ev.Key.Name != name {
		r.errorf("kubehandlertest: the call %s %s/%s does not match its Event %s %s", typ, namespace, name, ev.Type, ev.Key)
	}
	i := r.start(ev)
	returned := false
	defer func() {
		if !returned {
			r.finish(i, ev.Key, ErrPanicked)
		}
	}()
	if r.Fn != nil {
		err = r.Fn(ctx, ev)
	}
	returned = true
	r.finish(i, ev.Key, err)
	return err
}

// start records a call and returns its index.
func (r *Recorder) start(ev kubehandler.Event) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.inFlight[ev.Key] > 0 {
		r.overlaps = append(r.overlaps, ev.Key)
		r.errorf("kubehandlertest: %s: a %s call started while another call of the same key was in flight (promise 1: one call at a time per object)", ev.Key, ev.Type)
	}
	r.inFlight[ev.Key]++
	r.calls = append(r.calls, Call{Type: ev.Type, Key: ev.Key, Object: ev.Object, Retries: ev.Retries})
	r.changedLocked()
	return len(r.calls) - 1
}

func (r *Recorder) finish(i int, key kubehandler.Key, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls[i].Returned = true
	r.calls[i].Err = err
	if r.inFlight[key]--; r.inFlight[key] == 0 {
		delete(r.inFlight, key)
	}
	r.changedLocked()
}

// changedLocked wakes the waiters. r.mu must be held.
func (r *Recorder) changedLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// errorf fails the test, or, without one, leaves the failure to Overlaps.
func (r *Recorder) errorf(format string, args ...any) {
	if r.t != nil {
		r.t.Errorf(format, args...)
	}
}

// Calls returns every call so far, in the order they started.
func (r *Recorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.calls...)
}

// CallsFor returns the calls of one key, in the order they started.
func (r *Recorder) CallsFor(key kubehandler.Key) []Call {
	var out []Call
	for _, c := range r.Calls() {
		if c.Key == key {
			out = append(out, c)
		}
	}
	return out
}

// LastCalls returns the last call of each key.
func (r *Recorder) LastCalls() map[kubehandler.Key]Call {
	last := make(map[kubehandler.Key]Call)
	for _, c := range r.Calls() {
		last[c.Key] = c
	}
	return last
}

// Overlaps returns the keys that had a call start while another call of the
// same key was in flight, once per occurrence.
func (r *Recorder) Overlaps() []kubehandler.Key {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]kubehandler.Key(nil), r.overlaps...)
}

// Matches reports whether the last call of every key of want tells the
// truth about it (promise 3): want maps a key to the resourceVersion of the
// object that exists, or to "" if the object does not exist. Then the last
// call, if there was any, must be a delete: an object created and deleted
// before the handler saw it need not have been dispatched. Source.State
// returns a want for every object a Source has held. Matches looks at calls
// in flight too, and not at what calls returned; it describes the first
// mismatch, in key order.
func (r *Recorder) Matches(want map[kubehandler.Key]string) (bool, string) {
	return r.matches(want, false)
}

func (r *Recorder) matches(want map[kubehandler.Key]string, returned bool) (bool, string) {
	last := r.LastCalls()
	keys := make([]kubehandler.Key, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, key := range keys {
		rv := want[key]
		c, called := last[key]
		switch {
		case rv != "" && !called:
			return false, fmt.Sprintf("%s exists but was never dispatched", key)
		case rv != "" && c.Type == kubehandler.WorkqueueDeleteEvent:
			return false, fmt.Sprintf("%s exists but its last call is a delete", key)
		case rv != "" && c.ResourceVersion() != rv:
			return false, fmt.Sprintf("%s: the last call saw resourceVersion %s, the object is at %s", key, c.ResourceVersion(), rv)
		case rv == "" && called && c.Type != kubehandler.WorkqueueDeleteEvent:
			return false, fmt.Sprintf("%s no longer exists but its last call is %s", key, c.Type)
		case returned && called && !c.Returned:
			return false, fmt.Sprintf("%s: its last call (%s) has not returned", key, c.Type)
		}
	}
	return true, ""
}

// Wait waits until Matches(want) holds and the last call of each key of
// want has returned (whatever it returned: a call that failed will be
// retried, and the retry sees the same state). It fails the test
// (t.Fatalf), with the first mismatch, if that takes longer than
// WaitTimeout or comes near the test's deadline. It does not sleep: it
// checks again each time a call starts or returns.
func (r *Recorder) Wait(t testing.TB, want map[kubehandler.Key]string) {
	t.Helper()
	var why string
	r.wait(t, func() bool {
		var ok bool
		ok, why = r.matches(want, true)
		return ok
	}, func() string { return "every key's last call to see its object's final state (" + why + ")" })
}

// WaitFunc waits until cond returns true, checking it now and each time a
// call of the Recorder starts or returns, and fails the test (t.Fatalf)
// naming what if that takes longer than WaitTimeout or comes near the
// test's deadline. cond should depend on the calls (Calls, CallsFor,
// LastCalls) or on what they do: nothing else wakes the wait.
func (r *Recorder) WaitFunc(t testing.TB, what string, cond func() bool) {
	t.Helper()
	r.wait(t, cond, func() string { return what })
}

func (r *Recorder) wait(t testing.TB, cond func() bool, what func() string) {
	t.Helper()
	d := waitTimeout(t)
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		r.mu.Lock()
		changed := r.changed
		r.mu.Unlock()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			if cond() {
				return
			}
			t.Fatalf("kubehandlertest: waited %v, in vain, for %s", d.Round(time.Millisecond), what())
			return
		}
	}
}
