package kubehandler

import (
	"hash/maphash"
	"iter"
	"maps"
)

// entryMap is the workQueue's index of its entries by Key. Every queued key
// has a slot in it, so the slots are kept small: it maps a 64-bit hash of
// the Key to the entry, which holds the Key itself, instead of holding a
// second copy of the Key (three strings, 48 bytes) in every slot. A key
// whose hash another key's entry already has, which a per-queue random
// seed makes rare, is kept in a second map, by Key; the entry's own Key
// decides every lookup, so a collision costs a lookup, never a wrong entry.
//
// Go maps never give back the space of deleted keys, and a large initial
// list fills this one once: entryMap rebuilds its maps at their current
// size once they have shrunk to a fraction of the size they grew to, so
// that the queue does not keep the list's peak for the life of the process.
//
// It is guarded by workQueue.mu; remove must not be called while ranging
// over all.
type entryMap struct {
	hash     func(Key) uint64 // hashKey with the queue's seed; tests make keys collide
	byHash   map[uint64]*entry
	collided map[Key]*entry // keys whose hash byHash holds for another key; nil when none
	peak     int            // the most entries held since the maps were last rebuilt
}

// Rebuild the maps when, having held at least rebuildMin entries, they hold
// at most 1/rebuildRatio of their peak. Copying the entries left costs less
// than the deletions that led there, so each delete pays for it.
const (
	rebuildMin   = 1024
	rebuildRatio = 8
)

func newEntryMap() entryMap {
	seed := maphash.MakeSeed()
	return entryMap{
		hash:   func(k Key) uint64 { return hashKey(seed, k) },
		byHash: make(map[uint64]*entry),
	}
}

// hashKey hashes k's three strings, each ended by a zero byte.
func hashKey(seed maphash.Seed, k Key) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	h.WriteString(k.Kind)
	h.WriteByte(0)
	h.WriteString(k.Namespace)
	h.WriteByte(0)
	h.WriteString(k.Name)
	return h.Sum64()
}

// get returns k's entry, or nil.
func (m *entryMap) get(k Key) *entry {
	e, _ := m.find(k)
	return e
}

// find returns k's entry, or nil, and k's hash.
func (m *entryMap) find(k Key) (*entry, uint64) {
	h := m.hash(k)
	if e := m.byHash[h]; e != nil && e.is(k) {
		return e, h
	}
	if m.collided == nil {
		return nil, h
	}
	return m.collided[k], h
}

// entryFor returns k's entry, making one if k has none.
func (m *entryMap) entryFor(k Key) *entry {
	e, h := m.find(k)
	if e != nil {
		return e
	}
	e = newEntry(k)
	if m.byHash[h] == nil {
		m.byHash[h] = e
	} else {
		if m.collided == nil {
			m.collided = make(map[Key]*entry)
		}
		m.collided[k] = e
	}
	m.peak = max(m.peak, m.len())
	return e
}

// remove drops e, which must be its key's entry, and rebuilds the maps if
// they have shrunk far enough.
func (m *entryMap) remove(e *entry) {
	if h := m.hash(e.key()); m.byHash[h] == e {
		delete(m.byHash, h)
	} else {
		delete(m.collided, e.key())
		if len(m.collided) == 0 {
			m.collided = nil
		}
	}
	if n := m.len(); m.peak >= rebuildMin && n <= m.peak/rebuildRatio {
		m.rebuild()
	}
}

// rebuild copies the entries into maps of their size.
func (m *entryMap) rebuild() {
	byHash := make(map[uint64]*entry, len(m.byHash))
	maps.Copy(byHash, m.byHash)
	m.byHash = byHash
	if m.collided != nil {
		collided := make(map[Key]*entry, len(m.collided))
		maps.Copy(collided, m.collided)
		m.collided = collided
	}
	m.peak = m.len()
}

// len returns the number of entries.
func (m *entryMap) len() int { return len(m.byHash) + len(m.collided) }

// all ranges over the entries, in no particular order.
func (m *entryMap) all() iter.Seq[*entry] {
	return func(yield func(*entry) bool) {
		for _, e := range m.byHash {
			if !yield(e) {
				return
			}
		}
		for _, e := range m.collided {
			if !yield(e) {
				return
			}
		}
	}
}

// clear drops every entry, and the space they took.
func (m *entryMap) clear() {
	m.byHash, m.collided, m.peak = make(map[uint64]*entry), nil, 0
}
