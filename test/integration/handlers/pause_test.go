package handlers

import (
	"context"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/handlers/pause"
	"github.com/kubehandler/kubehandler/kubehandlertest"
	"github.com/kubehandler/kubehandler/kubelabtest"
)

const pauseLabel = "handlers.test.kubehandler.dev/paused"

// callSpy wraps a handler and records the resourceVersion of the object of
// each call once the call has returned: a barrier for "the handler has seen
// this version", to assert what it did not do.
type callSpy struct {
	kubehandler.EventHandler
	mu   sync.Mutex
	done map[string]bool
}

func (s *callSpy) record(ctx context.Context) {
	ev, _ := kubehandler.EventFromContext(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = make(map[string]bool)
	}
	if u, ok := ev.Object.(*unstructured.Unstructured); ok {
		s.done[u.GetResourceVersion()] = true
	}
}

func (s *callSpy) handled(rv string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done[rv]
}

func (s *callSpy) AddFunc(ctx context.Context, namespace, name string) error {
	defer s.record(ctx)
	return s.EventHandler.AddFunc(ctx, namespace, name)
}

func (s *callSpy) UpdateFunc(ctx context.Context, namespace, name string) error {
	defer s.record(ctx)
	return s.EventHandler.UpdateFunc(ctx, namespace, name)
}

func (s *callSpy) DeleteFunc(ctx context.Context, namespace, name string) error {
	defer s.record(ctx)
	return s.EventHandler.DeleteFunc(ctx, namespace, name)
}

// eventRecorder returns a recorder that writes Events to the lab, stopped
// when the test ends.
func eventRecorder(t *testing.T) record.EventRecorder {
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kubelabtest.Default().Client().CoreV1().Events("")})
	t.Cleanup(broadcaster.Shutdown)
	return broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "pause-test"})
}

// pausedCondition returns obj's Paused condition, or nil.
func pausedCondition(obj *unstructured.Unstructured) map[string]interface{} {
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]interface{}); ok && m["type"] == pause.ConditionTypePaused {
			return m
		}
	}
	return nil
}

