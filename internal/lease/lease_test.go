package lease

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	clocktesting "k8s.io/utils/clock/testing"
)

// store is a fake Lease: one record and its version, which every write
// bumps. A write is refused with a conflict unless the writer read or wrote
// the current version last (the resourceVersion precondition of a
// resourcelock.LeaseLock).
type store struct {
	mu      sync.Mutex
	record  *resourcelock.LeaderElectionRecord
	version int
	writes  []resourcelock.LeaderElectionRecord // every write that succeeded
}

var leaseResource = schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}

// set writes r as another replica would.
func (s *store) set(r resourcelock.LeaderElectionRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.record = &r
	s.version++
	s.writes = append(s.writes, r)
}

func (s *store) holder() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.record == nil {
		return ""
	}
	return s.record.HolderIdentity
}

func (s *store) writeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.writes)
}

// fakeLock is one replica's resourcelock.Interface over a store. Hooks, when
// set, run inside the calls: a blocked transport, a failing API server, or
// another replica writing between a read and a write.
type fakeLock struct {
	s    *store
	id   string
	seen int // the version this replica last read or wrote

	mu       sync.Mutex
	getHook  func() error // runs before a Get answers; an error fails it
	putHook  func() error // runs before a Create or Update is applied
	afterGet func()       // runs after a Get read the record
}

func (l *fakeLock) hooks() (get, put func() error, after func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.getHook, l.putHook, l.afterGet
}

func (l *fakeLock) setHooks(get, put func() error, after func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.getHook, l.putHook, l.afterGet = get, put, after
}

func (l *fakeLock) Get(context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	get, _, after := l.hooks()
	if get != nil {
		if err := get(); err != nil {
			return nil, nil, err
		}
	}
	l.s.mu.Lock()
	if l.s.record == nil {
		l.s.mu.Unlock()
		return nil, nil, apierrors.NewNotFound(leaseResource, "lease")
	}
	r := *l.s.record
	l.seen = l.s.version
	l.s.mu.Unlock()
	if after != nil {
		after()
	}
	return &r, []byte(r.HolderIdentity + r.RenewTime.String()), nil
}

func (l *fakeLock) Create(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	return l.write(r, true)
}

func (l *fakeLock) Update(_ context.Context, r resourcelock.LeaderElectionRecord) error {
	return l.write(r, false)
}

func (l *fakeLock) write(r resourcelock.LeaderElectionRecord, create bool) error {
	if _, put, _ := l.hooks(); put != nil {
		if err := put(); err != nil {
			return err
		}
	}
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	switch {
	case create && l.s.record != nil:
		return apierrors.NewAlreadyExists(leaseResource, "lease")
	case !create && l.s.record == nil:
		return errors.New("lease not initialized, call get or create first")
	case !create && l.seen != l.s.version:
		return apierrors.NewConflict(leaseResource, "lease", errors.New("the object has been modified"))
	}
	l.s.record = &r
	l.s.version++
	l.seen = l.s.version
	l.s.writes = append(l.s.writes, r)
	return nil
}

func (l *fakeLock) RecordEvent(string) {}
func (l *fakeLock) Identity() string   { return l.id }
func (l *fakeLock) Describe() string   { return "ns/lease" }

const (
	leaseDuration = 3 * time.Second
	renewDeadline = 2 * time.Second
	retryPeriod   = 500 * time.Millisecond
)

// stepDowns counts OnStepDown calls and remembers the reasons.
type stepDowns struct {
	n       atomic.Int32
	mu      sync.Mutex
	reasons []string
}

func (s *stepDowns) record(reason string) {
	s.n.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reasons = append(s.reasons, reason)
}

// newHolder returns a Holder of l, timed by c, that the test drives by
// hand: it calls the Holder's lock as client-go's elector would, without
// starting the elector.
func newHolder(t *testing.T, l *fakeLock, c *clocktesting.FakeClock, s *stepDowns) *Holder {
	t.Helper()
	h, err := New(Config{
		Lock: l, Name: "ns/lease", Clock: c,
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, RetryPeriod: retryPeriod,
		OnStepDown: s.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Stop(context.Background(), false) })
	return h
}

// leading returns a Holder of replica "a" on a new store that has just
// acquired the Lease, with its lock, fake clock and step-down count.
func leading(t *testing.T) (*store, *fakeLock, *clocktesting.FakeClock, *Holder, *stepDowns) {
	t.Helper()
	s := &store{}
	c := clocktesting.NewFakeClock(time.Now())
	downs := &stepDowns{}
	l := &fakeLock{s: s, id: "a"}
	h := newHolder(t, l, c, downs)
	acquire(t, h, c)
	return s, l, c, h, downs
}

