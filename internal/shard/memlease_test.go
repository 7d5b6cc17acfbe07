package shard

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

// This file is a model of the library's Lease mechanism (internal/lease's
// Pool, which the root package gives a Replica), over a store in memory,
// for the simulated tests of the hand-over: it follows the contract of
// Leases and Term to the letter, and lets a test make reads stale and a
// replica unreachable, which a real API server cannot be made to do on
// cue. It is not a second implementation of the rule for production:
// test/integration/lease runs Replicas over the Pool on a real API server.

// memStore keeps Lease records in memory with their whole history, like
// etcd: a write is a compare-and-swap on the resourceVersion and is seen by
// every later write at once, while a read may be served as of a moment in
// the past, like a lagging watch cache.
type memStore struct {
	clock clock.PassiveClock

	mu      sync.Mutex
	rv      int64
	history map[string][]memVersion // by name, oldest first
	writes  map[string]int          // by the value of LabelRole
}

type memVersion struct {
	rv     int64
	at     time.Time // when it was written
	labels map[string]string
	holder string
}

var errConflict = errors.New("the object has been modified")

func newMemStore(c clock.PassiveClock) *memStore {
	return &memStore{clock: c, history: map[string][]memVersion{}, writes: map[string]int{}}
}

// read returns the version of name current at asOf.
func (s *memStore) read(name string, asOf time.Time) (memVersion, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return versionAt(s.history[name], asOf)
}

func versionAt(h []memVersion, asOf time.Time) (memVersion, bool) {
	for i := len(h) - 1; i >= 0; i-- {
		if !h[i].at.After(asOf) {
			return h[i], true
		}
	}
	return memVersion{}, false
}

// list returns the records carrying labels as of asOf, by name.
func (s *memStore) list(labels map[string]string, asOf time.Time) map[string]memVersion {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]memVersion{}
	for name, h := range s.history {
		v, ok := versionAt(h, asOf)
		if !ok {
			continue
		}
		match := true
		for k, want := range labels {
			if v.labels[k] != want {
				match = false
			}
		}
		if match {
			out[name] = v
		}
	}
	return out
}

// write stores a new version of name if its current resourceVersion is
// expect (0: if it does not exist).
func (s *memStore) write(name string, labels map[string]string, holder string, expect int64) (memVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.history[name]
	var cur int64
	if len(h) > 0 {
		cur = h[len(h)-1].rv
		if labels == nil {
			labels = h[len(h)-1].labels
		}
	}
	if cur != expect {
		return memVersion{}, errConflict
	}
	s.rv++
	s.writes[labels[LabelRole]]++
	v := memVersion{rv: s.rv, at: s.clock.Now(), labels: labels, holder: holder}
	s.history[name] = append(h, v)
	return v, nil
}

// written returns the number of writes so far of the records with each
// role.
func (s *memStore) written() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.writes)
}

// current returns the newest version of name.
func (s *memStore) current(name string) (memVersion, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.history[name]
	if len(h) == 0 {
		return memVersion{}, false
	}
	return h[len(h)-1], true
}

// memLeases is the Leases of one identity over a memStore.
type memLeases struct {
	identity      string
	store         *memStore
	clock         clock.PassiveClock
	leaseDuration time.Duration
	renewDeadline time.Duration
	// stale, if set, says how far in the past the next read of name is
	// served. It is called from the goroutines of a Step's parallel writes.
	stale func(name string) time.Duration
	// down, if set, says whether the store is unreachable now.
	down func() bool
	// trustReads makes Claim judge a holder gone on its (stale) read
	// alone, without the read of the store as it is now: the unsafe
	// variant that the simulation must catch.
	trustReads bool

	mu       sync.Mutex
	observed map[string]observation
	terms    map[string]*memTerm // the newest term of each name
}

// observation is when this replica first read a version of a record.
type observation struct {
	rv int64
	at time.Time
}

var errUnreachable = errors.New("the store is unreachable")

func newMemLeases(identity string, store *memStore, c clock.PassiveClock, leaseDuration, renewDeadline time.Duration) *memLeases {
	return &memLeases{
		identity: identity, store: store, clock: c,
		leaseDuration: leaseDuration, renewDeadline: renewDeadline,
		observed: map[string]observation{}, terms: map[string]*memTerm{},
	}
}

var _ Leases = (*memLeases)(nil)

func (l *memLeases) asOf(name string) time.Time {
	now := l.clock.Now()
	if l.stale != nil {
		return now.Add(-l.stale(name))
	}
	return now
}

func (l *memLeases) unreachable() bool { return l.down != nil && l.down() }

// see records a read of v: its observation, and the end of this replica's
// term on it if v shows another holder after the term's last write. It
// returns whether v has expired. l.mu is held.
func (l *memLeases) see(name string, v memVersion) (expired bool) {
	now := l.clock.Now()
	o, ok := l.observed[name]
	if !ok || v.rv > o.rv {
		o = observation{rv: v.rv, at: now}
		l.observed[name] = o
	}
	if t := l.terms[name]; t != nil && v.holder != l.identity {
		t.sawNewer(v.rv)
	}
	return v.holder != "" && v.rv == o.rv && !now.Before(o.at.Add(l.leaseDuration))
}

func (l *memLeases) Acquire(_ context.Context, name string, labels map[string]string) (Term, error) {
	if l.unreachable() {
		return nil, errUnreachable
	}
	start := l.clock.Now()
	v, exists := l.store.read(name, l.asOf(name))
	var expect int64
	if exists {
		l.mu.Lock()
		expired := l.see(name, v)
		l.mu.Unlock()
		if v.holder != "" && v.holder != l.identity && !expired {
			return nil, fmt.Errorf("lease %s held by %s: %w", name, v.holder, ErrHeld)
		}
		expect = v.rv
	}
	w, err := l.store.write(name, labels, l.identity, expect)
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w: %w", name, err, ErrHeld)
	}
	t := &memTerm{leases: l, name: name, rv: w.rv, renewStart: start}
	l.mu.Lock()
	l.observed[name] = observation{rv: w.rv, at: start}
	l.terms[name] = t
	l.mu.Unlock()
	return t, nil
}

