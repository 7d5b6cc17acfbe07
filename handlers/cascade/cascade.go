// Package cascade deletes the dependents of an object that is being
// deleted, where ownerReferences cannot: across namespaces, or from a
// namespaced object to cluster-scoped ones.
//
// A Handler watches an upstream resource (it is registered on the
// upstream's informer). Dependents are the objects of another resource
// (any, through the dynamic client) that carry a label whose value names
// their upstream object: its UID (WithUIDLabel, preferred) or its name
// (WithNameLabel). They are looked for in the upstream's namespace
// (InSameNamespace, the default), in one namespace (InNamespace) or in all
// (InAllNamespaces).
//
//	h, err := cascade.New(dynamicClient, configMaps,
//		cascade.WithUIDLabel("example.com/project-uid"),
//		cascade.InAllNamespaces(),
//		cascade.WithFinalizer("example.com/dependents", projects),
//		cascade.WithInformer(projectInformer))
//	loop.Register(h)
//
// # What it does
//
// Only deletion acts. An add or update of a live upstream object (no
// deletion timestamp) deletes nothing; with WithFinalizer it adds the
// finalizer. An add or update of an object with a deletion timestamp, or its
// delete, makes the handler list the dependents and delete each:
//
//   - with PropagationPolicy Foreground, so that a dependent goes only after
//     its own dependents (those its ownerReferences reach) are gone;
//   - with a UID precondition: a dependent deleted and created again under
//     the same name after the list is not touched;
//   - skipping dependents that are being deleted already; a dependent gone
//     already (NotFound) counts as done.
//
// While the deleted upstream object is still there, the handler returns
// kubehandler.KeepFinalizer (a RequeueAfter) until no dependent is left, then
// removes its own finalizer (WithFinalizer). After the delete event, nothing
// is left to hold and nothing is requeued.
//
// The Handler is also a step of a kubehandler.Chain, which calls DeleteFunc
// for the whole delete path (adds and updates of an object with a deletion
// timestamp too): DeleteFunc then does what AddFunc does for such an object,
// and its KeepFinalizer makes a Chain that owns a finalizer keep it on until
// the dependents are gone. Such a Chain needs no WithFinalizer.
//
// # Safety
//
// A label that selects nothing specific would make the deletion of any
// upstream object delete every dependent in scope. New therefore fails
// (ErrNoLabel) when no label is configured, unless
// DangerouslySelectEverything says that this is meant. WithDryRun logs what
// would be deleted and writes nothing. The upstream object itself is never
// one of its dependents.
//
// # Errors
//
// Errors from the apiserver are returned, naming the dependent, and the
// loop retries them with backoff; the handler goes on with the other
// dependents first. A Forbidden answer is permanent: when only such
// failures remain, the error is kubehandler.Terminal and the event is
// dropped (the next event of the upstream tries again). Writes to the
// upstream (its finalizer) are JSON merge patches that carry its
// resourceVersion, so they never drop another controller's finalizer: if the
// object changed since it was read, the apiserver answers Conflict and the
// retry works on the newer object.
package cascade

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/validate/content"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/kubehandler/kubehandler"
)

// ErrNoLabel is the error New returns (wrapped) when no dependent label is
// configured and DangerouslySelectEverything is not given.
var ErrNoLabel = errors.New("no dependent label configured")

// Handler deletes the dependents of upstream objects being deleted; see the
// package doc. Make one with New. It is safe for concurrent use.
type Handler struct {
	client     dynamic.Interface
	dependents schema.GroupVersionResource
	opts       options
}

var (
	_ kubehandler.EventHandler = (*Handler)(nil)
	_ kubehandler.Step         = (*Handler)(nil)
)

// New returns a Handler that deletes objects of the resource dependents,
// through client. It fails when no label is configured (ErrNoLabel) unless
// DangerouslySelectEverything is given, when both are, when two label
// options are given, and when a label key, namespace or finalizer is not
// valid.
func New(client dynamic.Interface, dependents schema.GroupVersionResource, opts ...Option) (*Handler, error) {
	h := &Handler{client: client, dependents: dependents, opts: options{interval: DefaultRequeueInterval}}
	for _, o := range opts {
		o(&h.opts)
	}
	if err := h.validate(); err != nil {
		return nil, fmt.Errorf("cascade: %w", err)
	}
	if h.opts.name == "" {
		h.opts.name = "cascade-" + dependents.GroupResource().String()
	}
	return h, nil
}

func (h *Handler) validate() error {
	o := &h.opts
	switch {
	case h.client == nil:
		return errors.New("a dynamic client is needed")
	case h.dependents.Resource == "":
		return errors.New("the dependent resource has no name")
	case o.labelOpts == 0 && !o.everything:
		return fmt.Errorf("%w: without WithUIDLabel or WithNameLabel, deleting any upstream object would delete all %s in scope; "+
			"if that is what you want, say DangerouslySelectEverything()", ErrNoLabel, h.dependents.GroupResource())
	case o.labelOpts > 0 && o.everything:
		return errors.New("a dependent label and DangerouslySelectEverything exclude each other")
	case o.labelOpts > 1:
		return errors.New("give one of WithUIDLabel and WithNameLabel, once")
	case o.scope == oneNamespace && o.namespace == "":
		return errors.New("InNamespace needs a namespace; for every namespace, use InAllNamespaces")
	case o.interval <= 0:
		return fmt.Errorf("the requeue interval must be positive, not %s", o.interval)
	case o.finalizer != "" && o.upstream.Resource == "":
		return errors.New("WithFinalizer needs the upstream resource, to patch its objects")
	}
	if o.labelOpts > 0 {
		if errs := content.IsLabelKey(o.labelKey); len(errs) > 0 {
			return fmt.Errorf("invalid label key %q: %s", o.labelKey, strings.Join(errs, "; "))
		}
	}
	if o.scope == oneNamespace {
		if errs := content.IsDNS1123Label(o.namespace); len(errs) > 0 {
			return fmt.Errorf("invalid namespace %q: %s", o.namespace, strings.Join(errs, "; "))
		}
	}
	if o.finalizer != "" {
		if errs := content.IsLabelKey(o.finalizer); len(errs) > 0 {
			return fmt.Errorf("invalid finalizer %q: %s", o.finalizer, strings.Join(errs, "; "))
		}
	}
	return nil
}

