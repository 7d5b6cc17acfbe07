package lease

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
)

// ErrHeld is wrapped by Pool.Acquire when another holder has the Lease: its
// record names another holder and has not expired, or the write that would
// have taken it lost a race.
var ErrHeld = errors.New("lease: the lease is held by another holder")

// ErrTermOver is wrapped by Term.Renew when the term has ended: it cannot
// be renewed, only acquired again.
var ErrTermOver = errors.New("lease: the term is over")

// PoolConfig configures a Pool.
type PoolConfig struct {
	// Client reaches the Leases; a kubernetes.Interface's CoordinationV1()
	// is one.
	Client coordinationv1client.LeasesGetter
	// Namespace holds the Pool's Leases.
	Namespace string
	// Identity names this replica in the records it holds; it must differ
	// between replicas.
	Identity string
	// LeaseDuration is written into every record the Pool holds
	// (leaseDurationSeconds): how long others wait, by their clocks, before
	// they take a record that stopped changing. A whole number of seconds,
	// at least one.
	LeaseDuration time.Duration
	// RenewDeadline ends a term once it has passed since the start of the
	// term's last write that succeeded. Shorter than LeaseDuration.
	RenewDeadline time.Duration
	// Clock measures the renew deadline and the expiry of the records read.
	// Default: the real clock.
	Clock clock.PassiveClock
	// OnStepDown, if set, is called once when a term ends (lost, past its
	// deadline, or released), with the Lease's name and why, from the
	// goroutine that found out (a read, or a call of Term.Dispatching,
	// Renew or Release), before the step-down is logged. It must not block.
	OnStepDown func(name, reason string)
	// Logger logs the terms: acquired, stepped down, released.
	Logger logr.Logger
	// Cache, if set, serves the Pool's reads of records from a watch
	// instead of requests: List reads it, and so does Claim's first read.
	// It is a store of the namespace's Leases (a cache.Store of an
	// informer on them, say), kept by its owner, keyed by
	// cache.MetaNamespaceKeyFunc. The reads that decide a take-over
	// (Claim's of a holder's membership) still ask the API server.
	Cache Cache
}

// Cache is what a Pool reads from a watch of its Leases: the part of
// client-go's cache.Store it needs.
type Cache interface {
	List() []interface{}
	GetByKey(key string) (item interface{}, exists bool, err error)
}

// Pool holds any number of Leases of one namespace for one identity, each
// for one term at a time, driven by its caller: there is no goroutine and
// no timer; the caller acquires, renews and reads when it likes (a shard
// Replica's Step does each retry period), and asks Term.Dispatching before
// each call. A term of Acquire ends by the rule a Holder applies: the
// moment a read (by Acquire, Claim, List or Renew) shows another holder in
// a newer version of the record than the term's last write, or the renew
// deadline passes since the start of that write. A term of Claim has no
// deadline of its own: it ends at such a read or when the term it was
// claimed under ends. A Pool's methods, and its Terms', are safe for
// concurrent use.
type Pool struct {
	cfg    PoolConfig
	leases coordinationv1client.LeaseInterface
	logger logr.Logger

	mu       sync.Mutex
	observed map[string]observation // by name: the newest version read
	terms    map[string]*Term       // by name: the newest term
}

// observation is when this replica first read one version of a record.
type observation struct {
	rv     string
	at     time.Time
	labels map[string]string
}

