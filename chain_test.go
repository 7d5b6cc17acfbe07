package kubehandler_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/handlers/pause"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// trace records the calls of a chain's steps, in order, as "step:method".
type trace struct {
	mu    sync.Mutex
	calls []string
	types []string // Event.Type of each call, "" outside the loop
}

func (tr *trace) add(ctx context.Context, call string) {
	ev, _ := kubehandler.EventFromContext(ctx)
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.calls = append(tr.calls, call)
	tr.types = append(tr.types, ev.Type)
}

func (tr *trace) get() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Clone(tr.calls)
}

// count returns how many calls were call.
func (tr *trace) count(call string) int {
	n := 0
	for _, c := range tr.get() {
		if c == call {
			n++
		}
	}
	return n
}

// testStep is a Step that records its calls in a trace and returns what ret
// returns (nil when ret is nil).
type testStep struct {
	name  string
	trace *trace
	ret   func(method string) error
}

func (s *testStep) call(ctx context.Context, method string) error {
	s.trace.add(ctx, s.name+":"+method)
	if s.ret == nil {
		return nil
	}
	return s.ret(method)
}

func (s *testStep) AddFunc(ctx context.Context, _, _ string) error    { return s.call(ctx, "add") }
func (s *testStep) UpdateFunc(ctx context.Context, _, _ string) error { return s.call(ctx, "update") }
func (s *testStep) DeleteFunc(ctx context.Context, _, _ string) error { return s.call(ctx, "delete") }

// threeSteps returns steps s1, s2 and s3 recording in tr; step i (0-based)
// returns what rets[i] returns.
func threeSteps(tr *trace, rets ...func(string) error) []kubehandler.Step {
	steps := make([]kubehandler.Step, 3)
	for i := range steps {
		var ret func(string) error
		if i < len(rets) {
			ret = rets[i]
		}
		steps[i] = &testStep{name: fmt.Sprint("s", i+1), trace: tr, ret: ret}
	}
	return steps
}

// always returns a step result function that returns err whatever the method.
func always(err error) func(string) error { return func(string) error { return err } }

// syncedFixture returns a fixture holding objs, its informer synced.
func syncedFixture(t *testing.T, newList func() runtime.Object, example runtime.Object, objs ...runtime.Object) *fixture {
	t.Helper()
	f := newFixtureWith(t, 0, newList, example)
	for _, o := range objs {
		f.source.Create(o)
	}
	eventually(t, "informer synced", func() bool {
		return f.informer.HasSynced() && len(f.informer.GetStore().List()) == len(objs)
	})
	return f
}

// dying returns a ConfigMap being deleted, held by finalizers.
func dying(namespace, name string, finalizers ...string) *corev1.ConfigMap {
	cm := configMap(namespace, name, "1")
	now := metav1.Now()
	cm.DeletionTimestamp = &now
	cm.Finalizers = finalizers
	return cm
}

func withFinalizers(cm *corev1.ConfigMap, finalizers ...string) *corev1.ConfigMap {
	cm.Finalizers = finalizers
	return cm
}