func (l *memLeases) List(_ context.Context, labels map[string]string) ([]Record, error) {
	if l.unreachable() {
		return nil, errUnreachable
	}
	vs := l.store.list(labels, l.asOf(""))
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Record
	for _, name := range slices.Sorted(maps.Keys(vs)) {
		v := vs[name]
		out = append(out, Record{Name: name, Labels: v.labels, Holder: v.holder, Expired: l.see(name, v)})
	}
	return out, nil
}

// Claim follows Leases.Claim: the slot's record is read as List reads
// (stale), the holder's membership too, and then the membership again from
// the store as it is now (the API server's own read), before the write on
// the slot's version read first.
func (l *memLeases) Claim(_ context.Context, name string, labels map[string]string, under Term, membership func(string) string) (Term, error) {
	if l.unreachable() {
		return nil, errUnreachable
	}
	parent, ok := under.(*memTerm)
	if !ok || parent.leases != l {
		return nil, fmt.Errorf("lease %s: claimed under a term of other Leases", name)
	}
	start := l.clock.Now()
	v, exists := l.store.read(name, l.asOf(name))
	var expect int64
	if exists {
		if v.holder != "" && v.holder != l.identity {
			if err := l.gone(membership(v.holder)); err != nil {
				return nil, fmt.Errorf("lease %s held by %s: %w", name, v.holder, err)
			}
		}
		l.mu.Lock()
		l.see(name, v)
		l.mu.Unlock()
		expect = v.rv
	}
	w, err := l.store.write(name, labels, l.identity, expect)
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w: %w", name, err, ErrHeld)
	}
	t := &memTerm{leases: l, name: name, rv: w.rv, renewStart: start, under: parent}
	l.mu.Lock()
	l.observed[name] = observation{rv: w.rv, at: start}
	l.terms[name] = t
	l.mu.Unlock()
	return t, nil
}

// gone returns nil if the membership record member is gone as Claim
// judges it, an error wrapping ErrHeld if not.
func (l *memLeases) gone(member string) error {
	v, exists := l.store.read(member, l.asOf(member))
	l.mu.Lock()
	var expired bool
	if exists {
		expired = v.holder == "" || l.see(member, v)
	} else {
		expired = l.missing(member)
	}
	l.mu.Unlock()
	if !expired {
		return fmt.Errorf("its membership %s has not expired: %w", member, ErrHeld)
	}
	if l.trustReads {
		return nil
	}
	cur, ok := l.store.current(member)
	if ok != exists || (exists && cur.rv != v.rv) {
		l.mu.Lock()
		if ok {
			l.see(member, cur)
		} else {
			l.missing(member)
		}
		l.mu.Unlock()
		return fmt.Errorf("its membership %s changed: %w", member, ErrHeld)
	}
	return nil
}

// missing records a read that did not find name and reports whether it
// has been missing for the lease duration. l.mu is held.
func (l *memLeases) missing(name string) bool {
	now := l.clock.Now()
	o, ok := l.observed[name]
	if !ok || o.rv != 0 {
		o = observation{rv: 0, at: now}
		l.observed[name] = o
	}
	return !now.Before(o.at.Add(l.leaseDuration))
}

// memTerm is one term of a memLeases.
type memTerm struct {
	leases *memLeases
	name   string

	mu         sync.Mutex
	rv         int64     // of this term's last write
	renewStart time.Time // start of the last write that succeeded
	over       bool
	labels     map[string]string // set by Relabel, written by the next renewals
	under      *memTerm          // the membership a term of Claim lasts with; nil for Acquire's
}

var _ Term = (*memTerm)(nil)

var errLost = errors.New("the term is over")

func (t *memTerm) Dispatching() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.dispatching()
}

// dispatching is Dispatching with t.mu held; it latches the end.
func (t *memTerm) dispatching() bool {
	if t.over {
		return false
	}
	if t.under != nil {
		t.over = !t.under.Dispatching()
	} else {
		t.over = !t.leases.clock.Now().Before(t.renewStart.Add(t.leases.renewDeadline))
	}
	return !t.over
}

func (t *memTerm) Deadline() time.Time {
	if t.under != nil {
		return t.under.Deadline()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.renewStart.Add(t.leases.renewDeadline)
}

func (t *memTerm) sawNewer(rv int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if rv > t.rv {
		t.over = true
	}
}

func (t *memTerm) Renew(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.dispatching() {
		return errLost
	}
	if t.under != nil {
		return nil // a term of Claim lasts with its membership
	}
	if t.leases.unreachable() {
		return errUnreachable
	}
	start := t.leases.clock.Now()
	w, err := t.leases.store.write(t.name, t.labels, t.leases.identity, t.rv)
	if err != nil {
		t.over = true // somebody else wrote the record
		return fmt.Errorf("%w: %w", errLost, err)
	}
	t.rv, t.renewStart = w.rv, start
	return nil
}

func (t *memTerm) Relabel(labels map[string]string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur, _ := t.leases.store.current(t.name)
	t.labels = maps.Clone(cur.labels)
	maps.Copy(t.labels, labels)
}

func (t *memTerm) Release(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.over = true
	if t.leases.unreachable() {
		return errUnreachable
	}
	// A record that is no longer this term's fails the precondition and
	// is left alone.
	_, _ = t.leases.store.write(t.name, nil, "", t.rv)
	return nil
}
