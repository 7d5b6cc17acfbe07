// Package lease holds coordination.k8s.io Leases, one term at a time each,
// and says the moment a holder must stop dispatching: the rule behind
// "never two leaders". Everything in this module that holds a Lease goes
// through it: the root package's WithLeaderElection holds one with a
// Holder, sharding holds one per shard slot (and one per member) with a
// Pool.
//
// # The rule
//
// A term begins with the write that made this replica the holder, and
// ends, once and for good, the first of:
//
//   - a read of the Lease that shows another holder (or none: released).
//     For a Pool the read must show a newer version than the term's last
//     write, so that a stale read cannot end a term;
//   - the renew deadline passing since the last write that succeeded was
//     sent (sent, not answered: the API server may have stored it, and
//     others started counting, at any moment in between), measured on the
//     caller's clock, so a fake clock drives it in tests and a process
//     that froze finds its deadline passed the moment it resumes;
//   - its owner ending it (Holder.Stop, Term.Release).
//
// The renew deadline is shorter than the lease duration, and another
// replica takes a Lease only when it is free, or unchanged for its lease
// duration by the taker's clock since the taker first read that version:
// so the old holder has stopped before the new one begins. One unexported
// type keeps that state and applies the rule for both: a Holder and a Term
// differ only in who reads and writes the Lease.
//
// # Holder: one Lease, over client-go's elector
//
// A Holder campaigns for its Lease with client-go's leader elector
// (tools/leaderelection). The elector does the acquire and renew protocol
// every Kubernetes component uses on a Lease (the record's fields, the
// optimistic renewal, expiry measured locally by each candidate), and a
// Holder keeps it for that, so its Leases mean the same to any other tool
// that reads them. What the elector lacks is what a Holder adds from the
// outside, through the resourcelock.Interface it hands the elector (every
// Get, Create and Update the elector makes goes through the Holder):
//
//   - an early stop: the rule above. The elector would keep renewing (and
//     its caller dispatching) until its own renew loop gives up, a whole
//     renew deadline after the read that showed another holder.
//   - a late release: the elector runs with ReleaseOnCancel off; Stop
//     releases the Lease only when the caller says its calls have drained,
//     and only if the Lease is still this term's, with the resourceVersion
//     of the record it has just read as a precondition.
//
// The elector's own timing (its retries and its renew deadline) runs on the
// real clock; a Holder's deadline runs on the clock it is given, with a
// timer of its own that ends the term when nobody asks.
//
// # Pool: many Leases, driven by the caller
//
// A Pool holds any number of Leases of one namespace for one identity, one
// Term each, with no goroutine and no timer: its caller (a shard Replica's
// Step) acquires, renews, lists and releases when it likes, and asks
// Term.Dispatching before each call; the deadline is checked there. There
// is no elector to reuse for this: it holds one Lease and runs its own
// loop. The Pool writes the Lease fields the elector writes
// (holderIdentity, leaseDurationSeconds, acquireTime and leaseTransitions
// on a change of holder, renewTime) so that both read each other's
// records alike, and every Update carries the resourceVersion read or
// last written as its precondition. What it chose where the shard
// contract is silent:
//
//   - Expiry uses the record's own leaseDurationSeconds (as the elector
//     does), counted from this Pool's first read of that resourceVersion;
//     a record without a duration is expired at its first read.
//   - "Newer" compares resourceVersions as the integers an etcd-backed API
//     server issues; one that does not parse counts as newer whenever it
//     differs, which can end a term or restart an expiry early, never
//     late.
//   - A renewal that conflicts reads the record: another holder ends the
//     term; still this identity's (another client changed, say, a label),
//     it is written once more on the version read. Release does the same,
//     and never frees a record that a newer term of the same Pool holds.
//   - A release writes no holder and a lease duration of one second, as a
//     Holder's does, and is no transition: the next acquisition is.
//   - A new term on a Lease ends the Pool's older term on it.
//
// Package shardleases adapts a Pool to shard.Leases; package lease itself
// knows nothing of sharding.
package lease

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"
)

// Config configures a Holder.
type Config struct {
	// Lock is the Lease, usually a *resourcelock.LeaseLock; its Identity
	// names this replica. The Holder hands the elector a wrapper of it:
	// nothing else may use Lock while the Holder runs.
	Lock resourcelock.Interface
	// Name names the Lease in logs and client-go's leader election metrics.
	Name string
	// LeaseDuration, RenewDeadline and RetryPeriod are client-go's (see
	// leaderelection.LeaderElectionConfig). RenewDeadline is also the
	// Holder's own deadline: a term ends once RenewDeadline has passed since
	// the last renewal that succeeded was sent.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Clock measures the renew deadline and the contact with the API
	// server. Default: the real clock.
	Clock clock.Clock
	// OnStepDown, if set, is called once when the term ends, from the
	// goroutine that found out (the elector's, inside the read of the
	// Lease that showed another holder; the deadline's timer; or a caller of
	// Check), before Done is closed and before the step-down is logged.
	// It must not block: it is where the caller stops taking work and
	// cancels the calls in flight.
	OnStepDown func(reason string)
	// Logger logs the term: acquired, stepped down, released.
	Logger logr.Logger
}