// NewPool returns a Pool of cfg, or an error saying what is wrong with cfg.
// It starts nothing and makes no request.
func NewPool(cfg PoolConfig) (*Pool, error) {
	var errs []error
	if cfg.Client == nil {
		errs = append(errs, errors.New("lease: no Client"))
	}
	if cfg.Namespace == "" {
		errs = append(errs, errors.New("lease: no Namespace"))
	}
	if cfg.Identity == "" {
		errs = append(errs, errors.New("lease: no Identity"))
	}
	if cfg.LeaseDuration < time.Second || cfg.LeaseDuration%time.Second != 0 {
		errs = append(errs, fmt.Errorf("lease: LeaseDuration %s is not a whole number of seconds, at least one", cfg.LeaseDuration))
	}
	if cfg.RenewDeadline <= 0 || cfg.RenewDeadline >= cfg.LeaseDuration {
		errs = append(errs, fmt.Errorf("lease: RenewDeadline %s must be positive and shorter than LeaseDuration %s", cfg.RenewDeadline, cfg.LeaseDuration))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	return &Pool{
		cfg:      cfg,
		leases:   cfg.Client.Leases(cfg.Namespace),
		logger:   cfg.Logger.WithValues("namespace", cfg.Namespace, "identity", cfg.Identity),
		observed: map[string]observation{},
		terms:    map[string]*Term{},
	}, nil
}

// Acquire makes one attempt to start a term on the Lease name: it reads
// the record, creates it with labels if it does not exist, and otherwise
// takes it only if it is free (no holder: released), already names this
// identity, or has expired (see Record.Expired), writing with the
// resourceVersion it read as a precondition. It returns an error wrapping
// ErrHeld when the record is another's and not expired, or the write lost
// a race; any other error is the API server's. The term's renew deadline
// counts from when the write that took the record was sent. A term of this
// Pool already on name ends when the new one begins.
func (p *Pool) Acquire(ctx context.Context, name string, lbls map[string]string) (*Term, error) {
	cur, err := p.leases.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return p.create(ctx, name, lbls, nil)
	case err != nil:
		return nil, fmt.Errorf("lease %s: reading it: %w", name, err)
	}
	expired := p.see(cur)
	if holder := holderOf(cur); holder != "" && holder != p.cfg.Identity && !expired {
		return nil, fmt.Errorf("lease %s held by %s: %w", name, holder, ErrHeld)
	}
	return p.take(ctx, cur, lbls, nil)
}

// Claim makes one attempt to start a term on the Lease name that lasts as
// long as under, a term of this Pool on another Lease: it is never renewed
// (Term.Renew writes nothing), and it ends when under ends, when a read
// shows another holder in a newer version of the record, or when it is
// released. It reads the record (from the Cache, if set) and creates it
// with labels if it does not exist; it takes it if it is free, already
// names this identity, or names a holder that is gone by its membership:
// the record membership(holder) names, read from the Cache, is free, or
// has not changed for its leaseDurationSeconds by this replica's clock
// since this replica first read that version, or has been missing for the
// lease duration of name's record; and a read from the API server made
// after name's record was read (a quorum read, not the cache) shows it
// still so. It writes with the resourceVersion of name's record as first
// read as a precondition. So a holder that renewed its membership, or came
// back and took the record again, after that first read makes the write
// fail. It returns an error wrapping ErrHeld when the holder is not gone,
// or the write lost a race; any other error is the API server's.
//
// Why a holder that is gone has stopped: its membership term dispatches
// only within the renew deadline of the start of its last write that
// succeeded, and every term claimed under it with it; the version this
// replica saw unchanged for the lease duration was written at or after
// that start, and the quorum read shows no later write, so the holder's
// calls began before that start plus the renew deadline.
func (p *Pool) Claim(ctx context.Context, name string, lbls map[string]string, under *Term, membership func(holder string) string) (*Term, error) {
	if under == nil || under.pool != p {
		return nil, fmt.Errorf("lease %s: claimed under no term of this Pool", name)
	}
	cur, found, err := p.read(ctx, name)
	switch {
	case err != nil:
		return nil, fmt.Errorf("lease %s: reading it: %w", name, err)
	case !found:
		return p.create(ctx, name, lbls, under)
	}
	holder := holderOf(cur)
	if holder != "" && holder != p.cfg.Identity {
		if err := p.gone(ctx, membership(holder), cur); err != nil {
			return nil, fmt.Errorf("lease %s held by %s: %w", name, holder, err)
		}
	}
	p.see(cur)
	return p.take(ctx, cur, lbls, under)
}

// read reads the record of name: from the Cache if set, else from the API
// server.
func (p *Pool) read(ctx context.Context, name string) (*coordinationv1.Lease, bool, error) {
	if p.cfg.Cache == nil {
		l, err := p.leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		return l, err == nil, err
	}
	item, exists, err := p.cfg.Cache.GetByKey(p.cfg.Namespace + "/" + name)
	if err != nil || !exists {
		return nil, false, err
	}
	l, ok := item.(*coordinationv1.Lease)
	if !ok {
		return nil, false, fmt.Errorf("the cache holds a %T, not a Lease", item)
	}
	return l, true, nil
}

