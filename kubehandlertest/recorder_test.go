package kubehandlertest_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// The overlap detector fails the test when two calls of one key are in
// flight at once, and only then. The calls are made directly, as a loop
// that broke promise 1 would make them.
func TestOverlapFailsTheTest(t *testing.T) {
	ft := newFakeT(t)
	r := kubehandlertest.NewRecorder(ft, nil, "cm")
	inFirst, release := make(chan struct{}), make(chan struct{})
	var callsOfA atomic.Int32
	r.Fn = func(ctx context.Context, ev kubehandler.Event) error {
		if ev.Key.Name == "a" && callsOfA.Add(1) == 1 { // the first call of a waits
			close(inFirst)
			<-release
		}
		return nil
	}
	first := make(chan error)
	go func() { first <- r.AddFunc(t.Context(), "ns", "a") }()
	<-inFirst
	if err := r.UpdateFunc(t.Context(), "ns", "b"); err != nil { // another key: fine
		t.Fatal(err)
	}
	if errs := ft.errors(); len(errs) != 0 {
		t.Fatalf("calls of two keys at once failed the test: %q", errs)
	}
	// A second call of a while the first is in flight.
	if err := r.UpdateFunc(t.Context(), "ns", "a"); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}

	errs := ft.errors()
	if len(errs) != 1 || !strings.Contains(errs[0], "cm/ns/a") || !strings.Contains(errs[0], "in flight") {
		t.Errorf("errors %q, want one about cm/ns/a in flight", errs)
	}
	if o := r.Overlaps(); len(o) != 1 || o[0] != (kubehandler.Key{Kind: "cm", Namespace: "ns", Name: "a"}) {
		t.Errorf("Overlaps = %v", o)
	}
	// Calls of a key one after the other are not an overlap.
	if err := r.AddFunc(t.Context(), "ns", "a"); err != nil {
		t.Fatal(err)
	}
	if n := len(ft.errors()); n != 1 {
		t.Errorf("%d errors after a call that overlapped nothing, want still 1", n)
	}
}

// On a real loop promise 1 holds: many workers, slow calls, no overlap;
// and Wait sees the end.
func TestRecordOnTheLoop(t *testing.T) {
	src := kubehandlertest.NewConfigMapSource()
	h := &slowHandler{DefaultHandler: kubehandler.DefaultHandler{Name: "cm", Informer: src.Informer(t)}}
	r := kubehandlertest.Record(t, h)
	loop := kubehandler.NewEventLoop("record")
	loop.Register(r)
	run := kubehandlertest.Start(t, loop, 8)

	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			name := fmt.Sprint("cm-", i)
			src.Create(cm(name, "0"))
			for v := range 30 {
				src.Update(cm(name, strconv.Itoa(v+1)))
			}
			if i%3 == 0 {
				src.Delete("ns", name)
			}
		})
	}
	wg.Wait()
	r.Wait(t, src.State("cm"))
	if o := r.Overlaps(); len(o) > 0 {
		t.Errorf("overlaps on the loop: %v", o)
	}
	// A deleted object may still get its delete after Wait; once the
	// loop has stopped, every call has been seen by both.
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := h.calls(); n != len(r.Calls()) {
		t.Errorf("the handler got %d calls, the recorder saw %d", n, len(r.Calls()))
	}
}

// slowHandler takes a little while per call, so that overlapping calls
// would be seen.
type slowHandler struct {
	kubehandler.DefaultHandler
	mu sync.Mutex
	n  int
}

func (h *slowHandler) AddFunc(ctx context.Context, _, _ string) error    { return h.call() }
func (h *slowHandler) UpdateFunc(ctx context.Context, _, _ string) error { return h.call() }
func (h *slowHandler) DeleteFunc(ctx context.Context, _, _ string) error { return h.call() }

func (h *slowHandler) call() error {
	time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond) // work, not synchronisation
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	return nil
}

func (h *slowHandler) calls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}

// Wait fails the test with the first mismatch when the state never comes.
func TestWaitGivesUpWithTheMismatch(t *testing.T) {
	ft := newFakeT(t)
	r := kubehandlertest.NewRecorder(ft, nil, "cm")
	key := kubehandler.Key{Kind: "cm", Namespace: "ns", Name: "a"}
	ft.run(func() { r.Wait(ft, map[kubehandler.Key]string{key: "7"}) })
	f := ft.fatals()
	if len(f) != 1 || !strings.Contains(f[0], "cm/ns/a exists but was never dispatched") {
		t.Errorf("fatals %q", f)
	}
}

// Wait waits for the last call to return, not only to start.
func TestWaitWaitsForTheCallToReturn(t *testing.T) {
	r := kubehandlertest.NewRecorder(t, nil, "cm")
	inCall, release := make(chan struct{}), make(chan struct{})
	r.Fn = func(context.Context, kubehandler.Event) error {
		close(inCall)
		<-release
		return errors.New("failed")
	}
	done := make(chan error)
	go func() { done <- r.DeleteFunc(t.Context(), "ns", "a") }()
	<-inCall
	key := kubehandler.Key{Kind: "cm", Namespace: "ns", Name: "a"}
	want := map[kubehandler.Key]string{key: ""}
	if ok, why := r.Matches(want); !ok {
		t.Fatalf("Matches while in flight: %s", why)
	}
	ft := newFakeT(t)
	ft.run(func() { r.Wait(ft, want) })
	if f := ft.fatals(); len(f) != 1 || !strings.Contains(f[0], "has not returned") {
		t.Errorf("Wait while the call is in flight: fatals %q", f)
	}
	close(release)
	r.Wait(t, want) // returns once the call has
	<-done
	c := r.CallsFor(key)
	if len(c) != 1 || !c[0].Returned || c[0].Err == nil || c[0].Err.Error() != "failed" {
		t.Errorf("calls %+v, want one that returned 'failed'", c)
	}
}