// Every control, returned by each of three steps in turn, on every path: the
// steps that run and the chain's result follow the documented rules.
func TestChainControls(t *testing.T) {
	f := syncedFixture(t, func() runtime.Object { return &corev1.ConfigMapList{} }, &corev1.ConfigMap{},
		configMap("ns", "live", "1"), dying("ns", "dying", "someone.else/keep"))

	isNil := func(err error) string {
		if err != nil {
			return fmt.Sprintf("got %v, want nil", err)
		}
		return ""
	}
	is := func(want error) func(error) string {
		return func(err error) string {
			if err == nil || err.Error() != want.Error() || kubehandler.IsKeepFinalizer(err) != kubehandler.IsKeepFinalizer(want) {
				return fmt.Sprintf("got %v, want %v", err, want)
			}
			return ""
		}
	}
	failure := func(terminal bool, contains string) func(error) string {
		return func(err error) string {
			if !errors.Is(err, errBoom) || kubehandler.IsTerminal(err) != terminal || !strings.Contains(err.Error(), contains) {
				return fmt.Sprintf("got %v, want boom (terminal %v) mentioning %q", err, terminal, contains)
			}
			return ""
		}
	}
	controls := []struct {
		name  string
		ret   func(string) error
		stops bool
		check func(pos int) func(error) string
	}{
		{"nil", always(nil), false, func(int) func(error) string { return isNil }},
		{"skip step", always(kubehandler.SkipStep()), false, func(int) func(error) string { return isNil }},
		{"wrapped skip step", always(fmt.Errorf("nothing to do: %w", kubehandler.SkipStep())), false, func(int) func(error) string { return isNil }},
		{"cancel chain", always(kubehandler.CancelChain()), true, func(int) func(error) string { return isNil }},
		{"requeue", always(kubehandler.RequeueAfter(time.Second)), false, func(int) func(error) string { return is(kubehandler.RequeueAfter(time.Second)) }},
		{"keep finalizer", always(kubehandler.KeepFinalizer(time.Second)), false, func(int) func(error) string { return is(kubehandler.KeepFinalizer(time.Second)) }},
		{"error", always(errBoom), true, func(pos int) func(error) string {
			return failure(false, fmt.Sprintf("step %d/3 (*kubehandler_test.testStep)", pos+1))
		}},
		{"terminal", always(kubehandler.Terminal(errBoom)), true, func(pos int) func(error) string { return failure(true, fmt.Sprintf("step %d/3", pos+1)) }},
		{"panic", func(string) error { panic(errBoom) }, true, func(pos int) func(error) string {
			return failure(false, fmt.Sprintf("step %d/3 (*kubehandler_test.testStep): handler panicked", pos+1))
		}},
	}
	paths := []struct {
		name   string
		call   func(c *kubehandler.Chain, ctx context.Context) error
		method string
	}{
		{"add", func(c *kubehandler.Chain, ctx context.Context) error { return c.AddFunc(ctx, "ns", "live") }, "add"},
		{"update", func(c *kubehandler.Chain, ctx context.Context) error { return c.UpdateFunc(ctx, "ns", "live") }, "update"},
		{"delete", func(c *kubehandler.Chain, ctx context.Context) error { return c.DeleteFunc(ctx, "ns", "gone") }, "delete"},
		{"update of an object being deleted", func(c *kubehandler.Chain, ctx context.Context) error { return c.UpdateFunc(ctx, "ns", "dying") }, "delete"},
		{"add of an object being deleted", func(c *kubehandler.Chain, ctx context.Context) error { return c.AddFunc(ctx, "ns", "dying") }, "delete"},
	}
	for _, path := range paths {
		for _, control := range controls {
			for pos := range 3 {
				t.Run(fmt.Sprintf("%s/%s/step %d", path.name, control.name, pos+1), func(t *testing.T) {
					tr := &trace{}
					rets := make([]func(string) error, 3)
					rets[pos] = control.ret
					c := &kubehandler.Chain{
						DefaultHandler: kubehandler.DefaultHandler{Informer: f.informer, Name: "chain"},
						Steps:          threeSteps(tr, rets...),
					}
					err := path.call(c, t.Context())
					if why := control.check(pos)(err); why != "" {
						t.Error(why)
					}
					var want []string
					last := 3
					if control.stops {
						last = pos + 1
					}
					for i := range last {
						want = append(want, fmt.Sprintf("s%d:%s", i+1, path.method))
					}
					if diff := cmp.Diff(want, tr.get()); diff != "" {
						t.Errorf("steps called (-want +got):\n%s", diff)
					}
				})
			}
		}
	}
}

// Controls from several steps combine: the smallest delay wins, KeepFinalizer
// wins over RequeueAfter, a failure wins over requeues, and requeues asked
// before a CancelChain still apply.
func TestChainCombinedControls(t *testing.T) {
	f := syncedFixture(t, func() runtime.Object { return &corev1.ConfigMapList{} }, &corev1.ConfigMap{}, configMap("ns", "live", "1"))
	requeue := func(d time.Duration) func(string) error { return always(kubehandler.RequeueAfter(d)) }
	keep := func(d time.Duration) func(string) error { return always(kubehandler.KeepFinalizer(d)) }
	tests := []struct {
		name  string
		rets  []func(string) error
		want  error // compared by message and IsKeepFinalizer; nil for nil
		boom  bool  // want a failure wrapping errBoom instead
		calls int
	}{
		{"smallest delay wins", []func(string) error{requeue(3 * time.Second), nil, requeue(time.Second)}, kubehandler.RequeueAfter(time.Second), false, 3},
		{"zero delay is smallest", []func(string) error{requeue(0), requeue(2 * time.Second), nil}, kubehandler.RequeueAfter(0), false, 3},
		{"keep wins over requeue, smallest delay", []func(string) error{keep(5 * time.Second), requeue(time.Second), nil}, kubehandler.KeepFinalizer(time.Second), false, 3},
		{"failure wins over requeue", []func(string) error{requeue(time.Second), always(errBoom), nil}, nil, true, 2},
		{"requeue before cancel applies", []func(string) error{requeue(time.Second), always(kubehandler.CancelChain()), nil}, kubehandler.RequeueAfter(time.Second), false, 2},
		{"wrapped requeue", []func(string) error{nil, always(fmt.Errorf("waiting: %w", kubehandler.RequeueAfter(time.Minute))), nil}, kubehandler.RequeueAfter(time.Minute), false, 3},
		{"wrapped cancel", []func(string) error{always(fmt.Errorf("paused: %w", kubehandler.CancelChain())), nil, nil}, nil, false, 1},
		{"all skip", []func(string) error{always(kubehandler.SkipStep()), always(kubehandler.SkipStep()), always(kubehandler.SkipStep())}, nil, false, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &trace{}
			c := &kubehandler.Chain{DefaultHandler: kubehandler.DefaultHandler{Informer: f.informer}, Steps: threeSteps(tr, tt.rets...)}
			err := c.UpdateFunc(t.Context(), "ns", "live")
			switch {
			case tt.boom:
				if !errors.Is(err, errBoom) {
					t.Errorf("got %v, want boom", err)
				}
			case tt.want == nil:
				if err != nil {
					t.Errorf("got %v, want nil", err)
				}
			case err == nil || err.Error() != tt.want.Error() || kubehandler.IsKeepFinalizer(err) != kubehandler.IsKeepFinalizer(tt.want):
				t.Errorf("got %v, want %v", err, tt.want)
			}
			if n := len(tr.get()); n != tt.calls {
				t.Errorf("%d steps called, want %d: %v", n, tt.calls, tr.get())
			}
		})
	}
}