// gone returns nil when the membership Lease member of slot's holder shows
// the holder gone, as Claim says, and an error wrapping ErrHeld when not.
func (p *Pool) gone(ctx context.Context, member string, slot *coordinationv1.Lease) error {
	seen, found, err := p.read(ctx, member)
	if err != nil {
		return err
	}
	var ok bool
	if found {
		ok = holderOf(seen) == "" || p.see(seen)
	} else {
		duration := time.Duration(ptr.Deref(slot.Spec.LeaseDurationSeconds, 0)) * time.Second
		ok = p.missing(member, duration)
	}
	if !ok {
		return fmt.Errorf("its membership %s has not expired: %w", member, ErrHeld)
	}
	if p.cfg.Cache == nil {
		return nil // read from the API server already, after the slot's record
	}
	// The cache may be behind: only the API server can tell that the
	// version seen is still the newest.
	now, err := p.leases.Get(ctx, member, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if found {
			p.missing(member, 0)
			return fmt.Errorf("its membership %s was deleted: %w", member, ErrHeld)
		}
		return nil
	case err != nil:
		return fmt.Errorf("reading its membership %s: %w", member, err)
	case !found || now.ResourceVersion != seen.ResourceVersion:
		p.see(now)
		return fmt.Errorf("its membership %s changed: %w", member, ErrHeld)
	}
	return nil
}

// missing records a read that did not find the record name and reports
// whether it has been missing for duration, counted from the first such
// read since it was last seen.
func (p *Pool) missing(name string, duration time.Duration) bool {
	now := p.cfg.Clock.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.observed[name]
	if !ok || o.rv != "" {
		o = observation{at: now}
		p.observed[name] = o
	}
	return duration > 0 && !now.Before(o.at.Add(duration))
}

// take writes cur, as read, to name this identity, with its
// resourceVersion as a precondition, and begins the term of the write.
func (p *Pool) take(ctx context.Context, cur *coordinationv1.Lease, lbls map[string]string, under *Term) (*Term, error) {
	name, holder := cur.Name, holderOf(cur)
	next := cur.DeepCopy()
	if next.Labels == nil {
		next.Labels = map[string]string{}
	}
	maps.Copy(next.Labels, lbls)
	sent := p.cfg.Clock.Now()
	p.hold(&next.Spec, sent)
	if holder != p.cfg.Identity {
		next.Spec.AcquireTime = ptr.To(metav1.NewMicroTime(sent))
		next.Spec.LeaseTransitions = ptr.To(ptr.Deref(cur.Spec.LeaseTransitions, 0) + 1)
	}
	written, err := p.leases.Update(ctx, next, metav1.UpdateOptions{})
	switch {
	case apierrors.IsConflict(err):
		return nil, fmt.Errorf("lease %s: changed since it was read: %w", name, ErrHeld)
	case err != nil:
		return nil, fmt.Errorf("lease %s: taking it: %w", name, err)
	}
	return p.begin(written, sent, under), nil
}

// create creates the record of name, held by this identity; a term of
// Claim lasts with under.
func (p *Pool) create(ctx context.Context, name string, lbls map[string]string, under *Term) (*Term, error) {
	sent := p.cfg.Clock.Now()
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.cfg.Namespace, Labels: maps.Clone(lbls)}}
	p.hold(&l.Spec, sent)
	l.Spec.AcquireTime = ptr.To(metav1.NewMicroTime(sent))
	l.Spec.LeaseTransitions = ptr.To[int32](0)
	written, err := p.leases.Create(ctx, l, metav1.CreateOptions{})
	switch {
	case apierrors.IsAlreadyExists(err):
		return nil, fmt.Errorf("lease %s: created by another since it was read: %w", name, ErrHeld)
	case err != nil:
		return nil, fmt.Errorf("lease %s: creating it: %w", name, err)
	}
	return p.begin(written, sent, under), nil
}

