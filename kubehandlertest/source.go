package kubehandlertest

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"

	"github.com/kubehandler/kubehandler"
)

// Source is an in-memory stand-in for the API server's storage of one
// resource: a cache.ListerWatcher that a real shared informer lists and
// watches. It assigns resourceVersions from one counter, as etcd does, so
// every write gets a new, larger one; it keeps the history of its events, so
// that a watch can start at any resourceVersion since the last BreakWatches;
// and it can break its watches and forget that history, which makes
// informers relist (and deliver cache.DeletedFinalStateUnknown tombstones
// for what was deleted meanwhile).
//
// Create, Update and Delete are the test's own hand: objects are stored as
// given (the Source sets only the resourceVersion, and a UID if there is
// none), and handed to informers as they are: do not modify an object after
// giving it to the Source. Requests that a handler makes through a fake
// clientset reach the Source through Serve, which applies the API server's
// rules. A Source is safe for concurrent use.
type Source struct {
	newList func() runtime.Object

	mu       sync.Mutex
	rv       uint64
	objects  map[cache.ObjectName]runtime.Object
	order    []cache.ObjectName // creation order, for stable lists
	known    map[cache.ObjectName]struct{}
	history  []event // events with resourceVersion >= firstRV
	firstRV  uint64  // resourceVersion of history[0]
	watchers map[*watcher]struct{}
}

// NewSource returns an empty Source whose List returns the list type newList
// makes, for example func() runtime.Object { return &corev1.ConfigMapList{} }.
// NewTypedSource, NewConfigMapSource and NewUnstructuredSource return Sources
// with typed Create, Update and Get.
func NewSource(newList func() runtime.Object) *Source {
	return &Source{
		newList:  newList,
		objects:  make(map[cache.ObjectName]runtime.Object),
		known:    make(map[cache.ObjectName]struct{}),
		watchers: make(map[*watcher]struct{}),
		firstRV:  1,
	}
}

var _ cache.ListerWatcher = (*Source)(nil)

// IsWatchListSemanticsUnSupported tells client-go's reflector to list, then
// watch, rather than to stream the initial list through a watch.
func (s *Source) IsWatchListSemanticsUnSupported() bool { return true }

// Create stores obj with a new resourceVersion (and a UID if it has none)
// and returns the resourceVersion. It panics if an object of that namespace
// and name exists: that is a mistake in the test.
func (s *Source) Create(obj runtime.Object) string {
	rv, err := s.store(watch.Added, obj)
	if err != nil {
		panic(fmt.Sprintf("kubehandlertest: Create %s: %v", objectName(obj), err))
	}
	return rv
}

// Update stores obj as the newest state of its object with a new
// resourceVersion, and returns the resourceVersion. The resourceVersion obj
// carries is ignored: the test's hand always wins (Serve checks it for
// requests). It panics if no object of that namespace and name exists.
func (s *Source) Update(obj runtime.Object) string {
	rv, err := s.store(watch.Modified, obj)
	if err != nil {
		panic(fmt.Sprintf("kubehandlertest: Update %s: %v", objectName(obj), err))
	}
	return rv
}

// store writes obj as an add or an update, failing as the API server would
// (AlreadyExists, NotFound).
func (s *Source) store(t watch.EventType, obj runtime.Object) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.storeLocked(t, obj, schema.GroupResource{})
}

// storeLocked stores obj; gr names the resource in errors. s.mu must be held.
func (s *Source) storeLocked(t watch.EventType, obj runtime.Object, gr schema.GroupResource) (string, error) {
	m := mustAccessor(obj)
	key := objectName(obj)
	_, exists := s.objects[key]
	switch {
	case t == watch.Added && exists:
		return "", apierrors.NewAlreadyExists(gr, key.Name)
	case t == watch.Modified && !exists:
		return "", apierrors.NewNotFound(gr, key.Name)
	}
	prev := s.objects[key]
	if !exists {
		s.order = append(s.order, key)
		s.known[key] = struct{}{}
	}
	s.rv++
	if m.GetUID() == "" {
		m.SetUID(newUID(s.rv))
	}
	rv := strconv.FormatUint(s.rv, 10)
	m.SetResourceVersion(rv)
	s.objects[key] = obj
	s.record(event{Event: watch.Event{Type: t, Object: obj}, prev: prev})
	return rv, nil
}

// Delete removes the object named namespace/name and tells the watches; it
// reports whether the object existed. Finalizers do not hold it: the test's
// hand deletes at once (Serve honours finalizers).
func (s *Source) Delete(namespace, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteLocked(cache.ObjectName{Namespace: namespace, Name: name})
}

// deleteLocked removes the object key, if it exists, and records the
// deletion. s.mu must be held.
func (s *Source) deleteLocked(key cache.ObjectName) bool {
	old, ok := s.objects[key]
	if !ok {
		return false
	}
	s.forgetLocked(key)
	// The deleted object's final state carries the deletion's
	// resourceVersion, as the API server's watch does.
	final := old.DeepCopyObject()
	s.rv++
	mustAccessor(final).SetResourceVersion(strconv.FormatUint(s.rv, 10))
	s.record(event{Event: watch.Event{Type: watch.Deleted, Object: final}, prev: old})
	return true
}

func (s *Source) forgetLocked(key cache.ObjectName) {
	delete(s.objects, key)
	s.order = slices.DeleteFunc(s.order, func(n cache.ObjectName) bool { return n == key })
}