// GetName returns the handler's name (WithName).
func (h *Handler) GetName() string { return h.opts.name }

// GetInformer returns the upstream's informer (WithInformer), or nil.
func (h *Handler) GetInformer() cache.SharedInformer { return h.opts.informer }

// GetSynced returns nil (the upstream informer's HasSynced is used), or with
// WithDependentInformer a func that also waits for the dependents' informer.
func (h *Handler) GetSynced() cache.InformerSynced {
	if h.opts.dependentInformer == nil {
		return nil
	}
	deps, up := h.opts.dependentInformer.Informer(), h.opts.informer
	return func() bool { return (up == nil || up.HasSynced()) && deps.HasSynced() }
}

// AddFunc handles the upstream object namespace/name: if it is being
// deleted, it deletes its dependents and holds the finalizer until they are
// gone (see DeleteFunc); if not, it adds the finalizer (WithFinalizer) or
// does nothing.
func (h *Handler) AddFunc(ctx context.Context, namespace, name string) error {
	return h.handle(ctx, namespace, name, false)
}

// UpdateFunc is AddFunc.
func (h *Handler) UpdateFunc(ctx context.Context, namespace, name string) error {
	return h.handle(ctx, namespace, name, false)
}

// DeleteFunc deletes the dependents of the upstream object namespace/name.
// For a delete, the object's final state gives its UID; without one (a
// tombstone with no object) the UID is unknown, which a name label does not
// need and with WithUIDLabel is a terminal error. For an object still there
// with a deletion timestamp (a Chain calls DeleteFunc for it) it does what
// AddFunc does: it returns KeepFinalizer until no dependent is left.
func (h *Handler) DeleteFunc(ctx context.Context, namespace, name string) error {
	return h.handle(ctx, namespace, name, true)
}

// handle handles an event of the upstream object namespace/name.
func (h *Handler) handle(ctx context.Context, namespace, name string, deleteCallback bool) error {
	m, exists, err := h.object(ctx, namespace, name, deleteCallback)
	if err != nil {
		return err
	}
	switch {
	case exists && m.GetDeletionTimestamp() == nil:
		return h.addFinalizer(ctx, m)
	case exists:
		return h.drain(ctx, m)
	case deleteCallback:
		up := upstream{namespace: namespace, name: name}
		if m != nil {
			up.uid = m.GetUID()
		}
		_, err := h.deleteDependents(ctx, up)
		return err
	default:
		return nil // gone since its event: its delete follows
	}
}

// drain deletes the dependents of m, which is being deleted, and removes
// the finalizer once none is left.
func (h *Handler) drain(ctx context.Context, m metav1.Object) error {
	up := upstream{namespace: m.GetNamespace(), name: m.GetName(), uid: m.GetUID()}
	remaining, err := h.deleteDependents(ctx, up)
	if err != nil || h.opts.dryRun {
		return err
	}
	if remaining > 0 {
		klog.FromContext(ctx).V(2).Info("Waiting for dependents to go", "resource", h.dependents.GroupResource(), "remaining", remaining)
		return kubehandler.KeepFinalizer(h.opts.interval)
	}
	return h.removeFinalizer(ctx, m)
}

// object returns the upstream object of the call, and whether it still
// exists: the Event's (a delete's is the final state of an object gone), or
// else the informer's. It returns nil if neither has it, and for a delete
// whose Event has no object: a same-named object in the store would not be
// the one deleted. For the same reason DeleteFunc takes from the store only
// an object being deleted.
func (h *Handler) object(ctx context.Context, namespace, name string, deleteCallback bool) (metav1.Object, bool, error) {
	var obj interface{}
	exists := true
	if ev, ok := kubehandler.EventFromContext(ctx); ok && ev.Key.Namespace == namespace && ev.Key.Name == name &&
		(ev.Object != nil || ev.Type == kubehandler.WorkqueueDeleteEvent) {
		obj, exists = ev.Object, ev.Type != kubehandler.WorkqueueDeleteEvent
	} else if h.opts.informer != nil {
		var found bool
		var err error
		obj, found, err = h.opts.informer.GetStore().GetByKey(cache.ObjectName{Namespace: namespace, Name: name}.String())
		if err != nil {
			return nil, false, err
		}
		exists = found
	}
	if obj == nil {
		return nil, false, nil
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil, false, kubehandler.Terminal(fmt.Errorf("cascade: %w", err))
	}
	if deleteCallback && exists && m.GetDeletionTimestamp() == nil {
		// A live object after a delete: a new one of the same name. The
		// deleted one's final state is not known.
		return nil, false, nil
	}
	return m, exists, nil
}

// upstream identifies an upstream object.
type upstream struct {
	namespace, name string
	uid             types.UID // "" if unknown
}

func (u upstream) String() string {
	return cache.ObjectName{Namespace: u.namespace, Name: u.name}.String()
}
