package lease

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

// The fake clientset's tracker neither sets resourceVersions nor checks
// them on update; these tests need both, so leaseServer adds them with
// reactors in front of the tracker, as an API server does: every write
// gets a new, increasing resourceVersion, and an update whose
// resourceVersion is not the stored one is a conflict. Hooks let a test
// fail requests or write between a replica's read and its write. The
// protocol against a real API server is tested in test/integration/lease.
type leaseServer struct {
	client *fake.Clientset

	mu      sync.Mutex
	rv      int
	down    bool                                       // every request fails
	onWrite func(verb string, l *coordinationv1.Lease) // runs before a write is checked
	stale   map[string]*coordinationv1.Lease           // Gets and Lists answer these instead
}

var (
	errUnreachable = errors.New("connection refused")
	leasesResource = coordinationv1.SchemeGroupVersion.WithResource("leases")
)

func newLeaseServer() *leaseServer {
	s := &leaseServer{client: fake.NewClientset(), stale: map[string]*coordinationv1.Lease{}}
	tracker := s.client.Tracker()
	gvr := leasesResource
	s.client.PrependReactor("*", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.down {
			return true, nil, errUnreachable
		}
		// By verb: an UpdateAction is a CreateAction too, by its methods.
		switch a.GetVerb() {
		case "get":
			if l := s.stale[a.(k8stesting.GetAction).GetName()]; l != nil {
				return true, l.DeepCopy(), nil
			}
		case "list":
			obj, err := tracker.List(gvr, coordinationv1.SchemeGroupVersion.WithKind("Lease"), a.GetNamespace())
			if err != nil {
				return true, nil, err
			}
			list := obj.(*coordinationv1.LeaseList)
			for i := range list.Items {
				if l := s.stale[list.Items[i].Name]; l != nil {
					list.Items[i] = *l.DeepCopy()
				}
			}
			return true, list, nil
		case "create":
			l := a.(k8stesting.CreateAction).GetObject().(*coordinationv1.Lease).DeepCopy()
			s.hook("create", l)
			s.rv++
			l.ResourceVersion = strconv.Itoa(s.rv)
			if err := tracker.Create(gvr, l, a.GetNamespace()); err != nil {
				return true, nil, err
			}
			return true, l.DeepCopy(), nil
		case "update":
			l := a.(k8stesting.UpdateAction).GetObject().(*coordinationv1.Lease).DeepCopy()
			s.hook("update", l)
			cur, err := tracker.Get(gvr, a.GetNamespace(), l.Name)
			if err != nil {
				return true, nil, err
			}
			if l.ResourceVersion != cur.(*coordinationv1.Lease).ResourceVersion {
				return true, nil, apierrors.NewConflict(gvr.GroupResource(), l.Name, errors.New("the object has been modified"))
			}
			s.rv++
			l.ResourceVersion = strconv.Itoa(s.rv)
			if err := tracker.Update(gvr, l, a.GetNamespace()); err != nil {
				return true, nil, err
			}
			return true, l.DeepCopy(), nil
		}
		return false, nil, nil
	})
	return s
}

// hook runs onWrite without s.mu, so that it may write itself.
func (s *leaseServer) hook(verb string, l *coordinationv1.Lease) {
	if f := s.onWrite; f != nil {
		s.onWrite = nil // once
		s.mu.Unlock()
		f(verb, l)
		s.mu.Lock()
	}
}

func (s *leaseServer) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// nextWrite makes f run inside the next write, before it is applied.
func (s *leaseServer) nextWrite(f func(verb string, l *coordinationv1.Lease)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onWrite = f
}

// serveStale makes reads of l's name answer l until cleared with nil.
func (s *leaseServer) serveStale(name string, l *coordinationv1.Lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l == nil {
		delete(s.stale, name)
		return
	}
	s.stale[name] = l.DeepCopy()
}

// get reads the stored record of name, past the client (and its lock:
// hooks may call it).
func (s *leaseServer) get(t *testing.T, name string) *coordinationv1.Lease {
	t.Helper()
	obj, err := s.client.Tracker().Get(leasesResource, testNamespace, name)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*coordinationv1.Lease)
}