// patchRecorder is a PatchFunc that records the patches it is sent and
// returns err.
type patchRecorder struct {
	mu      sync.Mutex
	patches []string // "namespace/name: data"
	err     error
}

func (p *patchRecorder) patch(_ context.Context, namespace, name string, pt types.PatchType, data []byte, subresources ...string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if pt != types.MergePatchType || len(subresources) > 0 {
		return fmt.Errorf("patch type %s of %v, want a merge patch of the object", pt, subresources)
	}
	p.patches = append(p.patches, namespace+"/"+name+": "+string(data))
	return p.err
}

func (p *patchRecorder) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.patches)
}

// A chain with a Finalizer adds it to live objects before the steps run, and
// removes it from objects being deleted only when every step's delete path
// is done.
func TestChainFinalizer(t *testing.T) {
	const ours = "example.com/cleanup"
	f := syncedFixture(t, func() runtime.Object { return &corev1.ConfigMapList{} }, &corev1.ConfigMap{},
		withFinalizers(configMap("ns", "new", "1"), "someone.else/keep"),
		withFinalizers(configMap("ns", "owned", "1"), ours),
		dying("ns", "dying", "someone.else/keep", ours),
		dying("ns", "dying-ours-only", ours),
		dying("ns", "cleaned", "someone.else/keep"),
	)
	rv := func(name string) string {
		obj, _ := f.source.Get("ns", name)
		return obj.(metav1.Object).GetResourceVersion()
	}
	notFound := apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, "x")
	conflict := apierrors.NewConflict(schema.GroupResource{Resource: "configmaps"}, "x", errors.New("changed"))
	tests := []struct {
		name     string
		call     func(c *kubehandler.Chain, ctx context.Context) error
		rets     []func(string) error
		patchErr error
		noPatch  bool
		// want
		check   func(error) bool
		calls   []string
		patches []string
	}{
		{name: "live object: finalizer added, then the steps",
			call:    func(c *kubehandler.Chain, ctx context.Context) error { return c.AddFunc(ctx, "ns", "new") },
			check:   func(err error) bool { return err == nil },
			calls:   []string{"s1:add", "s2:add", "s3:add"},
			patches: []string{`ns/new: {"metadata":{"finalizers":["someone.else/keep","example.com/cleanup"],"resourceVersion":"` + rv("new") + `"}}`}},
		{name: "live object with the finalizer: no patch",
			call:  func(c *kubehandler.Chain, ctx context.Context) error { return c.UpdateFunc(ctx, "ns", "owned") },
			check: func(err error) bool { return err == nil },
			calls: []string{"s1:update", "s2:update", "s3:update"}},
		{name: "adding conflicts: no step runs; the newer version's event runs the chain",
			call:     func(c *kubehandler.Chain, ctx context.Context) error { return c.AddFunc(ctx, "ns", "new") },
			patchErr: conflict,
			check:    func(err error) bool { return err == nil },
			patches:  []string{`ns/new: {"metadata":{"finalizers":["someone.else/keep","example.com/cleanup"],"resourceVersion":"` + rv("new") + `"}}`}},
		{name: "adding fails: no step runs, retried",
			call:     func(c *kubehandler.Chain, ctx context.Context) error { return c.AddFunc(ctx, "ns", "new") },
			patchErr: errBoom,
			check:    func(err error) bool { return errors.Is(err, errBoom) && !kubehandler.IsTerminal(err) },
			patches:  []string{`ns/new: {"metadata":{"finalizers":["someone.else/keep","example.com/cleanup"],"resourceVersion":"` + rv("new") + `"}}`}},
		{name: "object gone while adding: no step runs, success",
			call:     func(c *kubehandler.Chain, ctx context.Context) error { return c.AddFunc(ctx, "ns", "new") },
			patchErr: notFound,
			check:    func(err error) bool { return err == nil },
			patches:  []string{`ns/new: {"metadata":{"finalizers":["someone.else/keep","example.com/cleanup"],"resourceVersion":"` + rv("new") + `"}}`}},
		{name: "object not in the cache: skipped",
			call:  func(c *kubehandler.Chain, ctx context.Context) error { return c.AddFunc(ctx, "ns", "nowhere") },
			check: func(err error) bool { return err == nil }},
		{name: "being deleted, every step done: finalizer removed, others kept",
			call:    func(c *kubehandler.Chain, ctx context.Context) error { return c.UpdateFunc(ctx, "ns", "dying") },
			rets:    []func(string) error{nil, always(kubehandler.SkipStep()), nil},
			check:   func(err error) bool { return err == nil },
			calls:   []string{"s1:delete", "s2:delete", "s3:delete"},
			patches: []string{`ns/dying: {"metadata":{"finalizers":["someone.else/keep"],"resourceVersion":"` + rv("dying") + `"}}`}},
		{name: "being deleted, last finalizer removed",
			call: func(c *kubehandler.Chain, ctx context.Context) error {
				return c.UpdateFunc(ctx, "ns", "dying-ours-only")
			},
			check:   func(err error) bool { return err == nil },
			calls:   []string{"s1:delete", "s2:delete", "s3:delete"},
			patches: []string{`ns/dying-ours-only: {"metadata":{"finalizers":null,"resourceVersion":"` + rv("dying-ours-only") + `"}}`}},
		{name: "being deleted, a step keeps the finalizer",
			call:  func(c *kubehandler.Chain, ctx context.Context) error { return c.UpdateFunc(ctx, "ns", "dying") },
			rets:  []func(string) error{nil, always(kubehandler.KeepFinalizer(time.Second)), nil},
			check: kubehandler.IsKeepFinalizer,
			calls: []string{"s1:delete", "s2:delete", "s3:delete"}},
		{name: "being deleted, a step requeues: finalizer kept",
			call: func(c *kubehandler.Chain, ctx context.Context) error { return c.UpdateFunc(ctx, "ns", "dying") },
			rets: []func(string) error{nil, nil, always(kubehandler.RequeueAfter(time.Second))},
			check: func(err error) bool {
				return err != nil && err.Error() == "requeue after 1s" && !kubehandler.IsKeepFinalizer(err)
			},
			calls: []string{"s1:delete", "s2:delete", "s3:delete"}},
		{name: "being deleted, a step cancels: finalizer kept, success",
			call:  func(c *kubehandler.Chain, ctx context.Context) error { return c.UpdateFunc(ctx, "ns", "dying") },
			rets:  []func(string) error{always(kubehandler.CancelChain())},
			check: func(err error) bool { return err == nil },
			calls: []string{"s1:delete"}},
		{name: "being deleted, a step fails: finalizer kept",
			call:  func(c *kubehandler.Chain, ctx context.Context) error { return c.UpdateFunc(ctx, "ns", "dying") },
			rets:  []func(string) error{nil, nil, always(errBoom)},
			check: func(err error) bool { return errors.Is(err, errBoom) },
			calls: []string{"s1:delete", "s2:delete", "s3:delete"}},
		{name: "being deleted, a step panics: finalizer kept",
			call:  func(c *kubehandler.Chain, ctx context.Context) error { return c.UpdateFunc(ctx, "ns", "dying") },
			rets:  []func(string) error{nil, func(string) error { panic("boom") }},
			check: func(err error) bool { return err != nil && strings.Contains(err.Error(), "panicked: boom") },
			calls: []string{"s1:delete", "s2:delete"}},
		{name: "removing conflicts: the newer version's event runs the delete path again",
			call:     func(c *kubehandler.Chain, ctx context.Context) error { return c.UpdateFunc(ctx, "ns", "dying") },
			patchErr: conflict,
			check:    func(err error) bool { return err == nil },
			calls:    []string{"s1:delete", "s2:delete", "s3:delete"},
			patches:  []string{`ns/dying: {"metadata":{"finalizers":["someone.else/keep"],"resourceVersion":"` + rv("dying") + `"}}`}},
		{name: "removing finds the object gone: success",
			call:     func(c *kubehandler.Chain, ctx context.Context) error { return c.UpdateFunc(ctx, "ns", "dying") },
			patchErr: notFound,
			check:    func(err error) bool { return err == nil },
			calls:    []string{"s1:delete", "s2:delete", "s3:delete"},
			patches:  []string{`ns/dying: {"metadata":{"finalizers":["someone.else/keep"],"resourceVersion":"` + rv("dying") + `"}}`}},
		{name: "being deleted without our finalizer: cleaned up already",
			call:  func(c *kubehandler.Chain, ctx context.Context) error { return c.UpdateFunc(ctx, "ns", "cleaned") },
			check: func(err error) bool { return err == nil }},
		{name: "delete event: every step's delete path, nothing to patch",
			call:  func(c *kubehandler.Chain, ctx context.Context) error { return c.DeleteFunc(ctx, "ns", "gone") },
			check: func(err error) bool { return err == nil },
			calls: []string{"s1:delete", "s2:delete", "s3:delete"}},
		{name: "finalizer without patch: terminal",
			call:    func(c *kubehandler.Chain, ctx context.Context) error { return c.AddFunc(ctx, "ns", "new") },
			noPatch: true,
			check:   kubehandler.IsTerminal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := &trace{}
			p := &patchRecorder{err: tt.patchErr}
			c := &kubehandler.Chain{
				DefaultHandler: kubehandler.DefaultHandler{Informer: f.informer},
				Steps:          threeSteps(tr, tt.rets...),
				Finalizer:      ours,
				Patch:          p.patch,
			}
			if tt.noPatch {
				c.Patch = nil
			}
			if err := tt.call(c, t.Context()); !tt.check(err) {
				t.Errorf("unexpected result %v", err)
			}
			if diff := cmp.Diff(tt.calls, tr.get()); diff != "" {
				t.Errorf("steps called (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.patches, p.get()); diff != "" {
				t.Errorf("patches (-want +got):\n%s", diff)
			}
		})
	}
}

