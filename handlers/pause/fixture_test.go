package pause_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/handlers/pause"
)

const label = "example.com/paused"

var (
	widgets = schema.GroupVersionResource{Group: "test.kubehandler.dev", Version: "v1", Resource: "widgets"}
	// now is the fake clock's time; conditions set by the handler carry it.
	now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
)

// widget returns an unstructured Widget ns/name at resourceVersion 7 and
// generation 3, with labels and status conditions (JSON values).
func widget(name string, labels map[string]string, conds ...map[string]interface{}) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("test.kubehandler.dev/v1")
	u.SetKind("Widget")
	u.SetNamespace("ns")
	u.SetName(name)
	u.SetUID(types.UID("uid-" + name))
	u.SetResourceVersion("7")
	u.SetGeneration(3)
	u.SetLabels(labels)
	if len(conds) > 0 {
		list := make([]interface{}, len(conds))
		for i, c := range conds {
			list[i] = c
		}
		u.Object["status"] = map[string]interface{}{"conditions": list, "seen": int64(1)}
	}
	return u
}

// cond returns a condition as the apiserver stores it.
func cond(typ, status, reason string) map[string]interface{} {
	return map[string]interface{}{
		"type": typ, "status": status, "reason": reason, "message": "m",
		"lastTransitionTime": "2025-12-01T00:00:00Z",
	}
}

// pausedByLabel is the condition the handler writes for a labelled widget.
func pausedByLabel() map[string]interface{} {
	c := pause.NewPausedCondition(label)
	return map[string]interface{}{
		"type": "Paused", "status": "True", "reason": "PausedByLabel", "message": c.Message,
		"lastTransitionTime": "2026-01-02T03:04:05Z", "observedGeneration": float64(3),
	}
}

// patch is one call of a patchRecorder.
type patch struct {
	Namespace, Name string
	Type            types.PatchType
	Subresources    []string
	Body            map[string]interface{}
}

// patchRecorder is a pause.PatchFunc that records its calls and fails with
// err, if set.
type patchRecorder struct {
	mu      sync.Mutex
	patches []patch
	err     error
}

func (r *patchRecorder) Patch(_ context.Context, namespace, name string, pt types.PatchType, data []byte, subresources ...string) error {
	var body map[string]interface{}
	if err := json.Unmarshal(data, &body); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.patches = append(r.patches, patch{namespace, name, pt, subresources, body})
	return r.err
}

func (r *patchRecorder) Patches() []patch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]patch(nil), r.patches...)
}

// statusPatch is the patch the handler sends to set a widget's conditions.
func statusPatch(name string, conds ...map[string]interface{}) patch {
	var list interface{}
	if len(conds) > 0 {
		l := make([]interface{}, len(conds))
		for i, c := range conds {
			l[i] = c
		}
		list = l
	}
	return patch{
		Namespace: "ns", Name: name, Type: types.MergePatchType, Subresources: []string{"status"},
		Body: map[string]interface{}{
			"metadata": map[string]interface{}{"resourceVersion": "7"},
			"status":   map[string]interface{}{"conditions": list},
		},
	}
}

// nextHandler is a next handler that records its calls.
type nextHandler struct {
	kubehandler.DefaultHandler
	mu    sync.Mutex
	calls []string
	err   error
}

func (n *nextHandler) record(typ, namespace, name string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, typ+" "+namespace+"/"+name)
	return n.err
}

func (n *nextHandler) AddFunc(_ context.Context, namespace, name string) error {
	return n.record("add", namespace, name)
}

func (n *nextHandler) UpdateFunc(_ context.Context, namespace, name string) error {
	return n.record("update", namespace, name)
}

func (n *nextHandler) DeleteFunc(_ context.Context, namespace, name string) error {
	return n.record("delete", namespace, name)
}

func (n *nextHandler) Calls() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.calls...)
}

// storeWith returns a store holding objs.
func storeWith(t *testing.T, objs ...interface{}) cache.Store {
	t.Helper()
	store := cache.NewStore(cache.MetaNamespaceKeyFunc)
	for _, o := range objs {
		if err := store.Add(o); err != nil {
			t.Fatal(err)
		}
	}
	return store
}

// call calls h's callback of event type typ.
func call(ctx context.Context, h *pause.Handler, typ, namespace, name string) error {
	switch typ {
	case kubehandler.WorkqueueAddEvent:
		return h.AddFunc(ctx, namespace, name)
	case kubehandler.WorkqueueUpdateEvent:
		return h.UpdateFunc(ctx, namespace, name)
	default:
		return h.DeleteFunc(ctx, namespace, name)
	}
}

// drain returns the events a FakeRecorder has recorded so far.
func drain(events chan string) []string {
	var out []string
	for {
		select {
		case e := <-events:
			out = append(out, e)
		default:
			return out
		}
	}
}

// diffPatches compares patches, treating an empty list as nil.
func diffPatches(want, got []patch) string {
	return cmp.Diff(want, got, cmp.Transformer("emptyNil", func(p []patch) []patch {
		if len(p) == 0 {
			return nil
		}
		return p
	}))
}

// typedWidget is a typed object whose status holds []metav1.Condition.
type typedWidget struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Status            struct {
		Conditions []metav1.Condition `json:"conditions,omitempty"`
	} `json:"status"`
}

func (w *typedWidget) GetConditions() []metav1.Condition { return w.Status.Conditions }

func (w *typedWidget) DeepCopyObject() runtime.Object {
	c := *w
	w.ObjectMeta.DeepCopyInto(&c.ObjectMeta)
	c.Status.Conditions = append([]metav1.Condition(nil), w.Status.Conditions...)
	return &c
}

var _ pause.HasConditions = (*typedWidget)(nil)
