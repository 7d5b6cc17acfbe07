package kubehandler_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/internal/memsource"
)

// fixture is an in-memory source of ConfigMaps with a real shared informer
// over it, running until the test ends.
type fixture struct {
	source   *memsource.Source
	informer cache.SharedIndexInformer
}

func newFixture(t *testing.T) *fixture {
	return newFixtureWith(t, 0, func() runtime.Object { return &corev1.ConfigMapList{} }, &corev1.ConfigMap{})
}

func newFixtureWith(t *testing.T, resync time.Duration, newList func() runtime.Object, example runtime.Object) *fixture {
	t.Helper()
	f := &fixture{source: memsource.New(newList)}
	f.informer = cache.NewSharedIndexInformer(f.source, example, resync, cache.Indexers{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { f.informer.RunWithContext(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return f
}

func configMap(namespace, name, value string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Data:       map[string]string{"value": value},
	}
}

// call is one handler call as a recorder saw it.
type call struct {
	Type    string
	Key     kubehandler.Key
	Object  interface{}
	Retries int
}

// rv returns the resourceVersion of the call's object, or "".
func (c call) rv() string {
	if m, ok := c.Object.(metav1.Object); ok {
		return m.GetResourceVersion()
	}
	return ""
}

// recorder is a handler that records its calls, detects overlapping calls
// for one key, and lets a test decide each call's outcome with fn.
type recorder struct {
	kubehandler.DefaultHandler
	fn func(ctx context.Context, ev kubehandler.Event) error

	mu       sync.Mutex
	calls    []call
	inFlight map[kubehandler.Key]bool
	overlaps []kubehandler.Key
}

func newRecorder(informer cache.SharedInformer, name string) *recorder {
	return &recorder{
		DefaultHandler: kubehandler.DefaultHandler{Informer: informer, Name: name},
		inFlight:       make(map[kubehandler.Key]bool),
	}
}

func (r *recorder) AddFunc(ctx context.Context, namespace, name string) error {
	return r.handle(ctx, kubehandler.WorkqueueAddEvent, namespace, name)
}

func (r *recorder) UpdateFunc(ctx context.Context, namespace, name string) error {
	return r.handle(ctx, kubehandler.WorkqueueUpdateEvent, namespace, name)
}

func (r *recorder) DeleteFunc(ctx context.Context, namespace, name string) error {
	return r.handle(ctx, kubehandler.WorkqueueDeleteEvent, namespace, name)
}

func (r *recorder) handle(ctx context.Context, typ, namespace, name string) error {
	ev, ok := kubehandler.EventFromContext(ctx)
	if !ok {
		panic("no Event in the handler's context")
	}
	if ev.Type != typ || ev.Key.Namespace != namespace || ev.Key.Name != name {
		panic(fmt.Sprintf("Event %+v does not match the call %s %s/%s", ev, typ, namespace, name))
	}
	r.mu.Lock()
	if r.inFlight[ev.Key] {
		r.overlaps = append(r.overlaps, ev.Key)
	}
	r.inFlight[ev.Key] = true
	r.calls = append(r.calls, call{Type: ev.Type, Key: ev.Key, Object: ev.Object, Retries: ev.Retries})
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inFlight[ev.Key] = false
		r.mu.Unlock()
	}()
	if r.fn != nil {
		return r.fn(ctx, ev)
	}
	return nil
}

// snapshot returns the calls so far.
func (r *recorder) snapshot() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

// lastCalls returns the last call per key.
func (r *recorder) lastCalls() map[kubehandler.Key]call {
	last := make(map[kubehandler.Key]call)
	for _, c := range r.snapshot() {
		last[c.Key] = c
	}
	return last
}

// callsFor returns the calls of one key, in order.
func (r *recorder) callsFor(key kubehandler.Key) []call {
	var out []call
	for _, c := range r.snapshot() {
		if c.Key == key {
			out = append(out, c)
		}
	}
	return out
}

// matchesSource reports whether the last call of every key tells the truth
// about the source (promise 3): an add or update carrying the stored
// resourceVersion for objects that exist, a delete for those that do not. It
// returns a description of the first mismatch.
func (r *recorder) matchesSource(kind string, s *memsource.Source, names map[cache.ObjectName]bool) (bool, string) {
	last := r.lastCalls()
	for n := range names {
		key := kubehandler.Key{Kind: kind, Namespace: n.Namespace, Name: n.Name}
		c, called := last[key]
		obj, exists := s.Get(n.Namespace, n.Name)
		switch {
		case !called && exists:
			return false, fmt.Sprintf("%s exists but was never dispatched", key)
		case !called:
			continue // created and deleted before the handler ever saw it
		case exists && c.Type == kubehandler.WorkqueueDeleteEvent:
			return false, fmt.Sprintf("%s exists but its last call is a delete", key)
		case exists && c.rv() != obj.(metav1.Object).GetResourceVersion():
			return false, fmt.Sprintf("%s: last call saw rv %s, source has %s", key, c.rv(), obj.(metav1.Object).GetResourceVersion())
		case !exists && c.Type != kubehandler.WorkqueueDeleteEvent:
			return false, fmt.Sprintf("%s was deleted but its last call is %s", key, c.Type)
		}
	}
	return true, ""
}

// running is a Run in the background.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Run's result, once done is closed
}

// run starts loop.Run in the background; the test's cleanup stops it.
func run(t *testing.T, loop interface {
	Run(context.Context, int) error
}, threadiness int) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = loop.Run(ctx, threadiness)
	}()
	t.Cleanup(func() { _ = r.stop() })
	return r
}

// stop cancels Run's context and returns what Run returned.
func (r *running) stop() error {
	r.cancel()
	<-r.done
	return r.err
}

// wait returns what Run returned once it returns by itself.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

// eventually polls cond until it holds, failing the test after a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// fastRetries keeps retry backoff short so tests of failures finish quickly.
func fastRetries() kubehandler.Option {
	return kubehandler.WithRateLimiter(workqueue.NewTypedItemExponentialFailureRateLimiter[kubehandler.Key](time.Millisecond, 20*time.Millisecond))
}

func unstructuredConfigMap(namespace, name, value string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("v1")
	u.SetKind("ConfigMap")
	u.SetNamespace(namespace)
	u.SetName(name)
	_ = unstructured.SetNestedField(u.Object, value, "data", "value")
	return u
}
