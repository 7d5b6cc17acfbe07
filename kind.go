package kubehandler

import (
	"sync"
	"sync/atomic"
)

// kindID stands for a handler kind in an entry: every queued key has an
// entry, and an index into the process's table of kinds is 12 bytes less
// than the string. Kinds are few and are never dropped from the table.
type kindID uint32

// kinds is the process's table of the kinds that entries were made for.
var kinds struct {
	mu    sync.Mutex // held to add a kind
	ids   map[string]kindID
	names atomic.Pointer[[]string] // by kindID; replaced, never changed, when a kind is added
}

// internKind returns kind's kindID, adding kind to the table if it is new.
func internKind(kind string) kindID {
	if names := kinds.names.Load(); names != nil {
		// Most queues have a kind or two: a look along the table is
		// quicker than the map and takes no lock.
		for i, name := range (*names)[:min(len(*names), 8)] {
			if name == kind {
				return kindID(i)
			}
		}
	}
	kinds.mu.Lock()
	defer kinds.mu.Unlock()
	if id, ok := kinds.ids[kind]; ok {
		return id
	}
	var names []string
	if p := kinds.names.Load(); p != nil {
		names = *p
	}
	id := kindID(len(names))
	names = append(names[:len(names):len(names)], kind)
	if kinds.ids == nil {
		kinds.ids = make(map[string]kindID)
	}
	kinds.ids[kind] = id
	kinds.names.Store(&names)
	return id
}

// String returns the kind.
func (id kindID) String() string { return (*kinds.names.Load())[id] }
