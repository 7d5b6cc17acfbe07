// Package memsource is an in-memory ListerWatcher for unit tests and
// benchmarks: a stand-in for the API server that a real client-go informer
// lists and watches. It assigns resourceVersions as the server does, keeps an
// event history so a watch can start from any recent resourceVersion, and can
// break its watches and forget history, which makes the informer relist and,
// for objects deleted meanwhile, deliver cache.DeletedFinalStateUnknown
// tombstones.
package memsource

import (
	"fmt"
	"slices"
	"strconv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// Source holds objects of one resource. Objects given to it are stored as
// they are and handed to informers as they are: do not modify them after.
type Source struct {
	newList func() runtime.Object

	mu       sync.Mutex
	rv       uint64
	objects  map[cache.ObjectName]runtime.Object
	order    []cache.ObjectName // creation order, for stable lists
	history  []watch.Event      // events with resourceVersion > compacted
	firstRV  uint64             // resourceVersion of history[0]
	watchers map[*watcher]struct{}
}

// New returns an empty Source whose List returns the list type newList makes
// (for example func() runtime.Object { return &corev1.ConfigMapList{} }).
func New(newList func() runtime.Object) *Source {
	return &Source{
		newList:  newList,
		objects:  make(map[cache.ObjectName]runtime.Object),
		watchers: make(map[*watcher]struct{}),
		firstRV:  1,
	}
}

var _ cache.ListerWatcher = (*Source)(nil)

// IsWatchListSemanticsUnSupported tells client-go's reflector to list, then
// watch, rather than stream the initial list through a watch.
func (s *Source) IsWatchListSemanticsUnSupported() bool { return true }

// Create stores obj with a new resourceVersion and a UID if it has none, and
// returns the resourceVersion.
func (s *Source) Create(obj runtime.Object) string {
	return s.write(watch.Added, obj)
}

// Update stores obj as the newest state with a new resourceVersion.
func (s *Source) Update(obj runtime.Object) string {
	return s.write(watch.Modified, obj)
}

// Delete removes the object named namespace/name; it reports whether it
// existed.
func (s *Source) Delete(namespace, name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := cache.ObjectName{Namespace: namespace, Name: name}
	old, ok := s.objects[key]
	if !ok {
		return false
	}
	delete(s.objects, key)
	s.order = slices.DeleteFunc(s.order, func(n cache.ObjectName) bool { return n == key })
	// The deleted object's final state carries the deletion's resourceVersion,
	// as the API server's watch does.
	final := old.DeepCopyObject()
	s.rv++
	mustAccessor(final).SetResourceVersion(strconv.FormatUint(s.rv, 10))
	s.record(watch.Event{Type: watch.Deleted, Object: final})
	return true
}

func (s *Source) write(t watch.EventType, obj runtime.Object) string {
	m := mustAccessor(obj)
	key := cache.ObjectName{Namespace: m.GetNamespace(), Name: m.GetName()}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, exists := s.objects[key]
	switch {
	case t == watch.Added && exists:
		panic(fmt.Sprintf("memsource: %s already exists", key))
	case t == watch.Modified && !exists:
		panic(fmt.Sprintf("memsource: %s does not exist", key))
	}
	if !exists {
		s.order = append(s.order, key)
	}
	if m.GetUID() == "" {
		m.SetUID(newUID(s.rv + 1))
	}
	s.rv++
	rv := strconv.FormatUint(s.rv, 10)
	m.SetResourceVersion(rv)
	s.objects[key] = obj
	s.record(watch.Event{Type: t, Object: obj})
	return rv
}

// record appends an event to the history and sends it to every watcher.
// s.mu must be held.
func (s *Source) record(ev watch.Event) {
	s.history = append(s.history, ev)
	for w := range s.watchers {
		w.send(ev)
	}
}

// DeleteUnseen removes the object named namespace/name as if its deletion
// happened while every watch was down: no watcher hears of it, and the
// watches break (see BreakWatches). The informers relist and deliver the
// deletion as a cache.DeletedFinalStateUnknown tombstone. It reports whether
// the object existed.
func (s *Source) DeleteUnseen(namespace, name string) bool {
	s.mu.Lock()
	key := cache.ObjectName{Namespace: namespace, Name: name}
	_, ok := s.objects[key]
	if ok {
		delete(s.objects, key)
		s.order = slices.DeleteFunc(s.order, func(n cache.ObjectName) bool { return n == key })
		s.rv++
	}
	s.mu.Unlock()
	s.BreakWatches()
	return ok
}

// Get returns the stored object named namespace/name.
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

// BreakWatches closes every open watch and forgets the event history, as
// an API server does after compaction: the informers' next watch fails with
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

// List implements cache.Lister: every object, in creation order.
func (s *Source) List(metav1.ListOptions) (runtime.Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	items := make([]runtime.Object, 0, len(s.order))
	for _, key := range s.order {
		items = append(items, s.objects[key])
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

// Watch implements cache.Watcher: the events after opts.ResourceVersion.
func (s *Source) Watch(opts metav1.ListOptions) (watch.Interface, error) {
	from := uint64(0)
	if opts.ResourceVersion != "" {
		var err error
		if from, err = strconv.ParseUint(opts.ResourceVersion, 10, 64); err != nil {
			return nil, apierrors.NewBadRequest("invalid resourceVersion " + opts.ResourceVersion)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if from+1 < s.firstRV {
		return nil, apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", from, s.firstRV-1))
	}
	w := newWatcher(s)
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

func mustAccessor(obj runtime.Object) metav1.Object {
	m, err := meta.Accessor(obj)
	if err != nil {
		panic(fmt.Sprintf("memsource: %T has no metadata: %v", obj, err))
	}
	return m
}

func newUID(n uint64) types.UID {
	return types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", n))
}

// watcher is one watch: an unbounded buffer between the Source, which must
// never block on a slow reader, and the reader's channel.
type watcher struct {
	source *Source
	result chan watch.Event

	mu     sync.Mutex
	cond   *sync.Cond
	buf    []watch.Event
	closed bool // no more events: Source broke the watch or the reader stopped
	done   chan struct{}
}

func newWatcher(s *Source) *watcher {
	w := &watcher{source: s, result: make(chan watch.Event), done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	go w.pump()
	return w
}

func (w *watcher) send(ev watch.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, ev)
	w.cond.Signal()
}

func (w *watcher) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	w.cond.Signal()
}

// pump moves buffered events to the result channel until the watch closes;
// then it closes the channel, which tells the reflector to watch again.
func (w *watcher) pump() {
	defer close(w.result)
	for {
		w.mu.Lock()
		for len(w.buf) == 0 && !w.closed {
			w.cond.Wait()
		}
		if w.closed {
			w.mu.Unlock()
			return
		}
		ev := w.buf[0]
		w.buf[0] = watch.Event{}
		w.buf = w.buf[1:]
		w.mu.Unlock()
		select {
		case w.result <- ev:
		case <-w.done:
			return
		}
	}
}

// Stop implements watch.Interface.
func (w *watcher) Stop() {
	w.source.remove(w)
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		w.cond.Signal()
	}
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.mu.Unlock()
}

// ResultChan implements watch.Interface.
func (w *watcher) ResultChan() <-chan watch.Event { return w.result }