// Holder holds one Lease for one term: from the write that acquires it to
// the step-down. It is one per Lease, and one per term: a caller makes a
// new Holder to stand again after a term ended. A caller holding many
// Leases on its own schedule (shard slots) uses a Pool instead. Its methods are
// safe for concurrent use; Held and Check are cheap enough to be asked
// before every call.
//
// The life of a Holder:
//
//	h, err := lease.New(cfg)
//	h.Start(ctx)                  // campaign, in the background
//	<-h.Acquired()                // or <-h.Done(): it ended before leading
//	for ... { if !h.Check() { break }; start a call }
//	<-h.Done()                    // or the caller's own reason to stop
//	stop taking work, cancel the calls, wait for them
//	h.Stop(drained)               // release the Lease only if drained
type Holder struct {
	cfg      Config
	clock    clock.Clock
	identity string
	lock     *lock
	elector  *leaderelection.LeaderElector
	logger   logr.Logger

	rule     *rule         // the term and its end
	acquired chan struct{} // closed when the term begins
	quit     chan struct{} // closed by Stop: the deadline's timer returns

	cancelElector context.CancelFunc
	electorDone   chan struct{}
	timerDone     chan struct{}
	startOnce     sync.Once
	stopOnce      sync.Once
	released      bool
}

// New returns a Holder of cfg's Lease, checked the way client-go checks an
// elector's configuration. It starts nothing.
func New(cfg Config) (*Holder, error) {
	if cfg.Lock == nil {
		return nil, errors.New("lease: no Lock")
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	h := &Holder{
		cfg:         cfg,
		clock:       cfg.Clock,
		identity:    cfg.Lock.Identity(),
		logger:      cfg.Logger.WithValues("lease", cfg.Name, "identity", cfg.Lock.Identity()),
		acquired:    make(chan struct{}),
		quit:        make(chan struct{}),
		electorDone: make(chan struct{}),
		timerDone:   make(chan struct{}),
	}
	if h.identity == "" {
		return nil, errors.New("lease: the Lock has no identity")
	}
	h.rule = newRule(cfg.Clock, cfg.RenewDeadline, func(reason string) {
		if h.cfg.OnStepDown != nil {
			h.cfg.OnStepDown(reason)
		}
	}, h.logger)
	h.lock = &lock{Interface: cfg.Lock, h: h}
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          h.lock,
		LeaseDuration: cfg.LeaseDuration,
		RenewDeadline: cfg.RenewDeadline,
		RetryPeriod:   cfg.RetryPeriod,
		Callbacks: leaderelection.LeaderCallbacks{
			// The term begins in the lock, at the write that acquired it.
			OnStartedLeading: func(context.Context) {},
			// The elector gave up renewing (its own deadline, on the real
			// clock): the term is over if the Holder did not end it first.
			OnStoppedLeading: func() { h.rule.stepDown("the leader elector stopped renewing the lease") },
		},
		// Stop releases the Lease, once the caller's calls have drained.
		ReleaseOnCancel: false,
		Name:            cfg.Name,
	})
	if err != nil {
		return nil, err
	}
	h.elector = elector
	return h, nil
}

// Start campaigns for the Lease in the background until Stop. ctx gives the
// elector its logger; cancelling it does not stop the campaign (Stop does),
// so that a leader whose Run is cancelled keeps renewing while its calls
// drain and no standby takes over before they returned.
func (h *Holder) Start(ctx context.Context) {
	h.startOnce.Do(func() {
		ctx, h.cancelElector = context.WithCancel(context.WithoutCancel(ctx))
		go func() {
			defer close(h.electorDone)
			h.elector.Run(ctx)
		}()
	})
}

// Acquired is closed when the term begins: the elector's write that made
// this replica the holder succeeded.
func (h *Holder) Acquired() <-chan struct{} { return h.acquired }

// Done is closed when the term ends (see Reason), or when the campaign ended
// before it acquired the Lease.
func (h *Holder) Done() <-chan struct{} { return h.rule.done }

// Reason says why the term ended; "" while it has not.
func (h *Holder) Reason() string { return h.rule.ended() }

// Held reports whether the term is on: acquired, not ended, and renewed
// within the renew deadline. It only reads; Check also ends the term when
// the deadline has passed.
func (h *Holder) Held() bool { return h.rule.held() }

// Check is Held, and ends the term when it finds the renew deadline passed
// (before the deadline's timer does, as after a process froze). Callers ask
// it before each call they start; it must not be called where OnStepDown
// cannot run.
func (h *Holder) Check() bool { return h.rule.check() }

// SinceContact returns how long ago the API server last answered about the
// Lease (a read, even one saying it does not exist yet, or a write), or
// false if it never has: a standby in touch with its Lease is ready to take
// over.
func (h *Holder) SinceContact() (time.Duration, bool) {
	return h.lock.sinceContact()
}