// hold makes spec name this identity, renewed at sent.
func (p *Pool) hold(spec *coordinationv1.LeaseSpec, sent time.Time) {
	spec.HolderIdentity = ptr.To(p.cfg.Identity)
	spec.LeaseDurationSeconds = ptr.To(int32(p.cfg.LeaseDuration / time.Second))
	spec.RenewTime = ptr.To(metav1.NewMicroTime(sent))
}

// begin starts the term that the write of written, sent at sent, began;
// a term of Claim lasts with under.
func (p *Pool) begin(written *coordinationv1.Lease, sent time.Time, under *Term) *Term {
	name := written.Name
	t := &Term{pool: p, name: name}
	t.rule = newRule(p.cfg.Clock, p.cfg.RenewDeadline, func(reason string) {
		if p.cfg.OnStepDown != nil {
			p.cfg.OnStepDown(name, reason)
		}
	}, p.logger.WithValues("lease", name))
	if under != nil {
		t.rule.under = under.rule
	}
	t.last.Store(written)
	t.rule.renewed(sent)
	p.mu.Lock()
	p.observed[name] = observation{rv: written.ResourceVersion, at: sent, labels: written.Labels}
	old := p.terms[name]
	p.terms[name] = t
	p.mu.Unlock()
	t.rule.logger.Info("Acquired the lease")
	if old != nil {
		old.rule.stepDown("a new term of the lease began")
	}
	return t
}

// A Record is a Lease as Pool.List read it.
type Record struct {
	// Name and Labels are the Lease's.
	Name   string
	Labels map[string]string
	// Holder is the identity holding the Lease, "" when it is free.
	Holder string
	// Expired is true when a holder is named but the record has not
	// changed for its leaseDurationSeconds, by this replica's clock,
	// since this replica first read that version of it. A record read
	// once is not expired yet, unless it gives no duration.
	Expired bool
}

// List reads the Leases of the Pool's namespace that carry all of lbls,
// sorted by name: from the Cache if set (no request), else with a LIST.
// It is a read like any other: it counts towards the expiry of the
// records, and a term of this Pool whose record it shows held by another,
// in a newer version than the term's last write, ends.
func (p *Pool) List(ctx context.Context, lbls map[string]string) ([]Record, error) {
	sel := labels.SelectorFromSet(lbls)
	items, err := p.list(ctx, sel)
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(items))
	listed := map[string]bool{}
	for _, l := range items {
		listed[l.Name] = true
		out = append(out, Record{Name: l.Name, Labels: l.Labels, Holder: holderOf(l), Expired: p.see(l)})
	}
	// Forget the records the selector no longer finds (deleted): were one
	// to come back, its expiry is counted again from its first read.
	p.mu.Lock()
	for name, o := range p.observed {
		if !listed[name] && p.terms[name] == nil && sel.Matches(labels.Set(o.labels)) {
			delete(p.observed, name)
		}
	}
	p.mu.Unlock()
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// list reads the Leases of the namespace that sel matches: from the Cache
// if set, else with a request.
func (p *Pool) list(ctx context.Context, sel labels.Selector) ([]*coordinationv1.Lease, error) {
	var out []*coordinationv1.Lease
	if p.cfg.Cache == nil {
		list, err := p.leases.List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return nil, fmt.Errorf("listing leases %s: %w", sel, err)
		}
		for i := range list.Items {
			out = append(out, &list.Items[i])
		}
		return out, nil
	}
	for _, item := range p.cfg.Cache.List() {
		if l, ok := item.(*coordinationv1.Lease); ok && l.Namespace == p.cfg.Namespace && sel.Matches(labels.Set(l.Labels)) {
			out = append(out, l)
		}
	}
	return out, nil
}