// mergePatch patches the Project ns/name and returns it.
func mergePatch(t *testing.T, ns, name, patch string) *unstructured.Unstructured {
	t.Helper()
	obj, err := kubelabtest.Default().Dynamic().Resource(projects).Namespace(ns).Patch(t.Context(), name,
		types.MergePatchType, []byte(patch), metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

// TestPauseLabel: labelling a Project stops the wrapped handler and sets
// the Paused condition through the status subresource; unlabelling resumes
// it and removes the condition; both are recorded as Events.
func TestPauseLabel(t *testing.T) {
	lab := kubelabtest.Default()
	ns := lab.Namespace(t)
	factory := informers(ns)
	informer := factory.ForResource(projects).Informer()
	next := kubehandlertest.NewRecorder(t, informer, "projects")
	h, err := pause.New(next, pauseLabel, pause.DynamicPatch(lab.Dynamic(), projects), pause.WithEventRecorder(eventRecorder(t)))
	if err != nil {
		t.Fatal(err)
	}
	spy := &callSpy{EventHandler: h}
	runLoop(t, factory, spy)
	key := kubehandler.Key{Kind: "projects", Namespace: ns, Name: "p"}
	labelled := func(c kubehandlertest.Call) bool {
		return pause.IsPaused(c.Object.(*unstructured.Unstructured), pauseLabel)
	}

	if _, err := lab.Dynamic().Resource(projects).Namespace(ns).Create(t.Context(), newProject(ns, "p"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, "the handler sees the new Project", func(context.Context) (bool, error) { return len(next.CallsFor(key)) > 0, nil })

	// Pause.
	mergePatch(t, ns, "p", `{"metadata":{"labels":{"`+pauseLabel+`":"ticket-42"}}}`)
	var p *unstructured.Unstructured
	poll(t, "the Paused condition is set", func(ctx context.Context) (bool, error) {
		p, err = get(ctx, projects, ns, "p")
		return err == nil && pausedCondition(p) != nil, err
	})
	c := pausedCondition(p)
	if c["status"] != "True" || c["reason"] != pause.ReasonPausedByLabel || !strings.Contains(c["message"].(string), pauseLabel) {
		t.Errorf("Paused condition %v, want True, PausedByLabel, naming the label", c)
	}
	if !writtenThroughStatus(p) {
		t.Errorf("the condition was not written by %s through the status subresource: %+v", pause.FieldManager, p.GetManagedFields())
	}

	// An update of the paused Project reaches the pause handler, not next.
	calls := len(next.CallsFor(key))
	rv := mergePatch(t, ns, "p", `{"spec":{"size":2}}`).GetResourceVersion()
	poll(t, "the pause handler sees the update", func(context.Context) (bool, error) { return spy.handled(rv), nil })
	if got := len(next.CallsFor(key)); got != calls {
		t.Errorf("next got %d calls while the Project was paused", got-calls)
	}

	// Resume.
	mergePatch(t, ns, "p", `{"metadata":{"labels":{"`+pauseLabel+`":null}}}`)
	poll(t, "the Paused condition is removed", func(ctx context.Context) (bool, error) {
		p, err = get(ctx, projects, ns, "p")
		return err == nil && pausedCondition(p) == nil, err
	})
	poll(t, "next sees the unlabelled Project, with the update made while paused", func(context.Context) (bool, error) {
		calls := next.CallsFor(key)
		last := calls[len(calls)-1].Object.(*unstructured.Unstructured)
		size, _, _ := unstructured.NestedInt64(last.Object, "spec", "size")
		return !labelled(calls[len(calls)-1]) && size == 2, nil
	})
	for _, c := range next.CallsFor(key) {
		if labelled(c) {
			t.Errorf("next got a %s of the labelled Project (resourceVersion %s)", c.Type, c.ResourceVersion())
		}
	}

	poll(t, "Events record the pause and the resume", func(ctx context.Context) (bool, error) {
		reasons, err := eventReasons(ctx, ns, "p")
		return reasons[pause.ReasonPausedByLabel] && reasons["Resumed"], err
	})
}

// writtenThroughStatus reports whether the pause handler's field manager
// owns status.conditions through the status subresource.
func writtenThroughStatus(obj *unstructured.Unstructured) bool {
	for _, mf := range obj.GetManagedFields() {
		if mf.Manager == pause.FieldManager && mf.Subresource == "status" && mf.FieldsV1 != nil &&
			strings.Contains(mf.FieldsV1.GetRawString(), `"f:conditions"`) {
			return true
		}
	}
	return false
}

// eventReasons returns the reasons of the Events about the object name of
// namespace ns.
func eventReasons(ctx context.Context, ns, name string) (map[string]bool, error) {
	events, err := kubelabtest.Default().Client().CoreV1().Events(ns).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", name).String(),
	})
	if err != nil {
		return nil, err
	}
	reasons := make(map[string]bool)
	for _, e := range events.Items {
		reasons[e.Reason] = true
	}
	return reasons, nil
}

// selfPausing is a controller's handler that pauses a Project whose
// spec.size is negative: a state it cannot repair.
type selfPausing struct {
	kubehandler.DefaultHandler
	pauser *pause.Handler
	owner  types.UID
}

// AddFunc is UpdateFunc: a create and an update that arrive together are
// merged into one add carrying the newest state (promise 2).
func (s *selfPausing) AddFunc(ctx context.Context, namespace, name string) error {
	return s.UpdateFunc(ctx, namespace, name)
}

func (s *selfPausing) UpdateFunc(ctx context.Context, namespace, name string) error {
	ev, _ := kubehandler.EventFromContext(ctx)
	obj := ev.Object.(*unstructured.Unstructured)
	if size, _, _ := unstructured.NestedInt64(obj.Object, "spec", "size"); size < 0 {
		return s.pauser.SelfPause(ctx, obj, s.owner)
	}
	return nil
}

// TestSelfPause: the controller pauses a Project it cannot repair; the label
// carries its owner's UID, the condition says how to resume, and removing
// the label resumes it.
func TestSelfPause(t *testing.T) {
	lab := kubelabtest.Default()
	ns := lab.Namespace(t)
	factory := informers(ns)
	informer := factory.ForResource(projects).Informer()
	controller := &selfPausing{DefaultHandler: kubehandler.DefaultHandler{Informer: informer, Name: "projects"}, owner: uuid.NewUUID()}
	h, err := pause.New(controller, pauseLabel, pause.DynamicPatch(lab.Dynamic(), projects))
	if err != nil {
		t.Fatal(err)
	}
	controller.pauser = h
	runLoop(t, factory, h)

	if _, err := lab.Dynamic().Resource(projects).Namespace(ns).Create(t.Context(), newProject(ns, "p"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	mergePatch(t, ns, "p", `{"spec":{"size":-1}}`)

	var p *unstructured.Unstructured
	poll(t, "the controller pauses the Project", func(ctx context.Context) (bool, error) {
		p, err = get(ctx, projects, ns, "p")
		return err == nil && pause.IsPaused(p, pauseLabel) && pausedCondition(p) != nil, err
	})
	if got := p.GetLabels()[pauseLabel]; got != string(controller.owner) {
		t.Errorf("label value %q, want the owner UID %s", got, controller.owner)
	}
	c := pausedCondition(p)
	if c["status"] != "True" || c["reason"] != pause.ReasonPausedByController || !strings.Contains(c["message"].(string), "remove the label "+pauseLabel) {
		t.Errorf("Paused condition %v, want True, PausedByController, saying how to resume", c)
	}

	// Repaired and unlabelled by a human: resumed.
	mergePatch(t, ns, "p", `{"spec":{"size":3},"metadata":{"labels":{"`+pauseLabel+`":null}}}`)
	poll(t, "the Paused condition is removed", func(ctx context.Context) (bool, error) {
		p, err = get(ctx, projects, ns, "p")
		return err == nil && pausedCondition(p) == nil, err
	})
	if pause.IsPaused(p, pauseLabel) {
		t.Errorf("the repaired Project was paused again: %v", p.GetLabels())
	}
}