// acquire takes the Lease through h as the elector's first attempt does.
func acquire(t *testing.T, h *Holder, c *clocktesting.FakeClock) {
	t.Helper()
	ctx := t.Context()
	r := resourcelock.LeaderElectionRecord{HolderIdentity: h.identity, LeaseDurationSeconds: 3}
	if _, _, err := h.lock.Get(ctx); err == nil {
		err = h.lock.Update(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
	} else if err := h.lock.Create(ctx, r); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.Acquired():
	default:
		t.Fatal("the write that took the Lease did not begin the term")
	}
	// The deadline's timer is armed.
	eventually(t, "the deadline timer is armed", c.HasWaiters)
}

// renew renews the Lease through h as the elector's fast path does.
func renew(t *testing.T, h *Holder) error {
	t.Helper()
	return h.lock.Update(t.Context(), resourcelock.LeaderElectionRecord{HolderIdentity: h.identity, LeaseDurationSeconds: 3})
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func isDone(h *Holder) bool {
	select {
	case <-h.Done():
		return true
	default:
		return false
	}
}

// The read that shows another holder ends the term before it returns to the
// elector: by then OnStepDown has run, Held is false and Done is closed.
func TestStepDownOnReadOfAnotherHolder(t *testing.T) {
	for _, other := range []string{"b", ""} {
		t.Run("holder="+other, func(t *testing.T) {
			s, _, _, h, downs := leading(t)
			if !h.Held() || !h.Check() {
				t.Fatal("not held right after acquiring")
			}
			// Reads that show this replica change nothing.
			if _, _, err := h.lock.Get(t.Context()); err != nil || !h.Held() {
				t.Fatalf("a read of our own record: err %v, held %v", err, h.Held())
			}

			s.set(resourcelock.LeaderElectionRecord{HolderIdentity: other, LeaseDurationSeconds: 3})
			var heldDuringCallback atomic.Bool
			h.cfg.OnStepDown = func(reason string) {
				heldDuringCallback.Store(h.Held())
				downs.record(reason)
			}
			if _, _, err := h.lock.Get(t.Context()); err != nil {
				t.Fatal(err)
			}
			// No clock step, no goroutine to wait for: the read did it.
			if downs.n.Load() != 1 || h.Held() || h.Check() || !isDone(h) {
				t.Fatalf("after the read: %d step-downs, held %v, done %v", downs.n.Load(), h.Held(), isDone(h))
			}
			if heldDuringCallback.Load() {
				t.Error("Held was still true while OnStepDown ran")
			}
			if !strings.Contains(h.Reason(), "held by") {
				t.Errorf("Reason = %q", h.Reason())
			}
			// Another read, a renewal that somehow succeeds: still over, once.
			_, _, _ = h.lock.Get(t.Context())
			if h.Held() || downs.n.Load() != 1 {
				t.Errorf("held %v, %d step-downs", h.Held(), downs.n.Load())
			}
		})
	}
}

// A standby reads the leader's record all the time: that is no step-down,
// and no term begins until its own write succeeds.
func TestStandbyReadsAreNotATerm(t *testing.T) {
	s := &store{}
	s.set(resourcelock.LeaderElectionRecord{HolderIdentity: "b", LeaseDurationSeconds: 3})
	c := clocktesting.NewFakeClock(time.Now())
	var downs stepDowns
	h := newHolder(t, &fakeLock{s: s, id: "a"}, c, &downs)
	for range 3 {
		if _, _, err := h.lock.Get(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if h.Held() || isDone(h) || downs.n.Load() != 0 {
		t.Fatalf("standby: held %v, done %v, %d step-downs", h.Held(), isDone(h), downs.n.Load())
	}
	if _, ok := h.SinceContact(); !ok {
		t.Error("reads of the Lease are not counted as contact")
	}
	// A failed write does not begin a term.
	s.set(resourcelock.LeaderElectionRecord{HolderIdentity: "b", LeaseDurationSeconds: 3})
	if err := renew(t, h); err == nil {
		t.Fatal("a write over a changed record succeeded")
	}
	select {
	case <-h.Acquired():
		t.Fatal("a failed write began a term")
	default:
	}
}

// The term ends once the renew deadline has passed since the last renewal
// that succeeded, counted from when it was sent, on the Holder's clock;
// renewals move the deadline, failed ones do not.
func TestStepDownAtRenewDeadline(t *testing.T) {
	_, l, c, h, downs := leading(t)

	c.Step(renewDeadline - 100*time.Millisecond)
	if !h.Check() {
		t.Fatal("not held before the deadline")
	}
	if err := renew(t, h); err != nil {
		t.Fatal(err)
	}
	renewedAt := c.Now()
	// A renewal that fails does not move the deadline.
	l.setHooks(nil, func() error { return errors.New("apiserver unreachable") }, nil)
	c.Step(renewDeadline / 2)
	// The first deadline passed; the timer finds the renewal and waits
	// again.
	eventually(t, "the deadline timer is armed again", c.HasWaiters)
	if err := renew(t, h); err == nil {
		t.Fatal("renewal did not fail")
	}
	c.Step(renewDeadline/2 - time.Millisecond)
	if !h.Held() {
		t.Fatalf("not held %s after a renewal", c.Since(renewedAt))
	}
	if downs.n.Load() != 0 || isDone(h) {
		t.Fatal("stepped down before the deadline")
	}
	c.Step(time.Millisecond)
	// Held answers at once, from the clock; the timer steps down as soon as
	// its goroutine runs.
	if h.Held() {
		t.Fatalf("held %s after the last renewal", c.Since(renewedAt))
	}
	eventually(t, "the deadline's timer ends the term", func() bool { return isDone(h) })
	if downs.n.Load() != 1 || !strings.Contains(h.Reason(), "renew deadline") {
		t.Errorf("%d step-downs, reason %q", downs.n.Load(), h.Reason())
	}
}

// A renewal whose request is stuck (a blocked transport, or a process frozen
// mid-request) does not keep the term alive: the deadline passes while it
// hangs, and when it finally succeeds the term stays over.
func TestRenewalStuckInFlight(t *testing.T) {
	_, l, c, h, downs := leading(t)

	entered, unblock := make(chan struct{}), make(chan struct{})
	l.setHooks(nil, func() error {
		close(entered)
		<-unblock
		return nil
	}, nil)
	renewed := make(chan error, 1)
	go func() {
		renewed <- h.lock.Update(context.Background(), resourcelock.LeaderElectionRecord{HolderIdentity: "a", LeaseDurationSeconds: 3})
	}()
	<-entered
	c.Step(renewDeadline)
	eventually(t, "the term ends while the renewal hangs", func() bool { return isDone(h) })
	close(unblock)
	if err := <-renewed; err != nil {
		t.Fatal(err)
	}
	if h.Held() || h.Check() || downs.n.Load() != 1 {
		t.Errorf("after the late renewal: held %v, %d step-downs", h.Held(), downs.n.Load())
	}
}

// Check ends the term itself when it finds the deadline passed, whether or
// not the deadline's timer got to run (after a freeze, both wake at once):
// when Check says no, the term is over.
func TestCheckStepsDownPastTheDeadline(t *testing.T) {
	_, _, c, h, downs := leading(t)
	c.Step(renewDeadline)
	if h.Check() {
		t.Fatal("Check passed after the deadline")
	}
	if !isDone(h) || downs.n.Load() != 1 {
		t.Fatalf("Check returned before the term ended: done %v, %d step-downs", isDone(h), downs.n.Load())
	}
}

// Stop releases the Lease only when told the calls drained, only if the
// Lease is still ours, and with the precondition of the record it read.
func TestStopRelease(t *testing.T) {
	tests := []struct {
		name     string
		release  bool
		setup    func(s *store, l *fakeLock) // after the term began
		released bool
		holder   string // afterwards
	}{
		{name: "drained", release: true, released: true, holder: ""},
		{name: "not drained", release: false, released: false, holder: "a"},
		{name: "no longer ours", release: true, holder: "b",
			setup: func(s *store, _ *fakeLock) {
				s.set(resourcelock.LeaderElectionRecord{HolderIdentity: "b", LeaseDurationSeconds: 3})
			}},
		{name: "taken between the read and the write", release: true, holder: "b",
			setup: func(s *store, l *fakeLock) {
				var once sync.Once
				l.setHooks(nil, nil, func() {
					once.Do(func() { s.set(resourcelock.LeaderElectionRecord{HolderIdentity: "b", LeaseDurationSeconds: 3}) })
				})
			}},
		{name: "renewed between the read and the write", release: true, released: true, holder: "",
			setup: func(s *store, l *fakeLock) {
				var once sync.Once
				l.setHooks(nil, nil, func() {
					once.Do(func() { s.set(resourcelock.LeaderElectionRecord{HolderIdentity: "a", LeaseDurationSeconds: 3}) })
				})
			}},
		{name: "api server unreachable", release: true, holder: "a",
			setup: func(_ *store, l *fakeLock) {
				l.setHooks(func() error { return errors.New("connection refused") }, nil, nil)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, l, _, h, _ := leading(t)
			if tt.setup != nil {
				tt.setup(s, l)
			}
			writes := s.writeCount()
			if got := h.Stop(t.Context(), tt.release); got != tt.released {
				t.Errorf("Stop = %v, want %v", got, tt.released)
			}
			if got := s.holder(); got != tt.holder {
				t.Errorf("holder afterwards %q, want %q", got, tt.holder)
			}
			if !tt.release && s.writeCount() != writes {
				t.Error("Stop(false) wrote the Lease")
			}
			if !isDone(h) || h.Held() {
				t.Error("the term goes on after Stop")
			}
			if h.Stop(t.Context(), true) != tt.released {
				t.Error("a second Stop changed its answer")
			}
		})
	}
}

// With client-go's elector driving it: the Holder acquires a free Lease,
// renews it, steps down when another replica takes it over, and, the
// elector running with ReleaseOnCancel off, nothing releases the Lease
// before Stop; Stop(true) then finds it no longer ours and leaves it.
func TestElectorDrivesTheHolder(t *testing.T) {
	s := &store{}
	var downs stepDowns
	l := &fakeLock{s: s, id: "a"}
	h, err := New(Config{
		Lock: l, Name: "ns/lease",
		LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: 20 * time.Millisecond,
		OnStepDown: downs.record,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop(context.Background(), false)
	h.Start(t.Context())
	select {
	case <-h.Acquired():
	case <-time.After(20 * time.Second):
		t.Fatal("the elector did not acquire a free Lease")
	}
	eventually(t, "renewals", func() bool { return s.writeCount() >= 3 })
	if !h.Held() {
		t.Fatal("not held while renewing")
	}
	// Another replica takes the Lease over (as one does after this one
	// froze): the elector's next renewal conflicts, its read shows b.
	s.set(resourcelock.LeaderElectionRecord{HolderIdentity: "b", LeaseDurationSeconds: 2})
	select {
	case <-h.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("no step-down after another replica took the Lease")
	}
	if !strings.Contains(h.Reason(), "held by b") {
		t.Errorf("Reason = %q", h.Reason())
	}
	if s.holder() != "b" {
		t.Fatalf("holder %q: the old leader wrote over the new one", s.holder())
	}
	if h.Stop(t.Context(), true) {
		t.Error("released a Lease held by another replica")
	}
	if s.holder() != "b" || downs.n.Load() != 1 {
		t.Errorf("holder %q, %d step-downs", s.holder(), downs.n.Load())
	}
}

// When renewals fail (an unreachable API server), the term ends at the
// renew deadline and the elector, with ReleaseOnCancel off, does not release
// the Lease: only Stop does, once the caller says its calls drained.
func TestFailingRenewalReleasesOnlyAtStop(t *testing.T) {
	s := &store{}
	l := &fakeLock{s: s, id: "a"}
	h, err := New(Config{
		Lock: l, Name: "ns/lease",
		LeaseDuration: 2 * time.Second, RenewDeadline: 500 * time.Millisecond, RetryPeriod: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Stop(context.Background(), false)
	h.Start(t.Context())
	<-h.Acquired()
	var failing atomic.Bool
	failing.Store(true)
	fail := func() error {
		if failing.Load() {
			return errors.New("connection refused")
		}
		return nil
	}
	l.setHooks(fail, fail, nil)
	select {
	case <-h.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("no step-down while renewals fail")
	}
	// The elector goes on failing, then gives up (its own deadline); it
	// released nothing (it could not have: the API server is away).
	eventually(t, "the elector gives up", func() bool {
		select {
		case <-h.electorDone:
			return true
		default:
			return false
		}
	})
	// The API server is back while the calls still drain: nothing writes
	// the Lease (a released one would have no holder) until Stop.
	writes := s.writeCount()
	failing.Store(false)
	if s.holder() != "a" || s.writeCount() != writes {
		t.Fatalf("the Lease was written before the drain: holder %q", s.holder())
	}
	if !h.Stop(t.Context(), true) {
		t.Fatal("Stop(true) did not release a Lease still ours")
	}
	if s.holder() != "" {
		t.Errorf("holder %q after the release", s.holder())
	}
}