// see records a read of l: the first read of its version starts the count
// of its expiry, and it ends this Pool's term of l if it shows another
// holder in a version newer than the term's last write. It returns whether
// l has expired.
func (p *Pool) see(l *coordinationv1.Lease) (expired bool) {
	now := p.cfg.Clock.Now()
	holder := holderOf(l)
	p.mu.Lock()
	o, ok := p.observed[l.Name]
	if !ok || newer(l.ResourceVersion, o.rv) {
		o = observation{rv: l.ResourceVersion, at: now, labels: l.Labels}
		p.observed[l.Name] = o
	}
	t := p.terms[l.Name]
	p.mu.Unlock()
	if t != nil && holder != p.cfg.Identity && newer(l.ResourceVersion, t.last.Load().ResourceVersion) {
		t.rule.heldBy(holder)
	}
	duration := time.Duration(ptr.Deref(l.Spec.LeaseDurationSeconds, 0)) * time.Second
	return holder != "" && l.ResourceVersion == o.rv && !now.Before(o.at.Add(duration))
}

// newer reports whether resourceVersion a is newer than b. The API
// conventions make resourceVersions opaque, but every etcd-backed API
// server issues increasing integers, and only an order tells a stale read
// from a new one. When either does not parse, any difference counts as
// newer: a term then ends, or an expiry restarts, on a read it could have
// ignored, which costs time, never safety.
func newer(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	if errA != nil || errB != nil {
		return a != b
	}
	return x > y
}

func holderOf(l *coordinationv1.Lease) string { return ptr.Deref(l.Spec.HolderIdentity, "") }

// Term is one holding of one Lease by a Pool, from the write that acquired
// it until it is lost or released. Its methods are safe for concurrent
// use; Dispatching is cheap enough to be asked before every call.
type Term struct {
	pool *Pool
	name string
	rule *rule // for a term of Claim, with the rule of the term it lasts with as under

	write   sync.Mutex                           // one Renew or Release at a time
	last    atomic.Pointer[coordinationv1.Lease] // the record as the term last wrote it
	relabel atomic.Pointer[map[string]string]    // set by Relabel, written by each renewal
}

// Name returns the name of the term's Lease.
func (t *Term) Name() string { return t.name }

// Dispatching reports whether calls covered by the Lease may start now. It
// turns false, and stays false, the moment a read shows another holder in a
// newer version of the record, or Release is called, or, for a term of
// Acquire, the renew deadline has passed since the start of the term's last
// write that succeeded (the acquisition or a renewal), or, for a term of
// Claim, the term it was claimed under is not Dispatching.
func (t *Term) Dispatching() bool { return t.rule.check() }

// Deadline is when the term ends unless it is renewed first: the renew
// deadline after the start of its last write that succeeded, or for a term
// of Claim the Deadline of the term it was claimed under.
func (t *Term) Deadline() time.Time { return t.rule.deadline() }

// Relabel makes every renewal from the next one on write the record with
// labels set too. It writes nothing itself.
func (t *Term) Relabel(labels map[string]string) {
	l := maps.Clone(labels)
	t.relabel.Store(&l)
}

// Reason says why the term ended; "" while it has not.
func (t *Term) Reason() string { return t.rule.ended() }

// Renew makes one attempt to renew the Lease: it writes the term's last
// record with a new renewTime (and the labels of Relabel), with that
// record's resourceVersion as a precondition; on success the renew
// deadline counts again from when the write was sent. On a conflict it
// reads the record: held by another, the term ends; still this identity's
// (somebody else wrote it, say its labels), it tries once more on the
// version read. An error means this attempt failed (wrapping ErrTermOver
// if the term had ended already); Dispatching says whether the term
// survives it. A term of Claim has nothing to renew: Renew writes nothing
// and fails only once the term has ended.
func (t *Term) Renew(ctx context.Context) error {
	t.write.Lock()
	defer t.write.Unlock()
	if !t.rule.check() {
		return fmt.Errorf("lease %s: %w: %s", t.name, ErrTermOver, t.rule.ended())
	}
	if t.rule.under != nil {
		return nil // a term of Claim lasts with the term it was claimed under
	}
	return t.writeAgain(ctx, t.renew(ctx, t.last.Load()), t.renew, t.rule.heldBy, t.current, "the term ended meanwhile")
}

