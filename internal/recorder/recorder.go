// Package recorder is a kubehandler.EventHandler for tests: it records every
// call with its Event, detects overlapping calls for one key (promise 1), and
// checks that the last call of each key tells the truth about the object's
// final state (promise 3). Unit and integration tests share it.
package recorder

import (
	"context"
	"fmt"
	"sort"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehandler/kubehandler"
)

// Call is one handler call as the recorder saw it.
type Call struct {
	Type    string
	Key     kubehandler.Key
	Object  interface{}
	Retries int
}

// ResourceVersion returns the resourceVersion of the call's object, or "".
func (c Call) ResourceVersion() string {
	if m, ok := c.Object.(metav1.Object); ok {
		return m.GetResourceVersion()
	}
	return ""
}

// Handler records its calls. Fn, if set, decides each call's outcome; it
// runs after the call is recorded.
type Handler struct {
	kubehandler.DefaultHandler
	Fn func(ctx context.Context, ev kubehandler.Event) error

	mu       sync.Mutex
	calls    []Call
	inFlight map[kubehandler.Key]bool
	overlaps []kubehandler.Key
}

var _ kubehandler.EventHandler = (*Handler)(nil)

// New returns a Handler for informer's events, called name.
func New(informer cache.SharedInformer, name string) *Handler {
	return &Handler{
		DefaultHandler: kubehandler.DefaultHandler{Informer: informer, Name: name},
		inFlight:       make(map[kubehandler.Key]bool),
	}
}

func (h *Handler) AddFunc(ctx context.Context, namespace, name string) error {
	return h.handle(ctx, kubehandler.WorkqueueAddEvent, namespace, name)
}

func (h *Handler) UpdateFunc(ctx context.Context, namespace, name string) error {
	return h.handle(ctx, kubehandler.WorkqueueUpdateEvent, namespace, name)
}

func (h *Handler) DeleteFunc(ctx context.Context, namespace, name string) error {
	return h.handle(ctx, kubehandler.WorkqueueDeleteEvent, namespace, name)
}

func (h *Handler) handle(ctx context.Context, typ, namespace, name string) error {
	ev, ok := kubehandler.EventFromContext(ctx)
	if !ok {
		panic("no Event in the handler's context")
	}
	if ev.Type != typ || ev.Key.Namespace != namespace || ev.Key.Name != name {
		panic(fmt.Sprintf("Event %+v does not match the call %s %s/%s", ev, typ, namespace, name))
	}
	h.mu.Lock()
	if h.inFlight[ev.Key] {
		h.overlaps = append(h.overlaps, ev.Key)
	}
	h.inFlight[ev.Key] = true
	h.calls = append(h.calls, Call{Type: ev.Type, Key: ev.Key, Object: ev.Object, Retries: ev.Retries})
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.inFlight[ev.Key] = false
		h.mu.Unlock()
	}()
	if h.Fn != nil {
		return h.Fn(ctx, ev)
	}
	return nil
}

// Calls returns every call so far, in order.
func (h *Handler) Calls() []Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Call(nil), h.calls...)
}

// CallsFor returns the calls of one key, in order.
func (h *Handler) CallsFor(key kubehandler.Key) []Call {
	var out []Call
	for _, c := range h.Calls() {
		if c.Key == key {
			out = append(out, c)
		}
	}
	return out
}

// LastCalls returns the last call of each key.
func (h *Handler) LastCalls() map[kubehandler.Key]Call {
	last := make(map[kubehandler.Key]Call)
	for _, c := range h.Calls() {
		last[c.Key] = c
	}
	return last
}

// Overlaps returns the keys that had a call start while another call of the
// same key was running, once per occurrence.
func (h *Handler) Overlaps() []kubehandler.Key {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]kubehandler.Key(nil), h.overlaps...)
}

// Matches reports whether the last call of every key of want tells the truth
// about it: want maps a key to the resourceVersion of the object that exists,
// or to "" if the object does not exist (then the last call, if there was
// any, must be a delete: an object created and deleted before the handler
// saw it need not have been dispatched). It describes the first mismatch.
func (h *Handler) Matches(want map[kubehandler.Key]string) (bool, string) {
	last := h.LastCalls()
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
			return false, fmt.Sprintf("%s: last call saw resourceVersion %s, the object is at %s", key, c.ResourceVersion(), rv)
		case rv == "" && called && c.Type != kubehandler.WorkqueueDeleteEvent:
			return false, fmt.Sprintf("%s no longer exists but its last call is %s", key, c.Type)
		}
	}
	return true, ""
}