// Without a Finalizer, the chain still sends objects being deleted down the
// delete path, on every update, whoever holds them.
func TestChainWithoutFinalizerRunsDeletePathOfDyingObjects(t *testing.T) {
	f := syncedFixture(t, func() runtime.Object { return &corev1.ConfigMapList{} }, &corev1.ConfigMap{}, dying("ns", "cleaned", "someone.else/keep"))
	tr := &trace{}
	c := &kubehandler.Chain{DefaultHandler: kubehandler.DefaultHandler{Informer: f.informer}, Steps: threeSteps(tr)}
	for range 2 {
		if err := c.UpdateFunc(t.Context(), "ns", "cleaned"); err != nil {
			t.Fatal(err)
		}
	}
	if n := tr.count("s3:delete"); n != 2 {
		t.Errorf("s3's delete path ran %d times, want 2: %v", n, tr.get())
	}
}

// Misused chains fail clearly, never panic: a nil step is a Terminal error;
// a cancelled context stops the chain between steps.
func TestChainMisuse(t *testing.T) {
	f := syncedFixture(t, func() runtime.Object { return &corev1.ConfigMapList{} }, &corev1.ConfigMap{}, configMap("ns", "live", "1"))
	tr := &trace{}
	steps := threeSteps(tr)
	steps[1] = nil
	c := &kubehandler.Chain{DefaultHandler: kubehandler.DefaultHandler{Informer: f.informer}, Steps: steps}
	if err := c.AddFunc(t.Context(), "ns", "live"); !kubehandler.IsTerminal(err) || !strings.Contains(err.Error(), "step 2/3") {
		t.Errorf("nil step: got %v, want a terminal error naming step 2/3", err)
	}

	var nilChain *kubehandler.Chain // its methods and GetName panic
	c.Steps = []kubehandler.Step{nilChain}
	if err := c.AddFunc(t.Context(), "ns", "live"); err == nil || !strings.Contains(err.Error(), "step 1/1 (*kubehandler.Chain): handler panicked") {
		t.Errorf("nil *Chain step: got %v, want a panic naming its type", err)
	}

	c.Steps, c.Finalizer = threeSteps(tr), "example.com/cleanup"
	c.Patch = (&patchRecorder{}).patch
	c.Informer = nil
	if err := c.AddFunc(t.Context(), "ns", "live"); !kubehandler.IsTerminal(err) {
		t.Errorf("finalizer without informer: got %v, want a terminal error", err)
	}
	c.Finalizer, c.Informer = "", f.informer

	ctx, cancel := context.WithCancel(t.Context())
	tr2 := &trace{}
	c.Steps = threeSteps(tr2, func(string) error { cancel(); return nil })
	if err := c.AddFunc(ctx, "ns", "live"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: got %v, want context.Canceled", err)
	}
	if diff := cmp.Diff([]string{"s1:add"}, tr2.get()); diff != "" {
		t.Errorf("steps called after the context was cancelled (-want +got):\n%s", diff)
	}
}