// Stop ends the campaign and waits for the elector to return; the term ends
// too if it had not. Then, if release is true (the caller's calls of the
// term have all returned, and it wants the Lease given up), it releases the
// Lease if it is still this replica's: it writes a record without holder,
// with the resourceVersion of the record it has just read as precondition,
// so a standby takes over within its retry period instead of the lease
// duration. Otherwise the Lease is left to expire. Either way it logs what it
// did, and it reports whether it released the Lease. Stop is idempotent.
func (h *Holder) Stop(ctx context.Context, release bool) bool {
	h.stopOnce.Do(func() {
		h.rule.stepDown("stopped")
		close(h.quit)
		if h.cancelElector != nil {
			h.cancelElector()
			<-h.electorDone
		}
		if h.rule.began() {
			<-h.timerDone
		}
		if !h.rule.began() {
			return // never held: nothing to release
		}
		if !release {
			h.logger.Info("Leaving the lease to expire: the calls of the term did not all return, or it is kept")
			return
		}
		h.released = h.release(ctx)
	})
	return h.released
}

// release gives the Lease up if it is still this replica's. A conflict means
// the Lease changed between the read and the write: read it again.
func (h *Holder) release(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.RenewDeadline)
	defer cancel()
	for {
		r, _, err := h.lock.Get(ctx)
		switch {
		case err != nil:
			h.logger.Error(err, "Leaving the lease to expire: reading it before the release failed")
			return false
		case r.HolderIdentity != h.identity:
			h.logger.Info("Not releasing the lease: it is no longer ours", "holder", r.HolderIdentity)
			return false
		}
		now := metav1.NewTime(h.clock.Now())
		err = h.lock.Interface.Update(ctx, resourcelock.LeaderElectionRecord{
			LeaderTransitions:    r.LeaderTransitions,
			LeaseDurationSeconds: 1,
			RenewTime:            now,
			AcquireTime:          now,
		})
		switch {
		case err == nil:
			h.lock.observe()
			h.logger.Info("Released the lease: every call of the term returned")
			return true
		case apierrors.IsConflict(err) && ctx.Err() == nil:
			continue
		default:
			h.logger.Error(err, "Leaving the lease to expire: the release failed")
			return false
		}
	}
}

// renewed records a write that made or kept this replica the holder, sent
// at sent. The first begins the term.
func (h *Holder) renewed(sent time.Time) {
	// A renewal that succeeded after the term ended (the elector goes on
	// until Stop) keeps standbys waiting while the calls drain; it does not
	// begin a term again.
	if h.rule.renewed(sent) {
		h.logger.Info("Acquired the lease")
		go h.watchDeadline()
		close(h.acquired)
	}
}

// read records a record of the Lease the elector read: a term ends the
// moment it shows another holder.
func (h *Holder) read(r *resourcelock.LeaderElectionRecord) {
	if r.HolderIdentity != h.identity {
		h.rule.heldBy(r.HolderIdentity)
	}
}

// watchDeadline ends the term once RenewDeadline has passed since the last
// renewal, on the Holder's clock. It runs from the term's beginning until
// the term ends or Stop.
func (h *Holder) watchDeadline() {
	defer close(h.timerDone)
	for {
		wait := h.rule.untilDeadline()
		if wait <= 0 {
			h.rule.stepDown(h.rule.deadlineReason())
			return
		}
		t := h.clock.NewTimer(wait)
		select {
		case <-t.C():
		case <-h.rule.done:
			t.Stop()
			return
		case <-h.quit:
			t.Stop()
			return
		}
	}
}

// lock is the Lease as the elector sees it: every call goes through the
// Holder, which learns from it when the term begins, is renewed, or must
// end, and when the API server last answered.
type lock struct {
	resourcelock.Interface
	h           *Holder
	lastContact atomic.Pointer[time.Time]
}

func (l *lock) observe() {
	now := l.h.clock.Now()
	l.lastContact.Store(&now)
}

func (l *lock) sinceContact() (time.Duration, bool) {
	t := l.lastContact.Load()
	if t == nil {
		return 0, false
	}
	return l.h.clock.Since(*t), true
}

func (l *lock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	r, raw, err := l.Interface.Get(ctx)
	switch {
	case err == nil:
		l.observe()
		l.h.read(r)
	case apierrors.IsNotFound(err):
		// An answer too: nobody holds it yet.
		l.observe()
	}
	return r, raw, err
}

func (l *lock) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	sent := l.h.clock.Now()
	err := l.Interface.Create(ctx, r)
	l.wrote(r, sent, err)
	return err
}

func (l *lock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	sent := l.h.clock.Now()
	err := l.Interface.Update(ctx, r)
	l.wrote(r, sent, err)
	return err
}

// wrote records a write of r sent at sent. The renewal counts from when it
// was sent, not when it was answered: the API server may have stored it,
// and standbys started counting, at any moment in between.
func (l *lock) wrote(r resourcelock.LeaderElectionRecord, sent time.Time, err error) {
	if err != nil {
		return
	}
	l.observe()
	if r.HolderIdentity == l.h.identity {
		l.h.renewed(sent)
	}
}
