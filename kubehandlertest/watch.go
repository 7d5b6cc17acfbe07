package kubehandlertest

import (
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// watcher is one watch of a Source: an unbounded buffer between the Source,
// which must never block on a slow reader, and the reader's channel.
type watcher struct {
	source *Source
	keep   func(runtime.Object) bool // the events this watch is for
	result chan watch.Event

	mu     sync.Mutex
	cond   *sync.Cond
	buf    []watch.Event
	closed bool // no more events: the Source broke the watch or the reader stopped
	done   chan struct{}
}

func newWatcher(s *Source, keep func(runtime.Object) bool) *watcher {
	w := &watcher{source: s, keep: keep, result: make(chan watch.Event), done: make(chan struct{})}
	w.cond = sync.NewCond(&w.mu)
	go w.pump()
	return w
}

// send queues the event as this watch sees it: an object that enters the
// watch's subset is added, one that leaves it deleted, as the API server's
// watch cache does.
func (w *watcher) send(ev event) {
	now := ev.Type != watch.Deleted && w.keep(ev.Object)
	before := ev.prev != nil && w.keep(ev.prev)
	out := ev.Event
	switch {
	case now && !before:
		out.Type = watch.Added
	case !now && before:
		out.Type = watch.Deleted
	case !now && !before:
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, out)
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