// DeleteUnseen removes the object named namespace/name as if its deletion
// happened while every watch was down: no watch hears of it, and the watches
// break (see BreakWatches). The informers relist and deliver the deletion as
// a cache.DeletedFinalStateUnknown tombstone. It reports whether the object
// existed.
func (s *Source) DeleteUnseen(namespace, name string) bool {
	s.mu.Lock()
	key := cache.ObjectName{Namespace: namespace, Name: name}
	_, ok := s.objects[key]
	if ok {
		s.forgetLocked(key)
		s.rv++
	}
	s.mu.Unlock()
	s.BreakWatches()
	return ok
}

// event is a watch event with the object's state before it (nil for an
// add), so that a watch of a subset (a label selector) can tell objects
// that enter or leave it.
type event struct {
	watch.Event
	prev runtime.Object
}

// record appends an event to the history and sends it to every watch.
// s.mu must be held.
func (s *Source) record(ev event) {
	s.history = append(s.history, ev)
	for w := range s.watchers {
		w.send(ev)
	}
}

// Get returns the stored object named namespace/name (the object itself:
// do not modify it; DeepCopyObject it to make a changed version).
func (s *Source) Get(namespace, name string) (runtime.Object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	obj, ok := s.objects[cache.ObjectName{Namespace: namespace, Name: name}]
	return obj, ok
}

// Len returns the number of stored objects.
func (s *Source) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.objects)
}

// State returns the state that a handler named kind must see last for each
// object the Source has ever held: its resourceVersion if it exists, "" if
// it was deleted. It is what Recorder.Wait and Recorder.Matches take.
func (s *Source) State(kind string) map[kubehandler.Key]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := make(map[kubehandler.Key]string, len(s.known))
	for n := range s.known {
		rv := ""
		if obj, ok := s.objects[n]; ok {
			rv = mustAccessor(obj).GetResourceVersion()
		}
		want[kubehandler.Key{Kind: kind, Namespace: n.Namespace, Name: n.Name}] = rv
	}
	return want
}

// BreakWatches closes every open watch and forgets the event history, as an
// API server does after a compaction: the informers' next watch fails with
// "resource version too old" and they relist. Objects deleted before the
// relist then reach their handlers as cache.DeletedFinalStateUnknown.
func (s *Source) BreakWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.history = nil
	s.firstRV = s.rv + 1
	for w := range s.watchers {
		delete(s.watchers, w)
		w.close()
	}
}

// List implements cache.Lister: every object, in creation order, in a list
// carrying the Source's current resourceVersion.
func (s *Source) List(opts metav1.ListOptions) (runtime.Object, error) {
	return s.list(allObjects)
}

func (s *Source) list(keep func(runtime.Object) bool) (runtime.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	items := make([]runtime.Object, 0, len(s.order))
	for _, key := range s.order {
		if obj := s.objects[key]; keep(obj) {
			items = append(items, obj)
		}
	}
	list := s.newList()
	if err := meta.SetList(list, items); err != nil {
		return nil, err
	}
	lm, err := meta.ListAccessor(list)
	if err != nil {
		return nil, err
	}
	lm.SetResourceVersion(strconv.FormatUint(s.rv, 10))
	return list, nil
}

// Watch implements cache.Watcher: the events after opts.ResourceVersion
// (all that are remembered if it is empty or "0"), then every event as it
// happens. A resourceVersion from before the last BreakWatches fails with
// the API server's "resource version too old" (410 Gone).
func (s *Source) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	return s.watch(opts.ResourceVersion, allObjects)
}

func (s *Source) watch(resourceVersion string, keep func(runtime.Object) bool) (watch.Interface, error) {
	from := uint64(0)
	if resourceVersion != "" {
		var err error
		if from, err = strconv.ParseUint(resourceVersion, 10, 64); err != nil {
			return nil, apierrors.NewBadRequest("invalid resourceVersion " + resourceVersion)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if from+1 < s.firstRV {
		return nil, apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", from, s.firstRV-1))
	}
	w := newWatcher(s, keep)
	skip := int(from + 1 - s.firstRV)
	for _, ev := range s.history[min(skip, len(s.history)):] {
		w.send(ev)
	}
	s.watchers[w] = struct{}{}
	return w, nil
}

func (s *Source) remove(w *watcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.watchers, w)
}

func allObjects(runtime.Object) bool { return true }

func mustAccessor(obj runtime.Object) metav1.Object {
	m, err := meta.Accessor(obj)
	if err != nil {
		panic(fmt.Sprintf("kubehandlertest: %T has no metadata: %v", obj, err))
	}
	return m
}

func objectName(obj runtime.Object) cache.ObjectName {
	m := mustAccessor(obj)
	return cache.ObjectName{Namespace: m.GetNamespace(), Name: m.GetName()}
}

// newUID returns the UID of the object stored at resourceVersion n: a
// version 4 UUID as the API server makes, but a function of n, so a test's
// UIDs are the same from run to run. Its digits are spread as random ones
// are: UIDs that differ only in their last digits would share the top bits
// of their FNV-1a hash, and all land in one shard slot (WithSharding).
func newUID(n uint64) types.UID {
	b := sha256.Sum256(binary.BigEndian.AppendUint64(nil, n))
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return types.UID(fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]))
}