// writeAgain is the second attempt of a write (renew or release) whose
// first attempt returned err: after a conflict it reads the record again
// and, if it still names this identity and may says the term may still
// write, writes on the version read. A record held by another is told to
// other. Any other error is returned as it is.
func (t *Term) writeAgain(ctx context.Context, err error, write func(context.Context, *coordinationv1.Lease) error,
	other func(holder string), may func() bool, mayNot string) error {
	if !apierrors.IsConflict(err) {
		return err
	}
	cur, getErr := t.pool.leases.Get(ctx, t.name, metav1.GetOptions{})
	if getErr != nil {
		return fmt.Errorf("%w; reading it again: %w", err, getErr)
	}
	t.pool.see(cur)
	if h := holderOf(cur); h != t.pool.cfg.Identity {
		other(h)
		return fmt.Errorf("%w: held by %q now", err, h)
	}
	if !may() {
		return fmt.Errorf("%w: %s", err, mayNot)
	}
	return write(ctx, cur)
}

// renew writes from, renewed, with its resourceVersion as precondition.
func (t *Term) renew(ctx context.Context, from *coordinationv1.Lease) error {
	next := from.DeepCopy()
	if l := t.relabel.Load(); l != nil {
		if next.Labels == nil {
			next.Labels = map[string]string{}
		}
		maps.Copy(next.Labels, *l)
	}
	sent := t.pool.cfg.Clock.Now()
	t.pool.hold(&next.Spec, sent)
	written, err := t.pool.leases.Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("lease %s: renewing it: %w", t.name, err)
	}
	t.wrote(written, sent)
	// A renewal that succeeds after the term ended (a request that hung
	// past the deadline) keeps the record this replica's, but does not
	// begin the term again.
	t.rule.renewed(sent)
	return nil
}

// wrote records the term's write of written, sent at sent.
func (t *Term) wrote(written *coordinationv1.Lease, sent time.Time) {
	t.last.Store(written)
	t.pool.mu.Lock()
	defer t.pool.mu.Unlock()
	if o, ok := t.pool.observed[t.name]; !ok || newer(written.ResourceVersion, o.rv) {
		t.pool.observed[t.name] = observation{rv: written.ResourceVersion, at: sent, labels: written.Labels}
	}
}

// current reports whether t is on and is its Pool's newest term of the
// Lease.
func (t *Term) current() bool {
	t.pool.mu.Lock()
	defer t.pool.mu.Unlock()
	return t.pool.terms[t.name] == t && t.rule.held()
}

// Release ends the term (Dispatching is false from the call on) and writes
// the record free: no holder, a lease duration of one second, with the
// resourceVersion of the term's last write as a precondition, so that
// another replica may take it at once. A record that is no longer this
// term's is left alone: when the write conflicts, Release reads the record
// and tries once more only if it still names this identity and no newer
// term of this Pool holds it. Call it only once every call started under
// the term has returned; a term lost, or whose calls cannot be waited for,
// is left to expire. The error says why the record was not written free;
// the term is over either way.
func (t *Term) Release(ctx context.Context) error {
	t.rule.stepDown("released")
	t.write.Lock()
	defer t.write.Unlock()
	defer t.forget()
	notOurs := func(h string) { t.rule.logger.Info("Not releasing the lease: it is no longer ours", "holder", h) }
	return t.writeAgain(ctx, t.release(ctx, t.last.Load()), t.release, notOurs, t.newest, "a newer term holds it")
}

func (t *Term) release(ctx context.Context, from *coordinationv1.Lease) error {
	next := from.DeepCopy()
	now := metav1.NewMicroTime(t.pool.cfg.Clock.Now())
	next.Spec.HolderIdentity = ptr.To("")
	next.Spec.LeaseDurationSeconds = ptr.To[int32](1)
	next.Spec.RenewTime = &now
	next.Spec.AcquireTime = &now
	written, err := t.pool.leases.Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("lease %s: not released: %w", t.name, err)
	}
	t.last.Store(written)
	t.rule.logger.Info("Released the lease")
	return nil
}

// newest reports whether t is its Pool's newest term of the Lease.
func (t *Term) newest() bool {
	t.pool.mu.Lock()
	defer t.pool.mu.Unlock()
	return t.pool.terms[t.name] == t
}

// forget drops t from its Pool once released.
func (t *Term) forget() {
	t.pool.mu.Lock()
	defer t.pool.mu.Unlock()
	if t.pool.terms[t.name] == t {
		delete(t.pool.terms, t.name)
	}
}