// edit changes the stored record of name as another client would, with a
// new resourceVersion. Hooks may call it.
func (s *leaseServer) edit(t *testing.T, name string, f func(*coordinationv1.Lease)) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.get(t, name)
	f(l)
	s.rv++
	l.ResourceVersion = strconv.Itoa(s.rv)
	if err := s.client.Tracker().Update(leasesResource, l, testNamespace); err != nil {
		t.Fatal(err)
	}
}

const (
	testNamespace = "ns"
	slotLease     = "ring-3"
)

var slotLabels = map[string]string{"ring": "ring", "role": "slot"}

// poolDowns counts OnStepDown calls by Lease name.
type poolDowns struct {
	mu      sync.Mutex
	reasons map[string][]string
}

func (d *poolDowns) record(name, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.reasons == nil {
		d.reasons = map[string][]string{}
	}
	d.reasons[name] = append(d.reasons[name], reason)
}

func (d *poolDowns) of(name string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.reasons[name]...)
}

func newPool(t *testing.T, s *leaseServer, identity string, c *clocktesting.FakeClock, d *poolDowns) *Pool {
	t.Helper()
	cfg := PoolConfig{
		Client: s.client.CoordinationV1(), Namespace: testNamespace, Identity: identity,
		LeaseDuration: leaseDuration, RenewDeadline: renewDeadline, Clock: c,
	}
	if d != nil {
		cfg.OnStepDown = d.record
	}
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// twoPools returns a server and the Pools of a and b on it, each with its
// own fake clock, a's having acquired slotLease.
func twoPools(t *testing.T) (s *leaseServer, a, b *Pool, ca, cb *clocktesting.FakeClock, term *Term, downs *poolDowns) {
	t.Helper()
	s = newLeaseServer()
	ca, cb = clocktesting.NewFakeClock(time.Now()), clocktesting.NewFakeClock(time.Now())
	downs = &poolDowns{}
	a, b = newPool(t, s, "a", ca, downs), newPool(t, s, "b", cb, nil)
	term, err := a.Acquire(t.Context(), slotLease, slotLabels)
	if err != nil {
		t.Fatal(err)
	}
	return s, a, b, ca, cb, term, downs
}

func TestNewPoolRefusesMisuse(t *testing.T) {
	ok := PoolConfig{
		Client: fake.NewClientset().CoordinationV1(), Namespace: "ns", Identity: "a",
		LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second,
	}
	tests := []struct {
		name   string
		change func(*PoolConfig)
		want   string // in the error; "" for none
	}{
		{name: "valid", change: func(*PoolConfig) {}},
		{name: "no client", change: func(c *PoolConfig) { c.Client = nil }, want: "no Client"},
		{name: "no namespace", change: func(c *PoolConfig) { c.Namespace = "" }, want: "no Namespace"},
		{name: "no identity", change: func(c *PoolConfig) { c.Identity = "" }, want: "no Identity"},
		{name: "no lease duration", change: func(c *PoolConfig) { c.LeaseDuration = 0 }, want: "LeaseDuration"},
		{name: "fractional lease duration", change: func(c *PoolConfig) { c.LeaseDuration = 2500 * time.Millisecond }, want: "whole number"},
		{name: "no renew deadline", change: func(c *PoolConfig) { c.RenewDeadline = 0 }, want: "RenewDeadline"},
		{name: "renew deadline past the lease", change: func(c *PoolConfig) { c.RenewDeadline = 3 * time.Second }, want: "shorter than LeaseDuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.change(&cfg)
			p, err := NewPool(cfg)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("NewPool: %v", err)
			case tt.want == "" && p == nil:
				t.Fatal("NewPool returned no Pool")
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("NewPool error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// Acquire creates a missing record with every field of a held Lease, and
// List reads it back; the term dispatches.
func TestPoolAcquireCreates(t *testing.T) {
	s, a, _, ca, _, term, _ := twoPools(t)
	l := s.get(t, slotLease)
	if got := ptr.Deref(l.Spec.HolderIdentity, ""); got != "a" {
		t.Errorf("holder %q", got)
	}
	if got := ptr.Deref(l.Spec.LeaseDurationSeconds, 0); got != 3 {
		t.Errorf("leaseDurationSeconds %d", got)
	}
	if l.Spec.AcquireTime == nil || l.Spec.RenewTime == nil || !l.Spec.RenewTime.Time.Equal(ca.Now()) {
		t.Errorf("acquireTime %v, renewTime %v, want both at %v", l.Spec.AcquireTime, l.Spec.RenewTime, ca.Now())
	}
	if ptr.Deref(l.Spec.LeaseTransitions, -1) != 0 || l.Labels["role"] != "slot" {
		t.Errorf("leaseTransitions %v, labels %v", l.Spec.LeaseTransitions, l.Labels)
	}
	if !term.Dispatching() || term.Name() != slotLease || term.Reason() != "" {
		t.Fatalf("the new term: dispatching %v, name %q, reason %q", term.Dispatching(), term.Name(), term.Reason())
	}
	recs, err := a.List(t.Context(), map[string]string{"role": "slot"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Name != slotLease || recs[0].Holder != "a" || recs[0].Expired {
		t.Fatalf("List = %+v", recs)
	}
	if recs, _ := a.List(t.Context(), map[string]string{"role": "member"}); len(recs) != 0 {
		t.Errorf("List of another label = %+v", recs)
	}
}

// Another replica gets ErrHeld until the record has stood unchanged for
// its lease duration by that replica's clock since its first read; then it
// takes it, counting a transition.
func TestPoolExpiry(t *testing.T) {
	s, _, b, _, cb, _, _ := twoPools(t)
	if _, err := b.Acquire(t.Context(), slotLease, slotLabels); !errors.Is(err, ErrHeld) {
		t.Fatalf("Acquire of a held lease: %v, want ErrHeld", err)
	}
	cb.Step(leaseDuration - time.Millisecond)
	if recs, _ := b.List(t.Context(), nil); len(recs) != 1 || recs[0].Expired {
		t.Fatalf("expired before the lease duration: %+v", recs)
	}
	if _, err := b.Acquire(t.Context(), slotLease, slotLabels); !errors.Is(err, ErrHeld) {
		t.Fatalf("Acquire before the lease duration: %v, want ErrHeld", err)
	}
	cb.Step(time.Millisecond)
	if recs, _ := b.List(t.Context(), nil); len(recs) != 1 || !recs[0].Expired {
		t.Fatalf("not expired after the lease duration: %+v", recs)
	}
	before := s.get(t, slotLease)
	bt, err := b.Acquire(t.Context(), slotLease, slotLabels)
	if err != nil {
		t.Fatal(err)
	}
	l := s.get(t, slotLease)
	if ptr.Deref(l.Spec.HolderIdentity, "") != "b" || ptr.Deref(l.Spec.LeaseTransitions, 0) != 1 ||
		!l.Spec.AcquireTime.Time.Equal(cb.Now()) || l.Spec.AcquireTime.Equal(before.Spec.AcquireTime) {
		t.Fatalf("after the takeover: %+v", l.Spec)
	}
	if !bt.Dispatching() {
		t.Fatal("the new term does not dispatch")
	}
}

// A record that changes, even without changing holder, is no longer
// expired: the count starts again from the first read of the new version.
func TestPoolExpiryRestartsOnChange(t *testing.T) {
	s, _, b, _, cb, _, _ := twoPools(t)
	if _, err := b.List(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	cb.Step(leaseDuration - time.Second)
	s.edit(t, slotLease, func(l *coordinationv1.Lease) { l.Labels["x"] = "y" })
	if _, err := b.List(t.Context(), nil); err != nil {
		t.Fatal(err)
	}
	cb.Step(time.Second)
	if _, err := b.Acquire(t.Context(), slotLease, slotLabels); !errors.Is(err, ErrHeld) {
		t.Fatalf("Acquire one lease duration after the first read of an older version: %v, want ErrHeld", err)
	}
}

// The renew deadline counts from when the last successful write was sent:
// renewals move it, failed ones do not, and the term ends once it passed.
func TestPoolRenewDeadline(t *testing.T) {
	s, _, _, ca, _, term, downs := twoPools(t)
	ca.Step(renewDeadline - time.Millisecond)
	if err := term.Renew(t.Context()); err != nil || !term.Dispatching() {
		t.Fatalf("Renew: %v, dispatching %v", err, term.Dispatching())
	}
	renewedAt := ca.Now()
	if l := s.get(t, slotLease); !l.Spec.RenewTime.Time.Equal(renewedAt) {
		t.Errorf("renewTime %v, want %v", l.Spec.RenewTime, renewedAt)
	}
	s.setDown(true)
	ca.Step(renewDeadline / 2)
	if err := term.Renew(t.Context()); err == nil {
		t.Fatal("Renew succeeded with the API server unreachable")
	}
	if !term.Dispatching() {
		t.Fatal("a failed renewal ended the term before its deadline")
	}
	ca.Step(renewDeadline/2 - time.Millisecond)
	if !term.Dispatching() {
		t.Fatalf("not dispatching %s after the last renewal", ca.Since(renewedAt))
	}
	ca.Step(time.Millisecond)
	if term.Dispatching() {
		t.Fatalf("dispatching %s after the last renewal", ca.Since(renewedAt))
	}
	s.setDown(false)
	if err := term.Renew(t.Context()); !errors.Is(err, ErrTermOver) {
		t.Fatalf("Renew of an ended term: %v, want ErrTermOver", err)
	}
	if got := downs.of(slotLease); len(got) != 1 || !strings.Contains(got[0], "renew deadline") || !strings.Contains(term.Reason(), "renew deadline") {
		t.Errorf("step-downs %q, reason %q", got, term.Reason())
	}
}

// A renewal stuck in flight does not keep the term alive: when it finally
// succeeds, past the deadline, the term stays over.
func TestPoolRenewalStuckInFlight(t *testing.T) {
	s, _, _, ca, _, term, _ := twoPools(t)
	entered, unblock := make(chan struct{}), make(chan struct{})
	s.nextWrite(func(string, *coordinationv1.Lease) {
		close(entered)
		<-unblock
	})
	renewed := make(chan error, 1)
	go func() { renewed <- term.Renew(context.Background()) }()
	<-entered
	ca.Step(renewDeadline)
	if term.Dispatching() {
		t.Fatal("dispatching past the deadline while the renewal hangs")
	}
	close(unblock)
	if err := <-renewed; err != nil {
		t.Fatal(err)
	}
	if term.Dispatching() {
		t.Error("a renewal that succeeded past the deadline began the term again")
	}
}

// Reads end the term the moment they show another holder in a newer
// version: by Renew (its write conflicts), List or Acquire. A stale read of
// an older version does not.
func TestPoolStepDownOnRead(t *testing.T) {
	takeOver := func(t *testing.T, s *leaseServer) {
		s.edit(t, slotLease, func(l *coordinationv1.Lease) { l.Spec.HolderIdentity = ptr.To("b") })
	}
	tests := []struct {
		name string
		read func(t *testing.T, p *Pool, term *Term) error
	}{
		{name: "renew", read: func(t *testing.T, _ *Pool, term *Term) error { return term.Renew(t.Context()) }},
		{name: "list", read: func(t *testing.T, p *Pool, _ *Term) error { _, err := p.List(t.Context(), nil); return err }},
		{name: "acquire", read: func(t *testing.T, p *Pool, _ *Term) error {
			_, err := p.Acquire(t.Context(), slotLease, slotLabels)
			if !errors.Is(err, ErrHeld) {
				return err
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, a, _, _, _, term, downs := twoPools(t)
			takeOver(t, s)
			err := tt.read(t, a, term)
			if tt.name == "renew" {
				if err == nil {
					t.Fatal("a renewal over another holder's record succeeded")
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if term.Dispatching() {
				t.Fatal("still dispatching after a read showed b")
			}
			if got := downs.of(slotLease); len(got) != 1 || !strings.Contains(got[0], "held by b") {
				t.Errorf("step-downs %q", got)
			}
			if h := ptr.Deref(s.get(t, slotLease).Spec.HolderIdentity, ""); h != "b" {
				t.Errorf("holder %q: the old term wrote over the new holder", h)
			}
		})
	}

	t.Run("stale read", func(t *testing.T) {
		s, a, _, _, _, term, downs := twoPools(t)
		// b held the record before a took it: a lagging read serves that.
		old := s.get(t, slotLease)
		old.ResourceVersion = "1"
		old.Spec.HolderIdentity = ptr.To("b")
		if err := term.Renew(t.Context()); err != nil {
			t.Fatal(err)
		}
		s.serveStale(slotLease, old)
		if _, err := a.List(t.Context(), nil); err != nil {
			t.Fatal(err)
		}
		s.serveStale(slotLease, nil)
		if !term.Dispatching() || len(downs.of(slotLease)) != 0 {
			t.Fatal("a stale read of an older version ended the term")
		}
	})
}

// A conflict on renewal whose read shows the record still this replica's
// (someone else changed, say, its labels) is retried once on the version
// read: the term goes on.
func TestPoolRenewRetriesOwnRecord(t *testing.T) {
	s, _, _, ca, _, term, _ := twoPools(t)
	s.edit(t, slotLease, func(l *coordinationv1.Lease) { l.Labels["x"] = "y" })
	ca.Step(time.Second)
	if err := term.Renew(t.Context()); err != nil {
		t.Fatal(err)
	}
	l := s.get(t, slotLease)
	if !term.Dispatching() || !l.Spec.RenewTime.Time.Equal(ca.Now()) || l.Labels["x"] != "y" {
		t.Fatalf("dispatching %v, renewTime %v, labels %v", term.Dispatching(), l.Spec.RenewTime, l.Labels)
	}
}

// Release writes the record free, and another replica takes it at once;
// Release of a term that was lost leaves the new holder alone.
func TestPoolRelease(t *testing.T) {
	t.Run("held", func(t *testing.T) {
		s, a, b, _, _, term, downs := twoPools(t)
		if err := term.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
		if term.Dispatching() || len(downs.of(slotLease)) != 1 {
			t.Fatalf("after Release: dispatching %v, step-downs %q", term.Dispatching(), downs.of(slotLease))
		}
		l := s.get(t, slotLease)
		if ptr.Deref(l.Spec.HolderIdentity, "x") != "" || ptr.Deref(l.Spec.LeaseDurationSeconds, 0) != 1 {
			t.Fatalf("released record: %+v", l.Spec)
		}
		if recs, _ := a.List(t.Context(), nil); len(recs) != 1 || recs[0].Holder != "" || recs[0].Expired {
			t.Fatalf("List after Release = %+v", recs)
		}
		if _, err := b.Acquire(t.Context(), slotLease, slotLabels); err != nil {
			t.Fatalf("Acquire of a released lease: %v", err)
		}
	})
	t.Run("lost", func(t *testing.T) {
		s, _, _, _, _, term, _ := twoPools(t)
		s.edit(t, slotLease, func(l *coordinationv1.Lease) { l.Spec.HolderIdentity = ptr.To("b") })
		if err := term.Release(t.Context()); err == nil {
			t.Fatal("Release of a lost term reported success")
		}
		if h := ptr.Deref(s.get(t, slotLease).Spec.HolderIdentity, ""); h != "b" {
			t.Fatalf("holder %q after the release of a lost term", h)
		}
	})
	t.Run("changed but still ours", func(t *testing.T) {
		s, _, _, _, _, term, _ := twoPools(t)
		s.edit(t, slotLease, func(l *coordinationv1.Lease) { l.Labels["x"] = "y" })
		if err := term.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
		if h := ptr.Deref(s.get(t, slotLease).Spec.HolderIdentity, "x"); h != "" {
			t.Fatalf("holder %q after Release", h)
		}
	})
	t.Run("taken between the read and the write", func(t *testing.T) {
		s, _, _, _, _, term, _ := twoPools(t)
		s.nextWrite(func(string, *coordinationv1.Lease) {
			s.edit(t, slotLease, func(l *coordinationv1.Lease) { l.Spec.HolderIdentity = ptr.To("b") })
		})
		if err := term.Release(t.Context()); err == nil {
			t.Fatal("Release reported success over another holder")
		}
		if h := ptr.Deref(s.get(t, slotLease).Spec.HolderIdentity, ""); h != "b" {
			t.Fatalf("holder %q", h)
		}
	})
	t.Run("an older term of the same pool", func(t *testing.T) {
		s, a, _, _, _, old, _ := twoPools(t)
		// The record is still ours: a new term begins on it, the old ends.
		term, err := a.Acquire(t.Context(), slotLease, slotLabels)
		if err != nil {
			t.Fatal(err)
		}
		if old.Dispatching() || !term.Dispatching() {
			t.Fatalf("old term dispatching %v, new %v", old.Dispatching(), term.Dispatching())
		}
		if err := old.Release(t.Context()); err == nil {
			t.Fatal("the old term released the new one's record")
		}
		if h := ptr.Deref(s.get(t, slotLease).Spec.HolderIdentity, ""); h != "a" || !term.Dispatching() {
			t.Fatalf("holder %q, new term dispatching %v", h, term.Dispatching())
		}
	})
}

// Acquire tells a race it lost (ErrHeld) from an API server that failed
// (not ErrHeld: the caller should log it).
func TestPoolAcquireErrors(t *testing.T) {
	t.Run("create race", func(t *testing.T) {
		s := newLeaseServer()
		c := clocktesting.NewFakeClock(time.Now())
		a := newPool(t, s, "a", c, nil)
		// b creates the record between a's read (not found) and a's create.
		s.nextWrite(func(string, *coordinationv1.Lease) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.rv++
			b := &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: slotLease, Namespace: testNamespace, ResourceVersion: strconv.Itoa(s.rv)},
				Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To("b"), LeaseDurationSeconds: ptr.To[int32](3)},
			}
			if err := s.client.Tracker().Create(leasesResource, b, testNamespace); err != nil {
				t.Error(err)
			}
		})
		if _, err := a.Acquire(t.Context(), slotLease, slotLabels); !errors.Is(err, ErrHeld) {
			t.Fatalf("a create that lost the race: %v, want ErrHeld", err)
		}
		if h := ptr.Deref(s.get(t, slotLease).Spec.HolderIdentity, ""); h != "b" {
			t.Fatalf("holder %q", h)
		}
	})
	t.Run("update race", func(t *testing.T) {
		s, _, b, _, _, term, _ := twoPools(t)
		if err := term.Release(t.Context()); err != nil {
			t.Fatal(err)
		}
		s.nextWrite(func(string, *coordinationv1.Lease) {
			s.edit(t, slotLease, func(l *coordinationv1.Lease) { l.Spec.HolderIdentity = ptr.To("c") })
		})
		if _, err := b.Acquire(t.Context(), slotLease, slotLabels); !errors.Is(err, ErrHeld) {
			t.Fatalf("an update that lost the race: %v, want ErrHeld", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		s := newLeaseServer()
		a := newPool(t, s, "a", clocktesting.NewFakeClock(time.Now()), nil)
		s.setDown(true)
		_, err := a.Acquire(t.Context(), slotLease, slotLabels)
		if err == nil || errors.Is(err, ErrHeld) {
			t.Fatalf("Acquire with the API server down: %v, want an error other than ErrHeld", err)
		}
		if _, err := a.List(t.Context(), nil); err == nil {
			t.Fatal("List with the API server down succeeded")
		}
	})
}