// StepFunc handles live objects only, DeleteStepFunc the delete path only;
// every EventHandler is a Step, and a Chain is a step of another chain.
func TestStepAdapters(t *testing.T) {
	f := syncedFixture(t, func() runtime.Object { return &corev1.ConfigMapList{} }, &corev1.ConfigMap{},
		configMap("ns", "live", "1"), dying("ns", "dying", "x"))
	tr := &trace{}
	inner := &kubehandler.Chain{Steps: []kubehandler.Step{
		&testStep{name: "inner1", trace: tr, ret: always(kubehandler.CancelChain())},
		&testStep{name: "inner2", trace: tr},
	}}
	c := &kubehandler.Chain{
		DefaultHandler: kubehandler.DefaultHandler{Informer: f.informer},
		Steps: []kubehandler.Step{
			kubehandler.StepFunc(func(ctx context.Context, ns, name string) error { tr.add(ctx, "live:"+name); return nil }),
			kubehandler.DeleteStepFunc(func(ctx context.Context, ns, name string) error { tr.add(ctx, "cleanup:"+name); return nil }),
			&kubehandler.DefaultHandler{},
			inner, // its CancelChain ends the inner chain only
			&testStep{name: "last", trace: tr},
		},
	}
	for _, call := range []func() error{
		func() error { return c.AddFunc(t.Context(), "ns", "live") },
		func() error { return c.UpdateFunc(t.Context(), "ns", "dying") },
		func() error { return c.DeleteFunc(t.Context(), "ns", "gone") },
	} {
		if err := call(); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"live:live", "inner1:add", "last:add",
		"cleanup:dying", "inner1:delete", "last:delete",
		"cleanup:gone", "inner1:delete", "last:delete",
	}
	if diff := cmp.Diff(want, tr.get()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

// fakeServer adds to a kubehandlertest.Source what the API server does with
// finalizers: deleting an object that has finalizers sets its deletion
// timestamp, and removing its last finalizer then deletes it. Patch applies
// a Chain's merge patches of metadata.finalizers, with their
// resourceVersion precondition.
type fakeServer struct {
	source *kubehandlertest.Source
	snap   *snapshots // if set, takes a copy of every object written
	mu     sync.Mutex
}

// Create stores obj.
func (s *fakeServer) Create(obj runtime.Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.write(obj, s.source.Create)
}

// write stores obj with store, and snapshots it as stored.
func (s *fakeServer) write(obj runtime.Object, store func(runtime.Object) string) {
	if s.snap == nil {
		store(obj)
		return
	}
	s.snap.write(obj, store)
}

func (s *fakeServer) Patch(_ context.Context, namespace, name string, pt types.PatchType, data []byte, subresources ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if pt != types.MergePatchType || len(subresources) > 0 {
		return fmt.Errorf("patch type %s of %v, want a merge patch of the object", pt, subresources)
	}
	var p struct {
		Metadata struct {
			Finalizers      []string `json:"finalizers"`
			ResourceVersion string   `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	cur, ok := s.source.Get(namespace, name)
	if !ok {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, name)
	}
	if rv := p.Metadata.ResourceVersion; rv != "" && rv != mustMeta(cur).GetResourceVersion() {
		return apierrors.NewConflict(schema.GroupResource{Resource: "configmaps"}, name, errors.New("the object has been modified"))
	}
	obj := cur.DeepCopyObject()
	m := mustMeta(obj)
	m.SetFinalizers(p.Metadata.Finalizers)
	if m.GetDeletionTimestamp() != nil && len(p.Metadata.Finalizers) == 0 {
		s.source.Delete(namespace, name)
		return nil
	}
	s.write(obj, s.source.Update)
	return nil
}

// Delete deletes the object, or marks it deleted while finalizers hold it.
func (s *fakeServer) Delete(namespace, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.source.Get(namespace, name)
	if !ok {
		return
	}
	if len(mustMeta(cur).GetFinalizers()) == 0 {
		s.source.Delete(namespace, name)
		return
	}
	obj := cur.DeepCopyObject()
	now := metav1.Now()
	mustMeta(obj).SetDeletionTimestamp(&now)
	s.write(obj, s.source.Update)
}

// Set replaces the object by what change makes of a copy of it.
func (s *fakeServer) Set(namespace, name string, change func(runtime.Object)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.source.Get(namespace, name)
	if !ok {
		panic(namespace + "/" + name + " does not exist")
	}
	obj := cur.DeepCopyObject()
	change(obj)
	s.write(obj, s.source.Update)
}

func mustMeta(obj runtime.Object) metav1.Object {
	m, err := meta.Accessor(obj)
	if err != nil {
		panic(err)
	}
	return m
}

// A three-step chain with a finalizer on an EventLoop, over an in-memory
// server: the finalizer is added, the steps converge; on deletion a step
// keeps the finalizer while its dependent exists, the delete is replayed
// after the delay asked for (a fake clock), and once the dependent is gone
// the finalizer goes, the object disappears and its delete event reaches the
// steps.
func TestChainLifecycleOnEventLoop(t *testing.T) {
	const ours = "example.com/cleanup"
	f := newFixture(t)
	server := &fakeServer{source: f.source}
	clock := clocktesting.NewFakeClock(time.Now())
	tr := &trace{}
	var mu sync.Mutex
	dependents := map[string]bool{}
	hasDependent := func(name string) bool {
		mu.Lock()
		defer mu.Unlock()
		return dependents[name]
	}
	dependent := &testStep{name: "dependent", trace: tr, ret: func(method string) error {
		mu.Lock()
		defer mu.Unlock()
		if method == "delete" {
			if dependents["gear"] {
				return kubehandler.KeepFinalizer(10 * time.Second)
			}
			return nil
		}
		dependents["gear"] = true
		return nil
	}}
	var seenFinalizer []bool // did the status step see our finalizer on the object?
	status := kubehandler.StepFunc(func(ctx context.Context, _, _ string) error {
		ev, _ := kubehandler.EventFromContext(ctx)
		mu.Lock()
		defer mu.Unlock()
		seenFinalizer = append(seenFinalizer, slices.Contains(ev.Object.(metav1.Object).GetFinalizers(), ours))
		return nil
	})
	c := &kubehandler.Chain{
		DefaultHandler: kubehandler.DefaultHandler{Informer: f.informer, Name: "gears"},
		Steps:          []kubehandler.Step{&testStep{name: "first", trace: tr}, dependent, status},
		Finalizer:      ours,
		Patch:          server.Patch,
	}
	loop := kubehandler.NewEventLoop("chain", kubehandler.WithClock(clock), fastRetries(),
		kubehandler.WithErrorHandler(func(key kubehandler.Key, _ int, err error) kubehandler.ErrorAction {
			if !apierrors.IsConflict(err) {
				t.Errorf("%s failed: %v", key, err)
			}
			return kubehandler.ErrorActionRetry
		}))
	loop.Register(c)
	kubehandlertest.Start(t, loop, 2)

	f.source.Create(configMap("ns", "gear", "1"))
	eventually(t, "finalizer added and steps run with it", func() bool {
		obj, ok := f.source.Get("ns", "gear")
		mu.Lock()
		defer mu.Unlock()
		return ok && slices.Contains(mustMeta(obj).GetFinalizers(), ours) && dependents["gear"] &&
			len(seenFinalizer) > 0 && seenFinalizer[len(seenFinalizer)-1]
	})

	server.Delete("ns", "gear")
	eventually(t, "dependent step keeps the finalizer", func() bool { return tr.count("dependent:delete") >= 1 })
	if n := tr.count("dependent:delete"); n != 1 {
		t.Errorf("dependent's delete path ran %d times before the clock moved, want 1", n)
	}
	eventually(t, "the delete path replayed after 10s", func() bool {
		if tr.count("dependent:delete") >= 2 {
			return true
		}
		clock.Step(5 * time.Second)
		return false
	})
	obj, ok := f.source.Get("ns", "gear")
	if !ok || mustMeta(obj).GetDeletionTimestamp() == nil || !slices.Contains(mustMeta(obj).GetFinalizers(), ours) {
		t.Fatalf("object %v (exists %v): want it held by our finalizer", obj, ok)
	}

	mu.Lock()
	dependents["gear"] = false
	mu.Unlock()
	eventually(t, "object gone and its delete handled", func() bool {
		_, exists := f.source.Get("ns", "gear")
		tr.mu.Lock()
		deleteEventSeen := slices.Contains(tr.types, kubehandler.WorkqueueDeleteEvent)
		tr.mu.Unlock()
		if exists || !deleteEventSeen {
			clock.Step(5 * time.Second)
			return false
		}
		return true
	})
	if hasDependent("gear") {
		t.Error("dependent recreated on the delete path")
	}
	for _, call := range tr.get() {
		if call == "first:add" || call == "first:update" {
			continue
		}
		if !slices.Contains([]string{"first:delete", "dependent:add", "dependent:update", "dependent:delete"}, call) {
			t.Errorf("unexpected call %s", call)
		}
	}
}

// Through the loop, a step's panic is counted as a panic and retried, an
// error is retried, and Terminal is counted as terminal: the chain keeps the
// loop's behaviour for each.
func TestChainFailuresThroughTheLoop(t *testing.T) {
	f := newFixture(t)
	reg, gather := newRegistry()
	loop := kubehandler.NewEventLoop("chain-failures", fastRetries(), kubehandler.WithMetrics(reg))
	tr := &trace{}
	var mu sync.Mutex
	calls := map[string]int{}
	second := &testStep{name: "s2", trace: tr}
	c := &kubehandler.Chain{
		DefaultHandler: kubehandler.DefaultHandler{Informer: f.informer, Name: "cm"},
		Steps: []kubehandler.Step{
			&testStep{name: "s1", trace: tr},
			kubehandler.StepFunc(func(ctx context.Context, _, name string) error {
				mu.Lock()
				calls[name]++
				n := calls[name]
				mu.Unlock()
				switch {
				case name == "terminal":
					return kubehandler.Terminal(errBoom)
				case n == 1:
					panic("first call")
				case n == 2:
					return errBoom
				}
				return nil
			}),
			second,
		},
	}
	loop.Register(c)
	kubehandlertest.Start(t, loop, 1)
	f.source.Create(configMap("ns", "flaky", "1"))
	f.source.Create(configMap("ns", "terminal", "1"))
	eventually(t, "counted", func() bool {
		g := gather()
		return g.calls("chain-failures", "cm", "add", "panic") == 1 && g.calls("chain-failures", "cm", "add", "error") == 1 &&
			g.calls("chain-failures", "cm", "add", "success") == 1 && g.calls("chain-failures", "cm", "add", "terminal") == 1
	})
	if n := tr.count("s2:add"); n != 1 {
		t.Errorf("the step after the failing one ran %d times, want once (after the success)", n)
	}
	if n := tr.count("s1:add"); n != 4 {
		t.Errorf("the first step ran %d times, want 4 (three for flaky, one for terminal)", n)
	}
}

// The pause handler is a chain step: for a paused object it cancels the
// steps after it; objects not paused go on; deletes pass by default, and
// with WithPauseDeletes a paused object's cleanup waits, its finalizer kept.
// One PatchFunc serves the chain and the pause step.
func TestPauseHandlerAsChainStep(t *testing.T) {
	const label, ours = "example.com/paused", "example.com/cleanup"
	// The pause handler reads status.conditions: unstructured objects have them.
	object := func(name string, paused, deleting bool) *unstructured.Unstructured {
		u := unstructuredConfigMap("ns", name, "1")
		u.SetFinalizers([]string{ours})
		if paused {
			u.SetLabels(map[string]string{label: ""})
		}
		if deleting {
			now := metav1.Now()
			u.SetDeletionTimestamp(&now)
		}
		return u
	}
	f := syncedFixture(t, func() runtime.Object { return &unstructured.UnstructuredList{} }, &unstructured.Unstructured{},
		object("paused", true, false), object("running", false, false), object("paused-dying", true, true))
	yes, no := true, false
	tests := []struct {
		name         string
		object       string
		pauseDeletes bool
		calls        []string
		finalizers   []string // the chain's finalizer patches
		marked       *bool    // whether the pause step patched the status; nil: either
	}{
		{"paused: the rest of the chain is cancelled", "paused", false, nil, nil, &yes},
		{"not paused: the chain goes on", "running", false, []string{"s2:update", "s3:update"}, nil, &no},
		{"paused and being deleted: the delete path goes on, finalizer removed", "paused-dying", false,
			[]string{"s2:delete", "s3:delete"}, []string{`{"metadata":{"finalizers":null,"resourceVersion":"3"}}`}, &no},
		{"paused and being deleted, deletes paused: finalizer kept", "paused-dying", true, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var finalizers []string
			marked := false
			patch := func(_ context.Context, namespace, name string, pt types.PatchType, data []byte, subresources ...string) error {
				mu.Lock()
				defer mu.Unlock()
				if slices.Equal(subresources, []string{"status"}) {
					marked = true
				} else {
					finalizers = append(finalizers, string(data))
				}
				return nil
			}
			opts := []pause.Option{pause.WithStore(f.informer.GetStore())}
			if tt.pauseDeletes {
				opts = append(opts, pause.WithPauseDeletes())
			}
			step, err := pause.NewStep(label, patch, opts...)
			if err != nil {
				t.Fatal(err)
			}
			tr := &trace{}
			steps := threeSteps(tr)
			steps[0] = step
			c := &kubehandler.Chain{
				DefaultHandler: kubehandler.DefaultHandler{Informer: f.informer},
				Steps:          steps,
				Finalizer:      ours,
				Patch:          patch,
			}
			if err := c.UpdateFunc(t.Context(), "ns", tt.object); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.calls, tr.get()); diff != "" {
				t.Errorf("steps called after the pause step (-want +got):\n%s", diff)
			}
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff(tt.finalizers, finalizers); diff != "" {
				t.Errorf("finalizer patches (-want +got):\n%s", diff)
			}
			if tt.marked != nil && *tt.marked != marked {
				t.Errorf("status patched: %v, want %v", marked, *tt.marked)
			}
		})
	}
}

// ClientPatch patches through typed and dynamic clients alike.
func TestClientPatch(t *testing.T) {
	patch := []byte(`{"metadata":{"finalizers":["example.com/cleanup"]}}`)
	t.Run("typed", func(t *testing.T) {
		cs := fake.NewClientset(configMap("ns", "cm", "1"))
		if err := kubehandler.ClientPatch(cs.CoreV1().ConfigMaps)(t.Context(), "ns", "cm", types.MergePatchType, patch); err != nil {
			t.Fatal(err)
		}
		cm, err := cs.CoreV1().ConfigMaps("ns").Get(t.Context(), "cm", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"example.com/cleanup"}, cm.Finalizers); diff != "" {
			t.Errorf("finalizers (-want +got):\n%s", diff)
		}
	})
	t.Run("dynamic", func(t *testing.T) {
		gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
		dyn := dynamicfake.NewSimpleDynamicClient(runtime.NewScheme(), unstructuredConfigMap("ns", "cm", "1"))
		if err := kubehandler.ClientPatch(dyn.Resource(gvr).Namespace)(t.Context(), "ns", "cm", types.MergePatchType, patch); err != nil {
			t.Fatal(err)
		}
		u, err := dyn.Resource(gvr).Namespace("ns").Get(t.Context(), "cm", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"example.com/cleanup"}, u.GetFinalizers()); diff != "" {
			t.Errorf("finalizers (-want +got):\n%s", diff)
		}
	})
	t.Run("status subresource", func(t *testing.T) {
		cs := fake.NewClientset(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}})
		status := []byte(`{"status":{"readyReplicas":2}}`)
		if err := kubehandler.ClientPatch(cs.AppsV1().Deployments)(t.Context(), "ns", "web", types.MergePatchType, status, "status"); err != nil {
			t.Fatal(err)
		}
		d, err := cs.AppsV1().Deployments("ns").Get(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if d.Status.ReadyReplicas != 2 {
			t.Errorf("readyReplicas %d, want 2", d.Status.ReadyReplicas)
		}
		var sub string
		for _, a := range cs.Actions() {
			if a.GetVerb() == "patch" {
				sub = a.GetSubresource()
			}
		}
		if sub != "status" {
			t.Errorf("patched subresource %q, want status", sub)
		}
	})
	t.Run("not found", func(t *testing.T) {
		cs := fake.NewClientset()
		err := kubehandler.ClientPatch(cs.CoreV1().ConfigMaps)(t.Context(), "ns", "cm", types.MergePatchType, patch)
		if !apierrors.IsNotFound(err) {
			t.Errorf("got %v, want NotFound", err)
		}
	})
}