func TestMatches(t *testing.T) {
	obj := func(rv string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", ResourceVersion: rv}}
	}
	key := kubehandler.Key{Kind: "cm", Namespace: "ns", Name: "a"}
	tests := []struct {
		name  string
		calls []kubehandler.Event
		want  string // the resourceVersion wanted, "" for gone
		ok    bool
		why   string
	}{
		{name: "gone, never seen", want: "", ok: true},
		{name: "exists, never seen", want: "2", why: "never dispatched"},
		{name: "at its state", calls: []kubehandler.Event{{Type: "add", Object: obj("1")}, {Type: "update", Object: obj("2")}}, want: "2", ok: true},
		{name: "behind", calls: []kubehandler.Event{{Type: "add", Object: obj("1")}}, want: "2", why: "saw resourceVersion 1, the object is at 2"},
		{name: "deleted last, exists", calls: []kubehandler.Event{{Type: "delete", Object: obj("3")}}, want: "2", why: "last call is a delete"},
		{name: "gone, last call an update", calls: []kubehandler.Event{{Type: "update", Object: obj("3")}}, want: "", why: "no longer exists"},
		{name: "gone, deleted last", calls: []kubehandler.Event{{Type: "add", Object: obj("1")}, {Type: "delete", Object: obj("3")}}, want: "", ok: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := kubehandlertest.NewRecorder(t, nil, "cm")
			for _, ev := range tt.calls {
				ev.Key = key
				callWithEvent(t, r, ev)
			}
			ok, why := r.Matches(map[kubehandler.Key]string{key: tt.want})
			if ok != tt.ok || !strings.Contains(why, tt.why) {
				t.Errorf("Matches = %v, %q; want %v, %q", ok, why, tt.ok, tt.why)
			}
		})
	}
}

// callWithEvent makes the call of ev through a WorkQueue, the only way to
// give a handler an Event: the queue's handlers are the Recorder's.
func callWithEvent(t *testing.T, r *kubehandlertest.Recorder, ev kubehandler.Event) {
	t.Helper()
	q := kubehandler.NewWorkQueue("matches")
	q.RegisterAddHandler("cm", r.AddFunc)
	q.RegisterUpdateHandler("cm", r.UpdateFunc)
	q.RegisterDeleteHandler("cm", r.DeleteFunc)
	before := len(r.Calls())
	run := kubehandlertest.Start(t, q, 1)
	switch ev.Type {
	case "add":
		q.EnqueueAdd("cm", ev.Object)
	case "update":
		q.EnqueueUpdate("cm", ev.Object)
	default:
		q.EnqueueDelete("cm", ev.Object)
	}
	r.WaitFunc(t, "the call", func() bool {
		c := r.Calls()
		return len(c) > before && c[len(c)-1].Returned
	})
	if err := run.Stop(); err != nil {
		t.Fatal(err)
	}
}

// Record passes calls on to the handler, under its name (its type's if it
// has none), and records what they returned, panics included.
func TestRecordPassesCallsOn(t *testing.T) {
	h := &failingHandler{}
	r := kubehandlertest.Record(t, h)
	if r.GetName() != "failingHandler" {
		t.Errorf("name %q, want the handler type's", r.GetName())
	}
	ctx := t.Context()
	if err := r.AddFunc(ctx, "ns", "a"); err != nil {
		t.Errorf("AddFunc = %v", err)
	}
	if err := r.UpdateFunc(ctx, "ns", "a"); !errors.Is(err, errUpdate) {
		t.Errorf("UpdateFunc = %v", err)
	}
	func() {
		defer func() { _ = recover() }()
		_ = r.DeleteFunc(ctx, "ns", "a")
		t.Error("DeleteFunc did not panic")
	}()
	c := r.Calls()
	if len(c) != 3 {
		t.Fatalf("%d calls recorded, want 3", len(c))
	}
	for i, want := range []struct {
		typ string
		err error
	}{{"add", nil}, {"update", errUpdate}, {"delete", kubehandlertest.ErrPanicked}} {
		if c[i].Type != want.typ || !errors.Is(c[i].Err, want.err) || !c[i].Returned {
			t.Errorf("call %d = %+v, want a returned %s with %v", i, c[i], want.typ, want.err)
		}
	}
	if h.adds != 1 {
		t.Errorf("the handler got %d adds", h.adds)
	}
}

var errUpdate = errors.New("update failed")

type failingHandler struct {
	kubehandler.DefaultHandler
	adds int
}

func (h *failingHandler) AddFunc(context.Context, string, string) error { h.adds++; return nil }
func (h *failingHandler) UpdateFunc(context.Context, string, string) error {
	return errUpdate
}
func (h *failingHandler) DeleteFunc(context.Context, string, string) error { panic("boom") }
