package pause_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/handlers/pause"
)

func TestNew(t *testing.T) {
	rec := &patchRecorder{}
	tests := []struct {
		name    string
		new     func() (*pause.Handler, error)
		wantErr string // "" for success
	}{
		{"wrapper", func() (*pause.Handler, error) { return pause.New(&nextHandler{}, label, rec.Patch) }, ""},
		{"step", func() (*pause.Handler, error) { return pause.NewStep(label, rec.Patch) }, ""},
		{"label without prefix", func() (*pause.Handler, error) { return pause.NewStep("paused", rec.Patch) }, ""},
		{"no next", func() (*pause.Handler, error) { return pause.New(nil, label, rec.Patch) }, "use NewStep"},
		{"empty label", func() (*pause.Handler, error) { return pause.NewStep("", rec.Patch) }, "invalid label key"},
		{"bad label", func() (*pause.Handler, error) { return pause.New(&nextHandler{}, "example.com/not a key", rec.Patch) }, "invalid label key"},
		{"no patch", func() (*pause.Handler, error) { return pause.New(&nextHandler{}, label, nil) }, "PatchFunc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := tt.new()
			if tt.wantErr == "" {
				if err != nil || h == nil {
					t.Fatalf("got (%v, %v), want a handler", h, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestAddUpdate covers every branch of an add or update, for the wrapper
// and the step, through AddFunc and UpdateFunc alike.
func TestAddUpdate(t *testing.T) {
	ready := cond("Ready", "True", "Fine")

	tests := []struct {
		name        string
		obj         *unstructured.Unstructured
		wantPass    bool
		wantPatches []patch
		wantEvents  []string
	}{{
		name:     "not paused, no Paused condition: passed on, nothing written",
		obj:      widget("w", map[string]string{"app": "x"}, ready),
		wantPass: true,
	}, {
		name:        "not paused, Paused condition: removed, then passed on",
		obj:         widget("w", nil, ready, cond("Paused", "True", "PausedByLabel")),
		wantPass:    true,
		wantPatches: []patch{statusPatch("w", ready)},
		wantEvents:  []string{"Normal Resumed Resumed: the label example.com/paused is gone"},
	}, {
		name:        "not paused, condition set by SelfPause: removed all the same",
		obj:         widget("w", nil, cond("Paused", "True", "PausedByController"), ready),
		wantPass:    true,
		wantPatches: []patch{statusPatch("w", ready)},
		wantEvents:  []string{"Normal Resumed Resumed: the label example.com/paused is gone"},
	}, {
		name:        "not paused, only condition Paused: the list goes",
		obj:         widget("w", nil, cond("Paused", "False", "Whatever")),
		wantPass:    true,
		wantPatches: []patch{statusPatch("w")},
		wantEvents:  []string{"Normal Resumed Resumed: the label example.com/paused is gone"},
	}, {
		name:        "paused, no conditions: held back, condition set",
		obj:         widget("w", map[string]string{label: "true"}),
		wantPatches: []patch{statusPatch("w", pausedByLabel())},
		wantEvents:  []string{"Normal PausedByLabel Paused: the label example.com/paused is set"},
	}, {
		name:        "paused, empty label value: paused all the same, other conditions kept",
		obj:         widget("w", map[string]string{label: ""}, ready),
		wantPatches: []patch{statusPatch("w", ready, pausedByLabel())},
		wantEvents:  []string{"Normal PausedByLabel Paused: the label example.com/paused is set"},
	}, {
		name:        "paused, Paused condition False: replaced in place",
		obj:         widget("w", map[string]string{label: "x"}, cond("Paused", "False", "Resumed"), ready),
		wantPatches: []patch{statusPatch("w", pausedByLabel(), ready)},
		wantEvents:  []string{"Normal PausedByLabel Paused: the label example.com/paused is set"},
	}, {
		name: "paused, condition True already: held back, nothing written (once)",
		obj:  widget("w", map[string]string{label: "x"}, ready, cond("Paused", "True", "PausedByLabel")),
	}, {
		name: "paused by SelfPause: its condition is kept",
		obj:  widget("w", map[string]string{label: "uid"}, cond("Paused", "True", "PausedByController")),
	}}
	for _, tt := range tests {
		for _, typ := range []string{kubehandler.WorkqueueAddEvent, kubehandler.WorkqueueUpdateEvent} {
			for _, step := range []bool{false, true} {
				name := tt.name + "/" + typ
				if step {
					name += "/step"
				}
				t.Run(name, func(t *testing.T) {
					rec := &patchRecorder{}
					events := record.NewFakeRecorder(10)
					next := &nextHandler{}
					opts := []pause.Option{
						pause.WithStore(storeWith(t, tt.obj)),
						pause.WithEventRecorder(events),
						pause.WithClock(clocktesting.NewFakePassiveClock(now)),
					}
					h := newHandler(t, step, next, label, rec.Patch, opts...)

					err := call(t.Context(), h, typ, "ns", "w")

					switch {
					case step && !tt.wantPass:
						if !kubehandler.IsCancelChain(err) {
							t.Errorf("step returned %v for a paused object, want CancelChain", err)
						}
					case err != nil:
						t.Errorf("returned %v, want nil", err)
					}
					var wantCalls []string
					if tt.wantPass && !step {
						wantCalls = []string{typ + " ns/w"}
					}
					if diff := cmp.Diff(wantCalls, next.Calls()); diff != "" {
						t.Errorf("calls of next (-want +got):\n%s", diff)
					}
					if diff := diffPatches(tt.wantPatches, rec.Patches()); diff != "" {
						t.Errorf("patches (-want +got):\n%s", diff)
					}
					if diff := cmp.Diff(tt.wantEvents, drain(events.Events)); diff != "" {
						t.Errorf("Events (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}

// deleting returns a widget being deleted, held by a finalizer.
func deleting(labels map[string]string, conds ...map[string]interface{}) *unstructured.Unstructured {
	w := widget("w", labels, conds...)
	w.SetDeletionTimestamp(&metav1.Time{Time: now})
	w.SetFinalizers([]string{"example.com/cleanup"})
	return w
}

// TestDeletePath: an object being deleted is on the delete path, whichever
// callback gets it (a Chain calls DeleteFunc, a loop UpdateFunc): passed on
// by default; with WithPauseDeletes, handled like a live object.
func TestDeletePath(t *testing.T) {
	pausedCond := cond("Paused", "True", "PausedByLabel")
	tests := []struct {
		name         string
		obj          *unstructured.Unstructured
		pauseDeletes bool
		wantPass     bool
		wantPatches  []patch
	}{
		{"paused: passed on by default, nothing written", deleting(map[string]string{label: ""}), false, true, nil},
		{"not paused, stale condition: passed on by default, nothing written", deleting(nil, pausedCond), false, true, nil},
		{"paused, WithPauseDeletes: held back, condition set", deleting(map[string]string{label: ""}), true, false,
			[]patch{statusPatch("w", pausedByLabel())}},
		{"paused with the condition, WithPauseDeletes: held back", deleting(map[string]string{label: ""}, pausedCond), true, false, nil},
		{"not paused, WithPauseDeletes: condition removed, passed on", deleting(nil, pausedCond), true, true,
			[]patch{statusPatch("w")}},
	}
	for _, tt := range tests {
		for _, typ := range []string{kubehandler.WorkqueueUpdateEvent, kubehandler.WorkqueueDeleteEvent} {
			for _, step := range []bool{false, true} {
				name := tt.name + "/" + typ
				if step {
					name += "/step"
				}
				t.Run(name, func(t *testing.T) {
					rec := &patchRecorder{}
					next := &nextHandler{}
					opts := []pause.Option{pause.WithStore(storeWith(t, tt.obj)), pause.WithClock(clocktesting.NewFakePassiveClock(now))}
					if tt.pauseDeletes {
						opts = append(opts, pause.WithPauseDeletes())
					}
					h := newHandler(t, step, next, label, rec.Patch, opts...)

					err := call(t.Context(), h, typ, "ns", "w")

					if step && !tt.wantPass {
						if !kubehandler.IsCancelChain(err) {
							t.Errorf("step returned %v, want CancelChain", err)
						}
					} else if err != nil {
						t.Errorf("returned %v, want nil", err)
					}
					var wantCalls []string
					if tt.wantPass && !step {
						wantCalls = []string{typ + " ns/w"}
					}
					if diff := cmp.Diff(wantCalls, next.Calls()); diff != "" {
						t.Errorf("calls of next (-want +got):\n%s", diff)
					}
					if diff := diffPatches(tt.wantPatches, rec.Patches()); diff != "" {
						t.Errorf("patches (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}

// TestDeleteWithoutFinalState: a DeleteFunc with no Event takes from the
// store only an object being deleted; a live one of the same name is not the
// object deleted, so the delete passes on, label or not.
func TestDeleteWithoutFinalState(t *testing.T) {
	next := &nextHandler{}
	rec := &patchRecorder{}
	h, err := pause.New(next, label, rec.Patch, pause.WithPauseDeletes(),
		pause.WithStore(storeWith(t, widget("w", map[string]string{label: ""}))))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.DeleteFunc(t.Context(), "ns", "w"); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"delete ns/w"}, next.Calls()); diff != "" {
		t.Errorf("calls of next (-want +got):\n%s", diff)
	}
	if p := rec.Patches(); len(p) != 0 {
		t.Errorf("wrote %v", p)
	}
}

// TestPatchFails: a failed write is returned for the loop to retry, and the
// event is not passed on.
func TestPatchFails(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		obj  *unstructured.Unstructured
	}{
		{"pausing", widget("w", map[string]string{label: "x"})},
		{"resuming", widget("w", nil, cond("Paused", "True", "PausedByLabel"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &patchRecorder{err: boom}
			next := &nextHandler{}
			h, err := pause.New(next, label, rec.Patch, pause.WithStore(storeWith(t, tt.obj)))
			if err != nil {
				t.Fatal(err)
			}
			err = h.UpdateFunc(t.Context(), "ns", "w")
			if !errors.Is(err, boom) || kubehandler.IsTerminal(err) {
				t.Errorf("returned %v, want a retriable error wrapping %v", err, boom)
			}
			if !strings.Contains(fmtErr(err), "ns/w") {
				t.Errorf("error %q does not name the object", err)
			}
			if calls := next.Calls(); len(calls) != 0 {
				t.Errorf("next was called: %v", calls)
			}
		})
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestNextError: next's error comes back unchanged.
func TestNextError(t *testing.T) {
	boom := errors.New("boom")
	next := &nextHandler{err: boom}
	h, err := pause.New(next, label, (&patchRecorder{}).Patch, pause.WithStore(storeWith(t, widget("w", nil))))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.AddFunc(t.Context(), "ns", "w"); err != boom {
		t.Errorf("returned %v, want next's %v", err, boom)
	}
}

// TestObjectLookup: without an Event in the context the object comes from
// WithStore, else from next's informer's store; an object found nowhere
// passes on.
func TestObjectLookup(t *testing.T) {
	pausedWidget := widget("w", map[string]string{label: "x"})
	tests := []struct {
		name         string
		withStore    cache.Store
		informerObjs []interface{}
		wantPass     bool
	}{
		{"from WithStore", storeWith(t, pausedWidget), nil, false},
		{"from next's informer", nil, []interface{}{pausedWidget}, false},
		{"WithStore wins over next's informer", storeWith(t, widget("w", nil)), []interface{}{pausedWidget}, true},
		{"in neither store: passed on", storeWith(t), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			informer := cache.NewSharedIndexInformer(&cache.ListWatch{}, &unstructured.Unstructured{}, 0, cache.Indexers{})
			for _, o := range tt.informerObjs {
				if err := informer.GetStore().Add(o); err != nil {
					t.Fatal(err)
				}
			}
			next := &nextHandler{DefaultHandler: kubehandler.DefaultHandler{Informer: informer}}
			var opts []pause.Option
			if tt.withStore != nil {
				opts = append(opts, pause.WithStore(tt.withStore))
			}
			h, err := pause.New(next, label, (&patchRecorder{}).Patch, opts...)
			if err != nil {
				t.Fatal(err)
			}
			if err := h.UpdateFunc(t.Context(), "ns", "w"); err != nil {
				t.Fatal(err)
			}
			if passed := len(next.Calls()) == 1; passed != tt.wantPass {
				t.Errorf("passed on = %v, want %v", passed, tt.wantPass)
			}
		})
	}
}

// TestStepWithoutStore: a step with no object to look at lets the chain go
// on.
func TestStepWithoutStore(t *testing.T) {
	h, err := pause.NewStep(label, (&patchRecorder{}).Patch)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.UpdateFunc(t.Context(), "ns", "w"); err != nil {
		t.Errorf("returned %v, want nil", err)
	}
}

func TestTypedObjects(t *testing.T) {
	typed := func(labels map[string]string, conds ...metav1.Condition) *typedWidget {
		w := &typedWidget{ObjectMeta: metav1.ObjectMeta{
			Namespace: "ns", Name: "w", ResourceVersion: "7", Generation: 3, Labels: labels,
		}}
		w.Status.Conditions = conds
		return w
	}
	ready := metav1.Condition{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Fine", Message: "m",
		LastTransitionTime: metav1.NewTime(now.Add(-time.Hour))}
	readyJSON := map[string]interface{}{"type": "Ready", "status": "True", "reason": "Fine", "message": "m",
		"lastTransitionTime": "2026-01-02T02:04:05Z"}
	paused := pause.NewPausedCondition(label)
	paused.LastTransitionTime = metav1.NewTime(now)

	tests := []struct {
		name        string
		obj         *typedWidget
		wantPass    bool
		wantPatches []patch
	}{
		{"not paused", typed(nil, ready), true, nil},
		{"paused", typed(map[string]string{label: ""}, ready), false, []patch{statusPatch("w", readyJSON, pausedByLabel())}},
		{"paused already", typed(map[string]string{label: ""}, ready, paused), false, nil},
		{"resumed", typed(nil, paused, ready), true, []patch{statusPatch("w", readyJSON)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &patchRecorder{}
			next := &nextHandler{}
			h, err := pause.New(next, label, rec.Patch, pause.WithStore(storeWith(t, tt.obj)),
				pause.WithClock(clocktesting.NewFakePassiveClock(now)))
			if err != nil {
				t.Fatal(err)
			}
			if err := h.UpdateFunc(t.Context(), "ns", "w"); err != nil {
				t.Fatal(err)
			}
			if passed := len(next.Calls()) == 1; passed != tt.wantPass {
				t.Errorf("passed on = %v, want %v", passed, tt.wantPass)
			}
			if diff := diffPatches(tt.wantPatches, rec.Patches()); diff != "" {
				t.Errorf("patches (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNoConditions: an object whose conditions the handler cannot read is a
// terminal error, not a silent pass.
func TestNoConditions(t *testing.T) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "w", Labels: map[string]string{label: ""}}}
	next := &nextHandler{}
	h, err := pause.New(next, label, (&patchRecorder{}).Patch, pause.WithStore(storeWith(t, cm)))
	if err != nil {
		t.Fatal(err)
	}
	err = h.AddFunc(t.Context(), "ns", "w")
	if !kubehandler.IsTerminal(err) || !strings.Contains(err.Error(), "HasConditions") {
		t.Errorf("returned %v, want a terminal error that names HasConditions", err)
	}
	if calls := next.Calls(); len(calls) != 0 {
		t.Errorf("next was called: %v", calls)
	}
}

// TestWrapperDelegates: a wrapper registers in next's place.
func TestWrapperDelegates(t *testing.T) {
	informer := cache.NewSharedIndexInformer(&cache.ListWatch{}, &unstructured.Unstructured{}, 0, cache.Indexers{})
	synced := func() bool { return true }
	tests := []struct {
		name     string
		next     *nextHandler
		wantName string
	}{
		{"named", &nextHandler{DefaultHandler: kubehandler.DefaultHandler{Name: "widgets", Informer: informer, Synced: synced}}, "widgets"},
		{"unnamed: next's type name", &nextHandler{DefaultHandler: kubehandler.DefaultHandler{Informer: informer, Synced: synced}}, "nextHandler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := pause.New(tt.next, label, (&patchRecorder{}).Patch)
			if err != nil {
				t.Fatal(err)
			}
			if got := h.GetName(); got != tt.wantName {
				t.Errorf("GetName = %q, want %q", got, tt.wantName)
			}
			if h.GetInformer() != informer {
				t.Error("GetInformer is not next's")
			}
			if s := h.GetSynced(); s == nil || !s() {
				t.Error("GetSynced is not next's")
			}
		})
	}
	step, err := pause.NewStep(label, (&patchRecorder{}).Patch)
	if err != nil {
		t.Fatal(err)
	}
	if step.GetName() != "" || step.GetInformer() != nil || step.GetSynced() != nil {
		t.Errorf("a step has name %q, informer %v", step.GetName(), step.GetInformer())
	}
}

// TestMalformedConditions: status.conditions that is not a list of objects
// is a terminal error naming it, for add, update and SelfPause alike.
func TestMalformedConditions(t *testing.T) {
	for _, labels := range []map[string]string{nil, {label: ""}} {
		w := widget("w", labels)
		w.Object["status"] = map[string]interface{}{"conditions": "all good"}
		next := &nextHandler{}
		h, err := pause.New(next, label, (&patchRecorder{}).Patch, pause.WithStore(storeWith(t, w)))
		if err != nil {
			t.Fatal(err)
		}
		err = h.UpdateFunc(t.Context(), "ns", "w")
		if !kubehandler.IsTerminal(err) || !strings.Contains(err.Error(), "status.conditions") {
			t.Errorf("labels %v: returned %v, want a terminal error naming status.conditions", labels, err)
		}
		if calls := next.Calls(); len(calls) != 0 {
			t.Errorf("labels %v: next was called: %v", labels, calls)
		}
		if err := h.SelfPause(t.Context(), w, owner); err == nil {
			t.Errorf("labels %v: SelfPause succeeded", labels)
		}
	}
}

// newHandler returns the pause handler as a step (no next) or as a wrapper of
// next.
func newHandler(t *testing.T, step bool, next kubehandler.EventHandler, label string, patch pause.PatchFunc, opts ...pause.Option) *pause.Handler {
	t.Helper()
	var h *pause.Handler
	var err error
	if step {
		h, err = pause.NewStep(label, patch, opts...)
	} else {
		h, err = pause.New(next, label, patch, opts...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return h
}
