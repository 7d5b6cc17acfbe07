package pause_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubehandler/kubehandler/handlers/pause"
)

const owner = types.UID("0b6e6a2e-5f4a-4c0e-9d0e-2f8f3c1a7b11")

func TestSelfPause(t *testing.T) {
	ready := cond("Ready", "False", "Broken")
	selfPaused := func() map[string]interface{} {
		return map[string]interface{}{
			"type": "Paused", "status": "True", "reason": "PausedByController",
			"message":            pause.NewSelfPausedCondition(label).Message,
			"lastTransitionTime": "2026-01-02T03:04:05Z", "observedGeneration": float64(3),
		}
	}
	labelPatch := patch{Namespace: "ns", Name: "w", Type: types.MergePatchType, Body: map[string]interface{}{
		"metadata": map[string]interface{}{"labels": map[string]interface{}{label: string(owner)}},
	}}
	warning := "Warning PausedByController Paused by its controller (owner " + string(owner) +
		") after a failure retrying cannot fix: fix the cause, then remove the label example.com/paused to resume"

	tests := []struct {
		name        string
		obj         *unstructured.Unstructured
		wantPatches []patch
		wantEvents  []string
	}{{
		name:        "live object: condition first, then the label",
		obj:         widget("w", nil, ready),
		wantPatches: []patch{statusPatch("w", ready, selfPaused()), labelPatch},
		wantEvents:  []string{warning},
	}, {
		name: "self-paused already: nothing to do",
		obj:  widget("w", map[string]string{label: string(owner)}, ready, cond("Paused", "True", "PausedByController")),
	}, {
		name: "paused by label already: nothing to do",
		obj:  widget("w", map[string]string{label: ""}, cond("Paused", "True", "PausedByLabel")),
	}, {
		name:        "condition set, label missing (an earlier call failed half way): the label only",
		obj:         widget("w", nil, cond("Paused", "True", "PausedByController")),
		wantPatches: []patch{labelPatch},
		wantEvents:  []string{warning},
	}, {
		name: "PausedByLabel left from before, no label: replaced, its transition time kept",
		obj:  widget("w", nil, cond("Paused", "True", "PausedByLabel")),
		wantPatches: []patch{statusPatch("w", func() map[string]interface{} {
			c := selfPaused()
			c["lastTransitionTime"] = "2025-12-01T00:00:00Z"
			return c
		}()), labelPatch},
		wantEvents: []string{warning},
	}, {
		name:        "labelled, condition missing: the condition only",
		obj:         widget("w", map[string]string{label: "someone"}),
		wantPatches: []patch{statusPatch("w", selfPaused())},
		wantEvents:  []string{warning},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &patchRecorder{}
			events := record.NewFakeRecorder(10)
			h, err := pause.New(&nextHandler{}, label, rec.Patch, pause.WithEventRecorder(events),
				pause.WithClock(clocktesting.NewFakePassiveClock(now)))
			if err != nil {
				t.Fatal(err)
			}
			before := tt.obj.DeepCopy()

			if err := h.SelfPause(t.Context(), tt.obj, owner); err != nil {
				t.Fatal(err)
			}

			if diff := diffPatches(tt.wantPatches, rec.Patches()); diff != "" {
				t.Errorf("patches (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantEvents, drain(events.Events)); diff != "" {
				t.Errorf("Events (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, tt.obj); diff != "" {
				t.Errorf("SelfPause modified its object (-before +after):\n%s", diff)
			}
		})
	}
}

// TestSelfPauseIdempotent: a second call on the object the first one left
// writes nothing.
func TestSelfPauseIdempotent(t *testing.T) {
	rec := &patchRecorder{}
	h, err := pause.New(&nextHandler{}, label, rec.Patch, pause.WithClock(clocktesting.NewFakePassiveClock(now)))
	if err != nil {
		t.Fatal(err)
	}
	obj := widget("w", nil)
	if err := h.SelfPause(t.Context(), obj, owner); err != nil {
		t.Fatal(err)
	}
	// Apply what the first call wrote, as the apiserver would.
	after := obj.DeepCopy()
	for _, p := range rec.Patches() {
		if len(p.Subresources) > 0 {
			after.Object["status"] = p.Body["status"]
		} else {
			after.SetLabels(map[string]string{label: string(owner)})
		}
	}
	n := len(rec.Patches())
	if n != 2 {
		t.Fatalf("first call sent %d patches, want 2", n)
	}
	if err := h.SelfPause(t.Context(), after, owner); err != nil {
		t.Fatal(err)
	}
	if got := rec.Patches()[n:]; len(got) != 0 {
		t.Errorf("second call sent %v", got)
	}
}

func TestSelfPauseErrors(t *testing.T) {
	boom := errors.New("boom")
	t.Run("status patch fails: no label", func(t *testing.T) {
		rec := &patchRecorder{err: boom}
		h, err := pause.New(&nextHandler{}, label, rec.Patch)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.SelfPause(t.Context(), widget("w", nil), owner); !errors.Is(err, boom) {
			t.Errorf("returned %v, want %v", err, boom)
		}
		if p := rec.Patches(); len(p) != 1 {
			t.Errorf("sent %d patches, want only the failed status patch", len(p))
		}
	})
	t.Run("owner UID not a label value", func(t *testing.T) {
		rec := &patchRecorder{}
		h, err := pause.New(&nextHandler{}, label, rec.Patch)
		if err != nil {
			t.Fatal(err)
		}
		err = h.SelfPause(t.Context(), widget("w", nil), "not a label value!")
		if err == nil || !strings.Contains(err.Error(), "owner UID") {
			t.Errorf("returned %v, want an error about the owner UID", err)
		}
		if p := rec.Patches(); len(p) != 0 {
			t.Errorf("sent %v", p)
		}
	})
}
