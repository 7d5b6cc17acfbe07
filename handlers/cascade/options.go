package cascade

import (
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/cache"
)

// Option configures a Handler.
type Option func(*options)

// labelValue is what a dependent's label holds: the upstream's name or UID.
type labelValue int

const (
	byName labelValue = iota + 1
	byUID
)

// scope is where dependents are looked for.
type scope int

const (
	sameNamespace scope = iota // the default
	oneNamespace
	allNamespaces
)

type options struct {
	name              string
	informer          cache.SharedInformer
	dependentInformer DependentInformer

	labelKey   string
	labelValue labelValue
	labelOpts  int // how many of WithNameLabel, WithUIDLabel were given
	everything bool

	scope     scope
	namespace string // for oneNamespace

	finalizer string
	upstream  schema.GroupVersionResource
	interval  time.Duration
	dryRun    bool
}

// DefaultRequeueInterval is how long the handler waits by default before it
// looks again whether an upstream's dependents are gone.
const DefaultRequeueInterval = 2 * time.Second

// WithUIDLabel selects the dependents of an upstream object by the label
// key, whose value is the upstream's UID. Prefer it to WithNameLabel: a UID
// names one object for ever, while a name is reused when an object of the
// same name is created again.
func WithUIDLabel(key string) Option {
	return func(o *options) {
		o.labelKey, o.labelValue = key, byUID
		o.labelOpts++
	}
}

// WithNameLabel selects the dependents of an upstream object by the label
// key, whose value is the upstream's name. Names longer than 63 characters
// cannot be label values; their dependents are not found (the handler
// reports a terminal error).
func WithNameLabel(key string) Option {
	return func(o *options) {
		o.labelKey, o.labelValue = key, byName
		o.labelOpts++
	}
}

// DangerouslySelectEverything makes every object of the dependent resource
// in scope a dependent of every upstream object: when any upstream object
// is deleted, all of them are deleted. New refuses to build a Handler with
// neither a label (WithUIDLabel, WithNameLabel) nor this option; give it only
// if that is truly what you mean, for instance with one upstream object per
// namespace (InSameNamespace).
func DangerouslySelectEverything() Option {
	return func(o *options) { o.everything = true }
}

// InSameNamespace looks for dependents in the upstream object's namespace:
// the default. For a cluster-scoped upstream only cluster-scoped dependents
// are in scope. The last of InSameNamespace, InNamespace and
// InAllNamespaces given wins.
func InSameNamespace() Option {
	return func(o *options) { o.scope, o.namespace = sameNamespace, "" }
}

// InNamespace looks for dependents in namespace, whatever the upstream's
// namespace. New refuses an empty namespace: use InAllNamespaces.
func InNamespace(namespace string) Option {
	return func(o *options) { o.scope, o.namespace = oneNamespace, namespace }
}

// InAllNamespaces looks for dependents in every namespace (and among
// cluster-scoped objects).
func InAllNamespaces() Option {
	return func(o *options) { o.scope, o.namespace = allNamespaces, "" }
}

// WithFinalizer makes the handler keep the finalizer on upstream objects of
// the resource upstream (patched through the Handler's dynamic client): it
// adds it to every live upstream object it sees, and when one is being
// deleted removes it only once none of its dependents is left, so that the
// upstream object is not gone before its dependents.
func WithFinalizer(finalizer string, upstream schema.GroupVersionResource) Option {
	return func(o *options) { o.finalizer, o.upstream = finalizer, upstream }
}

// WithRequeueInterval sets how long the handler waits before it looks again
// whether a deleted upstream's dependents are gone; DefaultRequeueInterval
// by default.
func WithRequeueInterval(d time.Duration) Option {
	return func(o *options) { o.interval = d }
}

// WithDryRun makes the handler write nothing: it logs each dependent it
// would delete, deletes none, and neither adds nor removes its finalizer.
// An upstream object that carries the finalizer from an earlier run stays
// until the finalizer is removed by other means.
func WithDryRun() Option {
	return func(o *options) { o.dryRun = true }
}

// WithInformer sets the informer of the upstream resource: the informer an
// EventLoop registers the Handler on (GetInformer), and where the handler
// looks up an upstream object when its call carries none.
func WithInformer(informer cache.SharedInformer) Option {
	return func(o *options) { o.informer = informer }
}

// WithName sets the handler's name (GetName); by default "cascade-" and the
// dependent resource, for instance "cascade-configmaps".
func WithName(name string) Option {
	return func(o *options) { o.name = name }
}

// DependentInformer is an informer of the dependent resource with its
// lister: dynamicinformer's ForResource returns one.
type DependentInformer interface {
	Informer() cache.SharedIndexInformer
	Lister() cache.GenericLister
}

// WithDependentInformer finds dependents in informer's cache instead of
// listing them from the apiserver on every deletion; GetSynced then also
// waits for it to sync. The cache lags the apiserver a little: a dependent
// created in the instant before its upstream's deletion may be missed, which
// a list from the apiserver (the default) cannot miss. Deletes go to the
// apiserver either way, with their UID precondition.
func WithDependentInformer(informer DependentInformer) Option {
	return func(o *options) { o.dependentInformer = informer }
}
