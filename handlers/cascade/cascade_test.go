package cascade_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	"github.com/google/go-cmp/cmp"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/handlers/cascade"
)

func TestNew(t *testing.T) {
	client := newClient()
	tests := []struct {
		name     string
		client   dynamic.Interface
		resource schema.GroupVersionResource
		opts     []cascade.Option
		wantErr  []string // substrings; none for success
		noLabel  bool     // errors.Is(err, ErrNoLabel)
	}{
		{name: "UID label", opts: []cascade.Option{cascade.WithUIDLabel(uidLabel)}},
		{name: "name label, all namespaces, finalizer", opts: []cascade.Option{cascade.WithNameLabel(nameLabel),
			cascade.InAllNamespaces(), cascade.WithFinalizer(finalizer, projects)}},
		{name: "select everything, said plainly", opts: []cascade.Option{cascade.DangerouslySelectEverything()}},
		{name: "no label: refused", noLabel: true,
			wantErr: []string{"no dependent label", "all configmaps in scope", "DangerouslySelectEverything()"}},
		{name: "no label, other options: refused", opts: []cascade.Option{cascade.InNamespace("x"), cascade.WithDryRun()}, noLabel: true,
			wantErr: []string{"DangerouslySelectEverything"}},
		{name: "label and select everything", opts: []cascade.Option{cascade.WithUIDLabel(uidLabel), cascade.DangerouslySelectEverything()},
			wantErr: []string{"exclude each other"}},
		{name: "two labels", opts: []cascade.Option{cascade.WithUIDLabel(uidLabel), cascade.WithNameLabel(nameLabel)},
			wantErr: []string{"one of WithUIDLabel and WithNameLabel"}},
		{name: "invalid label key", opts: []cascade.Option{cascade.WithUIDLabel("not a key")}, wantErr: []string{"invalid label key"}},
		{name: "empty label key", opts: []cascade.Option{cascade.WithNameLabel("")}, wantErr: []string{"invalid label key"}},
		{name: "InNamespace empty", opts: []cascade.Option{cascade.WithUIDLabel(uidLabel), cascade.InNamespace("")},
			wantErr: []string{"InAllNamespaces"}},
		{name: "InNamespace invalid", opts: []cascade.Option{cascade.WithUIDLabel(uidLabel), cascade.InNamespace("Not_A_Namespace")},
			wantErr: []string{"invalid namespace"}},
		{name: "finalizer without upstream resource", opts: []cascade.Option{cascade.WithUIDLabel(uidLabel),
			cascade.WithFinalizer(finalizer, schema.GroupVersionResource{})}, wantErr: []string{"upstream resource"}},
		{name: "invalid finalizer", opts: []cascade.Option{cascade.WithUIDLabel(uidLabel), cascade.WithFinalizer("a b", projects)},
			wantErr: []string{"invalid finalizer"}},
		{name: "zero requeue interval", opts: []cascade.Option{cascade.WithUIDLabel(uidLabel), cascade.WithRequeueInterval(0)},
			wantErr: []string{"requeue interval"}},
		{name: "no client", client: dynamic.Interface(nil), opts: []cascade.Option{cascade.WithUIDLabel(uidLabel)},
			wantErr: []string{"dynamic client"}},
		{name: "no resource", resource: schema.GroupVersionResource{Version: "v1"}, opts: []cascade.Option{cascade.WithUIDLabel(uidLabel)},
			wantErr: []string{"no name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resource := dynamic.Interface(client), configMaps
			if tt.name == "no client" {
				c = tt.client
			}
			if tt.resource != (schema.GroupVersionResource{}) {
				resource = tt.resource
			}
			h, err := cascade.New(c, resource, tt.opts...)
			if len(tt.wantErr) == 0 {
				if err != nil || h == nil {
					t.Fatalf("New = (%v, %v), want a handler", h, err)
				}
				return
			}
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			for _, s := range tt.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if got := errors.Is(err, cascade.ErrNoLabel); got != tt.noLabel {
				t.Errorf("errors.Is(err, ErrNoLabel) = %v, want %v", got, tt.noLabel)
			}
		})
	}
}

