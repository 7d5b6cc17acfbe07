package kubehandler

import (
	"fmt"
	"reflect"
	"testing"
)

// entryMap finds each key's own entry, also when keys' hashes collide:
// with every hash equal, all keys but the first are in the second map.
func TestEntryMap(t *testing.T) {
	tests := []struct {
		name string
		hash func(Key) uint64 // nil: the queue's
	}{
		{"seeded hash", nil},
		{"every hash collides", func(Key) uint64 { return 7 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newEntryMap()
			if tt.hash != nil {
				m.hash = tt.hash
			}
			keys := make([]Key, 100)
			for i := range keys {
				keys[i] = Key{Kind: "k", Namespace: "ns", Name: fmt.Sprint(i)}
				if e := m.get(keys[i]); e != nil {
					t.Fatalf("get(%v) before any entry = %v", keys[i], e.key())
				}
				if e := m.entryFor(keys[i]); e.key() != keys[i] {
					t.Fatalf("entryFor(%v) made an entry of %v", keys[i], e.key())
				}
			}
			for _, k := range keys {
				if e := m.get(k); e == nil || e.key() != k || m.entryFor(k) != e {
					t.Fatalf("get(%v) = %v, or entryFor made another", k, e)
				}
			}
			// Remove the even keys, the first (which holds the hash when all
			// collide) among them.
			for i := 0; i < len(keys); i += 2 {
				m.remove(m.get(keys[i]))
			}
			seen := 0
			for e := range m.all() {
				seen++
				if m.get(e.key()) != e {
					t.Errorf("all yielded %v, which get does not find", e.key())
				}
			}
			for i, k := range keys {
				if got := m.get(k) != nil; got != (i%2 == 1) {
					t.Errorf("after the removals get(%v) found an entry: %v, want %v", k, got, i%2 == 1)
				}
			}
			if seen != len(keys)/2 || m.len() != len(keys)/2 {
				t.Errorf("all yielded %d entries, len = %d; want %d", seen, m.len(), len(keys)/2)
			}
		})
	}
}

// Go maps keep the space of deleted keys: after a large list has drained,
// entryMap rebuilds its map at its current size, so that the queue does
// not hold its peak size for good (retained heap, issue 19).
func TestEntryMapRebuiltAfterDrain(t *testing.T) {
	m := newEntryMap()
	const n = 10 * rebuildMin
	entries := make([]*entry, n)
	for i := range entries {
		entries[i] = m.entryFor(Key{Kind: "k", Namespace: "ns", Name: fmt.Sprint(i)})
	}
	grown := reflect.ValueOf(m.byHash).UnsafePointer()
	for _, e := range entries[:n-n/rebuildRatio] {
		m.remove(e)
	}
	if reflect.ValueOf(m.byHash).UnsafePointer() == grown {
		t.Fatalf("the map that held %d entries still holds the %d left", n, m.len())
	}
	if m.peak != m.len() {
		t.Errorf("after the rebuild peak = %d, want the %d entries left", m.peak, m.len())
	}
	for _, e := range entries[n-n/rebuildRatio:] {
		if m.get(e.key()) != e {
			t.Fatalf("the rebuild lost %v", e.key())
		}
	}
}

// Looking up or making an entry costs no allocation beyond a new entry: the
// hash of a Key is computed on the stack.
func TestEntryMapAllocations(t *testing.T) {
	m := newEntryMap()
	k := Key{Kind: "k", Namespace: "ns", Name: "a"}
	m.entryFor(k)
	if n := testing.AllocsPerRun(100, func() { m.entryFor(k) }); n != 0 {
		t.Errorf("entryFor of a key with an entry allocates %v times, want 0", n)
	}
}