func TestNameAndInformer(t *testing.T) {
	informer := upstreamInformer(t)
	h := mustNew(t, newClient(), cascade.WithUIDLabel(uidLabel), cascade.WithInformer(informer))
	if got := h.GetName(); got != "cascade-configmaps" {
		t.Errorf("GetName = %q", got)
	}
	if h.GetInformer() != informer || h.GetSynced() != nil {
		t.Error("GetInformer is not the upstream's, or GetSynced is not nil")
	}
	h = mustNew(t, newClient(), cascade.WithUIDLabel(uidLabel), cascade.WithName("project-configmaps"))
	if got := h.GetName(); got != "project-configmaps" {
		t.Errorf("GetName = %q", got)
	}
}

// TestLiveUpstream: adds and updates of an upstream object that is not being
// deleted delete nothing (a nil deletion timestamp is ignored); with a
// finalizer configured, they add it once.
func TestLiveUpstream(t *testing.T) {
	tests := []struct {
		name        string
		obj         *unstructured.Unstructured
		opts        []cascade.Option
		wantPatches []string
	}{
		{name: "no finalizer", obj: project(false)},
		{name: "finalizer added, others kept, resourceVersion as precondition", obj: project(false, "other.io/x"),
			opts:        []cascade.Option{cascade.WithFinalizer(finalizer, projects)},
			wantPatches: []string{`projects a/p {"metadata":{"finalizers":["other.io/x","example.com/dependents"],"resourceVersion":"5"}}`}},
		{name: "finalizer there already", obj: project(false, finalizer),
			opts: []cascade.Option{cascade.WithFinalizer(finalizer, projects)}},
		{name: "dry run adds no finalizer", obj: project(false),
			opts: []cascade.Option{cascade.WithFinalizer(finalizer, projects), cascade.WithDryRun()}},
	}
	for _, tt := range tests {
		for _, typ := range []string{kubehandler.WorkqueueAddEvent, kubehandler.WorkqueueUpdateEvent} {
			t.Run(tt.name+"/"+typ, func(t *testing.T) {
				client := newClient(append(world(), tt.obj)...)
				opts := append([]cascade.Option{cascade.WithUIDLabel(uidLabel), cascade.InAllNamespaces(),
					cascade.WithInformer(upstreamInformer(t, tt.obj))}, tt.opts...)
				h := mustNew(t, client, opts...)

				var err error
				if typ == kubehandler.WorkqueueAddEvent {
					err = h.AddFunc(t.Context(), "a", "p")
				} else {
					err = h.UpdateFunc(t.Context(), "a", "p")
				}
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range client.Actions() {
					if v := a.GetVerb(); v == "list" || v == "delete" {
						t.Errorf("a live upstream made the handler %s %s", v, a.GetResource().Resource)
					}
				}
				if diff := cmp.Diff(tt.wantPatches, patches(client)); diff != "" {
					t.Errorf("patches (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestDeletingUpstream: an upstream being deleted has its dependents, and
// only them, deleted in the foreground with a UID precondition; by scope
// and label.
func TestDeletingUpstream(t *testing.T) {
	tests := []struct {
		name        string
		opts        []cascade.Option
		wantDeletes []string
	}{
		{"UID label, same namespace (default)", []cascade.Option{cascade.WithUIDLabel(uidLabel)},
			[]string{"a/byuid"}},
		{"UID label, all namespaces", []cascade.Option{cascade.WithUIDLabel(uidLabel), cascade.InAllNamespaces()},
			[]string{"a/byuid", "b/byuid", "c/byuid"}},
		{"UID label, one other namespace", []cascade.Option{cascade.WithUIDLabel(uidLabel), cascade.InNamespace("c")},
			[]string{"c/byuid"}},
		{"name label, all namespaces", []cascade.Option{cascade.WithNameLabel(nameLabel), cascade.InAllNamespaces()},
			[]string{"a/byname", "c/byname"}},
		{"name label, back to the same namespace", []cascade.Option{cascade.WithNameLabel(nameLabel), cascade.InAllNamespaces(), cascade.InSameNamespace()},
			[]string{"a/byname"}},
		{"everything, same namespace", []cascade.Option{cascade.DangerouslySelectEverything()},
			[]string{"a/byname", "a/byuid", "a/other", "a/plain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := project(true, finalizer)
			client := newClient(world()...)
			h := mustNew(t, client, append(tt.opts, cascade.WithInformer(upstreamInformer(t, up)),
				cascade.WithRequeueInterval(3*time.Second))...)

			err := h.UpdateFunc(t.Context(), "a", "p")

			// Foreground deletions take a while: the handler looks again.
			if !kubehandler.IsKeepFinalizer(err) {
				t.Errorf("returned %v, want KeepFinalizer", err)
			}
			if diff := cmp.Diff(tt.wantDeletes, deletes(t, client)); diff != "" {
				t.Errorf("deletes (-want +got):\n%s", diff)
			}
			if p := patches(client); len(p) != 0 {
				t.Errorf("finalizer patched while dependents remain: %v", p)
			}
		})
	}
}

// TestDependentsGone: once no dependent is left, the finalizer goes (only
// the handler's), and nothing is requeued.
func TestDependentsGone(t *testing.T) {
	tests := []struct {
		name        string
		up          *unstructured.Unstructured
		opts        []cascade.Option
		wantPatches []string
	}{
		{"other finalizers kept", project(true, "other.io/x", finalizer), []cascade.Option{cascade.WithFinalizer(finalizer, projects)},
			[]string{`projects a/p {"metadata":{"finalizers":["other.io/x"],"resourceVersion":"5"}}`}},
		{"the last finalizer", project(true, finalizer), []cascade.Option{cascade.WithFinalizer(finalizer, projects)},
			[]string{`projects a/p {"metadata":{"finalizers":null,"resourceVersion":"5"}}`}},
		{"not ours", project(true, "other.io/x"), []cascade.Option{cascade.WithFinalizer(finalizer, projects)}, nil},
		{"no finalizer configured", project(true, finalizer), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newClient(dep("a", "plain", nil))
			h := mustNew(t, client, append(tt.opts, cascade.WithUIDLabel(uidLabel), cascade.InAllNamespaces(),
				cascade.WithInformer(upstreamInformer(t, tt.up)))...)
			if err := h.UpdateFunc(t.Context(), "a", "p"); err != nil {
				t.Fatalf("returned %v, want nil", err)
			}
			if diff := cmp.Diff(tt.wantPatches, patches(client)); diff != "" {
				t.Errorf("patches (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSkipsDependentsBeingDeleted: no second delete, but the upstream waits.
func TestSkipsDependentsBeingDeleted(t *testing.T) {
	d := dep("a", "byuid", map[string]string{uidLabel: "uid-p"})
	d.SetDeletionTimestamp(project(true).GetDeletionTimestamp())
	d.SetFinalizers([]string{"foregroundDeletion"})
	client := newClient(d)
	h := mustNew(t, client, cascade.WithUIDLabel(uidLabel), cascade.WithFinalizer(finalizer, projects),
		cascade.WithInformer(upstreamInformer(t, project(true, finalizer))))

	err := h.UpdateFunc(t.Context(), "a", "p")

	if !kubehandler.IsKeepFinalizer(err) {
		t.Errorf("returned %v, want KeepFinalizer", err)
	}
	if got := deletes(t, client); len(got) != 0 {
		t.Errorf("deleted %v again", got)
	}
	if p := patches(client); len(p) != 0 {
		t.Errorf("patched %v", p)
	}
}

// TestNotFoundIsDone: a dependent gone between list and delete is done: the
// finalizer can go at once.
func TestNotFoundIsDone(t *testing.T) {
	client := newClient(world()...)
	failDeletes(client, map[string]error{"a/byuid": apierrors.NewNotFound(configMaps.GroupResource(), "byuid")})
	h := mustNew(t, client, cascade.WithUIDLabel(uidLabel), cascade.WithFinalizer(finalizer, projects),
		cascade.WithInformer(upstreamInformer(t, project(true, finalizer))))

	if err := h.UpdateFunc(t.Context(), "a", "p"); err != nil {
		t.Fatalf("returned %v, want nil", err)
	}
	want := []string{`projects a/p {"metadata":{"finalizers":null,"resourceVersion":"5"}}`}
	if diff := cmp.Diff(want, patches(client)); diff != "" {
		t.Errorf("patches (-want +got):\n%s", diff)
	}
}

// TestUIDPrecondition: a dependent deleted and created again under the same
// name after the handler listed it (here: a stale cache) is not deleted.
func TestUIDPrecondition(t *testing.T) {
	listed := dep("a", "d", map[string]string{uidLabel: "uid-p"})
	replacement := listed.DeepCopy()
	replacement.SetUID("uid-new")
	client := newClient(replacement)
	enforcePreconditions(client)
	h := mustNew(t, client, cascade.WithUIDLabel(uidLabel), cascade.WithFinalizer(finalizer, projects),
		cascade.WithInformer(upstreamInformer(t, project(true, finalizer))),
		cascade.WithDependentInformer(staleInformer(t, listed)))

	err := h.UpdateFunc(t.Context(), "a", "p")

	if !kubehandler.IsKeepFinalizer(err) {
		t.Errorf("returned %v, want KeepFinalizer: look again before letting the upstream go", err)
	}
	if diff := cmp.Diff([]string{"a/d"}, deletes(t, client)); diff != "" {
		t.Errorf("deletes (-want +got):\n%s", diff)
	}
	got, err := client.Resource(configMaps).Namespace("a").Get(t.Context(), "d", metav1.GetOptions{})
	if err != nil || got.GetUID() != "uid-new" {
		t.Errorf("the replacement is gone: (%v, %v)", got, err)
	}
}

// staleInformer is a DependentInformer whose cache holds objs, whatever
// the client has.
type staleDependents struct{ informer cache.SharedIndexInformer }

func (s staleDependents) Informer() cache.SharedIndexInformer { return s.informer }
func (s staleDependents) Lister() cache.GenericLister {
	return cache.NewGenericLister(s.informer.GetIndexer(), configMaps.GroupResource())
}

func staleInformer(t *testing.T, objs ...*unstructured.Unstructured) staleDependents {
	t.Helper()
	informer := cache.NewSharedIndexInformer(&cache.ListWatch{}, &unstructured.Unstructured{}, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for _, o := range objs {
		if err := informer.GetStore().Add(o); err != nil {
			t.Fatal(err)
		}
	}
	return staleDependents{informer}
}

func TestErrors(t *testing.T) {
	forbidden := apierrors.NewForbidden(configMaps.GroupResource(), "byuid", errors.New("RBAC says no"))
	internal := apierrors.NewInternalError(errors.New("etcd hiccup"))
	tests := []struct {
		name         string
		fail         map[string]error
		wantTerminal bool
		wantInErr    []string
		wantDeletes  []string
	}{
		{"Forbidden on one dependent: terminal, naming it; the others deleted",
			map[string]error{"b/byuid": forbidden}, true, []string{"b/byuid", "RBAC says no"},
			[]string{"a/byuid", "b/byuid", "c/byuid"}},
		{"a server error: retried",
			map[string]error{"c/byuid": internal}, false, []string{"c/byuid", "etcd hiccup"},
			[]string{"a/byuid", "b/byuid", "c/byuid"}},
		{"both: retried, naming both",
			map[string]error{"b/byuid": forbidden, "c/byuid": internal}, false, []string{"b/byuid", "c/byuid"},
			[]string{"a/byuid", "b/byuid", "c/byuid"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newClient(world()...)
			failDeletes(client, tt.fail)
			h := mustNew(t, client, cascade.WithUIDLabel(uidLabel), cascade.InAllNamespaces(),
				cascade.WithFinalizer(finalizer, projects), cascade.WithInformer(upstreamInformer(t, project(true, finalizer))))

			err := h.UpdateFunc(t.Context(), "a", "p")

			if err == nil || kubehandler.IsKeepFinalizer(err) {
				t.Fatalf("returned %v, want an error", err)
			}
			if got := kubehandler.IsTerminal(err); got != tt.wantTerminal {
				t.Errorf("terminal = %v, want %v: %v", got, tt.wantTerminal, err)
			}
			for _, s := range tt.wantInErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if diff := cmp.Diff(tt.wantDeletes, deletes(t, client)); diff != "" {
				t.Errorf("deletes (-want +got):\n%s", diff)
			}
			if p := patches(client); len(p) != 0 {
				t.Errorf("finalizer patched despite failures: %v", p)
			}
		})
	}
}

func TestListErrors(t *testing.T) {
	tests := []struct {
		name         string
		err          error
		wantTerminal bool
	}{
		{"server error: retried", apierrors.NewServiceUnavailable("busy"), false},
		{"Forbidden: terminal", apierrors.NewForbidden(configMaps.GroupResource(), "", errors.New("no list")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newClient(world()...)
			client.PrependReactor("list", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
				return true, nil, tt.err
			})
			h := mustNew(t, client, cascade.WithUIDLabel(uidLabel), cascade.WithInformer(upstreamInformer(t, project(true))))
			err := h.UpdateFunc(t.Context(), "a", "p")
			if err == nil || kubehandler.IsTerminal(err) != tt.wantTerminal || !strings.Contains(err.Error(), "configmaps") {
				t.Errorf("returned %v, want an error naming configmaps, terminal %v", err, tt.wantTerminal)
			}
		})
	}
}

// TestFinalizerPatchErrors: a Conflict means the object changed since it
// was read, and the newer version's event adds the finalizer: no error, no
// backoff, no error log. Other errors are returned, retriable.
func TestFinalizerPatchErrors(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		wantErr bool
	}{
		{"conflict", apierrors.NewConflict(projects.GroupResource(), "p", errors.New("the object has been modified")), false},
		{"server error", apierrors.NewInternalError(errors.New("etcd is away")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newClient()
			patches := 0
			client.PrependReactor("patch", "projects", func(k8stesting.Action) (bool, runtime.Object, error) {
				patches++
				return true, nil, tt.err
			})
			h := mustNew(t, client, cascade.WithUIDLabel(uidLabel), cascade.WithFinalizer(finalizer, projects),
				cascade.WithInformer(upstreamInformer(t, project(false))))
			err := h.AddFunc(t.Context(), "a", "p")
			if patches != 1 {
				t.Errorf("%d patches, want 1", patches)
			}
			if (err != nil) != tt.wantErr || kubehandler.IsTerminal(err) {
				t.Errorf("returned %v, want error: %v (retriable)", err, tt.wantErr)
			}
		})
	}
}

// TestDryRun: nothing is written; each dependent that would go is logged.
func TestDryRun(t *testing.T) {
	client := newClient(world()...)
	h := mustNew(t, client, cascade.WithUIDLabel(uidLabel), cascade.InAllNamespaces(), cascade.WithDryRun(),
		cascade.WithFinalizer(finalizer, projects), cascade.WithInformer(upstreamInformer(t, project(true, finalizer))))
	sink := &logSink{}
	ctx := klog.NewContext(t.Context(), funcr.New(sink.add, funcr.Options{}))

	if err := h.UpdateFunc(ctx, "a", "p"); err != nil {
		t.Fatalf("returned %v, want nil", err)
	}

	for _, a := range client.Actions() {
		if v := a.GetVerb(); v != "list" {
			t.Errorf("dry run sent a %s", v)
		}
	}
	logs := strings.Join(sink.Lines(), "\n")
	for _, d := range []string{"a", "b", "c"} {
		want := `"dependent"={"name"="byuid" "namespace"="` + d + `"}`
		if !strings.Contains(logs, want) {
			t.Errorf("log does not name %s/byuid:\n%s", d, logs)
		}
	}
	if n := strings.Count(logs, "would delete"); n != 3 {
		t.Errorf("%d lines say would delete, want 3:\n%s", n, logs)
	}
}

// TestDeleteFunc: a delete event without a final state still works with a
// name label; with a UID label it cannot select and says so.
func TestDeleteFunc(t *testing.T) {
	t.Run("name label", func(t *testing.T) {
		client := newClient(world()...)
		h := mustNew(t, client, cascade.WithNameLabel(nameLabel), cascade.InAllNamespaces())
		if err := h.DeleteFunc(t.Context(), "a", "p"); err != nil {
			t.Fatalf("returned %v, want nil (no requeue after the delete)", err)
		}
		if diff := cmp.Diff([]string{"a/byname", "c/byname"}, deletes(t, client)); diff != "" {
			t.Errorf("deletes (-want +got):\n%s", diff)
		}
	})
	t.Run("UID label, UID unknown", func(t *testing.T) {
		client := newClient(world()...)
		h := mustNew(t, client, cascade.WithUIDLabel(uidLabel), cascade.InAllNamespaces())
		err := h.DeleteFunc(t.Context(), "a", "p")
		if !kubehandler.IsTerminal(err) || !strings.Contains(err.Error(), "UID of a/p is unknown") {
			t.Errorf("returned %v, want a terminal error about the unknown UID", err)
		}
		if got := deletes(t, client); len(got) != 0 {
			t.Errorf("deleted %v", got)
		}
	})
}

// TestNotSelectable: a name too long for a label value is reported, not
// turned into a broader selector.
func TestNotSelectable(t *testing.T) {
	long := project(true)
	long.SetName(strings.Repeat("p", 64))
	client := newClient(world()...)
	h := mustNew(t, client, cascade.WithNameLabel(nameLabel), cascade.WithInformer(upstreamInformer(t, long)))
	err := h.UpdateFunc(t.Context(), "a", long.GetName())
	if !kubehandler.IsTerminal(err) || !strings.Contains(err.Error(), "WithUIDLabel") {
		t.Errorf("returned %v, want a terminal error suggesting WithUIDLabel", err)
	}
	if len(client.Actions()) != 0 {
		t.Errorf("sent %v", client.Actions())
	}
}

// TestScopeSafety: a cluster-scoped upstream in the same-namespace scope has
// no namespaced dependents, though a list of namespace "" returns them all.
func TestScopeSafety(t *testing.T) {
	clusterScoped := project(true)
	clusterScoped.SetNamespace("")
	client := newClient(world()...)
	h := mustNew(t, client, cascade.DangerouslySelectEverything(), cascade.WithInformer(upstreamInformer(t, clusterScoped)))
	if err := h.UpdateFunc(t.Context(), "", "p"); err != nil {
		t.Fatal(err)
	}
	if got := deletes(t, client); len(got) != 0 {
		t.Errorf("deleted %v", got)
	}
}

// TestNotItsOwnDependent: with dependents of the upstream's own resource,
// the upstream (being deleted, labelled like its dependents) is skipped, or
// it would wait for itself.
func TestNotItsOwnDependent(t *testing.T) {
	up := project(true, finalizer)
	up.SetLabels(map[string]string{uidLabel: "uid-p"})
	child := project(false)
	child.SetName("child")
	child.SetUID("uid-a-child")
	child.SetLabels(map[string]string{uidLabel: "uid-p"})
	client := newClient(up, child)
	h, err := cascade.New(client, projects, cascade.WithUIDLabel(uidLabel), cascade.WithFinalizer(finalizer, projects),
		cascade.WithInformer(upstreamInformer(t, up)))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.UpdateFunc(t.Context(), "a", "p"); !kubehandler.IsKeepFinalizer(err) {
		t.Errorf("returned %v, want KeepFinalizer for the child", err)
	}
	if diff := cmp.Diff([]string{"a/child"}, deletes(t, client)); diff != "" {
		t.Errorf("deletes (-want +got):\n%s", diff)
	}
}

// TestUpstreamGone: an add or update whose object is gone from the store
// (and the call carries none) does nothing: its delete follows.
func TestUpstreamGone(t *testing.T) {
	client := newClient(world()...)
	h := mustNew(t, client, cascade.WithUIDLabel(uidLabel), cascade.WithInformer(upstreamInformer(t)))
	if err := h.UpdateFunc(t.Context(), "a", "p"); err != nil {
		t.Fatal(err)
	}
	if len(client.Actions()) != 0 {
		t.Errorf("sent %v", client.Actions())
	}
}

// TestDeleteFuncOfObjectBeingDeleted: a Chain calls DeleteFunc for an
// object that has a deletion timestamp; it is drained as by UpdateFunc. A
// live object of the same name is not the one deleted.
func TestDeleteFuncOfObjectBeingDeleted(t *testing.T) {
	tests := []struct {
		name        string
		opts        []cascade.Option
		up          *unstructured.Unstructured
		wantKeep    bool
		wantDeletes []string
		wantErr     string
	}{
		{name: "being deleted: drained, finalizer kept", opts: []cascade.Option{cascade.WithUIDLabel(uidLabel)},
			up: project(true, finalizer), wantKeep: true, wantDeletes: []string{"a/byuid"}},
		{name: "live, UID label: its UID is not the deleted one's", opts: []cascade.Option{cascade.WithUIDLabel(uidLabel)},
			up: project(false), wantErr: "UID of a/p is unknown"},
		{name: "live, name label: by name", opts: []cascade.Option{cascade.WithNameLabel(nameLabel)},
			up: project(false), wantDeletes: []string{"a/byname"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newClient(world()...)
			h := mustNew(t, client, append(tt.opts, cascade.WithInformer(upstreamInformer(t, tt.up)))...)
			err := h.DeleteFunc(t.Context(), "a", "p")
			switch {
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("returned %v, want an error containing %q", err, tt.wantErr)
				}
			case kubehandler.IsKeepFinalizer(err) != tt.wantKeep:
				t.Errorf("returned %v, want KeepFinalizer %v", err, tt.wantKeep)
			case !tt.wantKeep && err != nil:
				t.Errorf("returned %v", err)
			}
			if diff := cmp.Diff(tt.wantDeletes, deletes(t, client)); diff != "" {
				t.Errorf("deletes (-want +got):\n%s", diff)
			}
		})
	}
}
