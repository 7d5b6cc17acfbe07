package shard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
)

// Config configures a Replica.
type Config struct {
	// Ring is the slot layout; every replica of a ring must use the same.
	Ring Ring
	// Name is the ring's name (see ValidateRingName): it names and labels
	// the ring's Leases.
	Name string
	// Identity names this replica; it must differ between replicas.
	Identity string
	// Leases holds this replica's Leases, in the ring's namespace.
	Leases Leases
}

// A Replica is one replica's part in a ring: the hand-over state machine
// that decides, slot by slot, when this replica may dispatch. It starts no
// goroutine and reads no clock itself: its owner calls Step every retry
// period (and may call it sooner, say when End reports a drained slot),
// asks Begin before each call and tells End after it; the Leases
// mechanism judges time. Begin, End and the accessors are safe for
// concurrent use with each other and with Step; Step runs one at a time.
type Replica struct {
	cfg  Config
	step sync.Mutex // one Step at a time

	mu       sync.Mutex
	member   Term   // this replica's membership; nil until acquired
	terms    []Term // by slot: the term held, nil if none
	draining Set    // held slots closed for dispatch, to be released once drained
	inFlight []int  // by slot: calls begun and not yet ended, of any term
	target   Set
	members  []string
	synced   bool // target was computed from a successful read
	leaving  bool
	left     bool
}

// NewReplica returns the Replica of cfg.Identity in the ring cfg.Name.
func NewReplica(cfg Config) (*Replica, error) {
	var errs []error
	if err := ValidateRingName(cfg.Name); err != nil {
		errs = append(errs, err)
	}
	if cfg.Identity == "" {
		errs = append(errs, errors.New("shard: no Identity"))
	}
	if cfg.Leases == nil {
		errs = append(errs, errors.New("shard: no Leases"))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	n := cfg.Ring.Slots()
	return &Replica{cfg: cfg, terms: make([]Term, n), inFlight: make([]int, n)}, nil
}

// Begin reports whether a call for an object of slot may start now, and if
// so counts it in flight: the caller must call End(slot) when it returns.
// It is true only while this replica holds the slot's Lease, the term
// allows dispatching (Term.Dispatching), and the slot is not being handed
// over.
func (r *Replica) Begin(slot int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.mayDispatch(slot) {
		return false
	}
	r.inFlight[slot]++
	return true
}

// mayDispatch is Begin without the count. r.mu is held.
func (r *Replica) mayDispatch(slot int) bool {
	if slot < 0 || slot >= len(r.terms) || r.terms[slot] == nil || r.leaving || r.draining.Has(slot) {
		return false
	}
	return r.terms[slot].Dispatching()
}

// End ends a call that Begin(slot) allowed. It returns true when that was
// the last call of a slot being handed over: a Step now releases it, sooner
// than the next retry period would.
func (r *Replica) End(slot int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slot < 0 || slot >= len(r.inFlight) || r.inFlight[slot] == 0 {
		return false // an End without a Begin: ignore
	}
	r.inFlight[slot]--
	return r.inFlight[slot] == 0 && r.draining.Has(slot)
}

// Step makes one round of the protocol: renew every Lease held (dropping
// the terms that were lost, without releasing them), renew this replica's
// membership, read the members and the slots' holders, compute the target
// (Rebalance), close the slots that are no longer this replica's and
// release those whose calls have all returned, and try to acquire the
// target's slots that nobody alive holds. Once Leave was called, it
// releases the membership and every drained slot instead. The error joins
// what failed; the state stays consistent and the next Step tries again.
func (r *Replica) Step(ctx context.Context) error {
	r.step.Lock()
	defer r.step.Unlock()
	var errs []error
	n := len(r.terms)

	// Renewals first: they keep what is held.
	for slot := range n {
		if term := r.term(slot); term != nil {
			if term.Dispatching() {
				if err := term.Renew(ctx); err != nil {
					errs = append(errs, fmt.Errorf("renewing slot %d: %w", slot, err))
				}
			}
			if !term.Dispatching() {
				r.drop(slot) // lost: left to expire, never released
			}
		}
	}

	r.mu.Lock()
	leaving, member := r.leaving, r.member
	if leaving {
		// Including a slot acquired by a Step that ran as Leave was called.
		for slot, t := range r.terms {
			if t != nil {
				r.draining = r.draining.Add(slot)
			}
		}
	}
	r.mu.Unlock()
	if leaving {
		if member != nil {
			if err := member.Release(ctx); err != nil {
				errs = append(errs, fmt.Errorf("releasing the membership: %w", err))
			}
			r.mu.Lock()
			r.member = nil
			r.mu.Unlock()
		}
		errs = append(errs, r.releaseDrained(ctx)...)
		r.mu.Lock()
		r.left = !slices.ContainsFunc(r.terms, func(t Term) bool { return t != nil })
		r.mu.Unlock()
		return errors.Join(errs...)
	}

	if member != nil && member.Dispatching() {
		if err := member.Renew(ctx); err != nil {
			errs = append(errs, fmt.Errorf("renewing the membership: %w", err))
		}
	}
	if member == nil || !member.Dispatching() {
		t, err := r.cfg.Leases.Acquire(ctx, MemberLeaseName(r.cfg.Name, r.cfg.Identity), memberLabels(r.cfg.Name))
		if err != nil {
			errs = append(errs, fmt.Errorf("acquiring the membership: %w", err))
		}
		member = t
		r.mu.Lock()
		r.member = t
		r.mu.Unlock()
	}
	isMember := member != nil && member.Dispatching()

	live, holders, err := r.read(ctx, isMember)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	var target Set
	if isMember {
		target = r.cfg.Ring.Rebalance(live, holders).Of(r.cfg.Identity)
	}
	r.mu.Lock()
	r.target, r.members, r.synced = target, live, true
	// Close what is no longer this replica's: no call starts from here on.
	for slot := range n {
		if r.terms[slot] != nil && !target.Has(slot) {
			r.draining = r.draining.Add(slot)
		}
	}
	r.mu.Unlock()
	errs = append(errs, r.releaseDrained(ctx)...)

	// Take what is this replica's, unless a live member holds it: that
	// one hands it over once it computes the same target.
	for _, slot := range target.Slots() {
		if r.term(slot) != nil {
			continue
		}
		if h := holders[slot]; h != "" && h != r.cfg.Identity && slices.Contains(live, h) {
			continue
		}
		t, err := r.cfg.Leases.Acquire(ctx, SlotLeaseName(r.cfg.Name, slot), slotLabels(r.cfg.Name, slot))
		if err != nil {
			if !errors.Is(err, ErrHeld) {
				errs = append(errs, fmt.Errorf("acquiring slot %d: %w", slot, err))
			}
			continue
		}
		r.mu.Lock()
		r.terms[slot] = t
		r.mu.Unlock()
	}
	return errors.Join(errs...)
}

// read lists the ring's live members and the holder of each slot (none for
// an expired record), as every replica sees them, so that all compute the
// same target: this replica counts as a member only while its membership
// term lasts.
func (r *Replica) read(ctx context.Context, isMember bool) (live []string, holders []string, err error) {
	recs, err := r.cfg.Leases.List(ctx, memberLabels(r.cfg.Name))
	if err != nil {
		return nil, nil, fmt.Errorf("listing the members: %w", err)
	}
	for _, rec := range recs {
		if rec.Holder != "" && !rec.Expired && rec.Holder != r.cfg.Identity {
			live = append(live, rec.Holder)
		}
	}
	if isMember {
		live = append(live, r.cfg.Identity)
	}
	slices.Sort(live)
	live = slices.Compact(live)

	recs, err = r.cfg.Leases.List(ctx, map[string]string{LabelRing: r.cfg.Name, LabelRole: RoleSlot})
	if err != nil {
		return nil, nil, fmt.Errorf("listing the slots: %w", err)
	}
	holders = make([]string, len(r.terms))
	for _, rec := range recs {
		slot, err := strconv.Atoi(rec.Labels[LabelSlot])
		if err != nil || slot < 0 || slot >= len(holders) || rec.Name != SlotLeaseName(r.cfg.Name, slot) {
			continue // not a slot of this ring's layout
		}
		if !rec.Expired {
			holders[slot] = rec.Holder
		}
	}
	// What this replica holds, it knows better than a stale read. A
	// record that names it without a term (one that lapsed) stays its,
	// as the others see it, until it expires: it may acquire it again.
	for slot := range holders {
		if r.term(slot) != nil {
			holders[slot] = r.cfg.Identity
		}
	}
	return live, holders, nil
}

// releaseDrained releases the closed slots that have no call in flight.
func (r *Replica) releaseDrained(ctx context.Context) []error {
	var errs []error
	for _, slot := range r.drained() {
		if err := r.term(slot).Release(ctx); err != nil {
			errs = append(errs, fmt.Errorf("releasing slot %d: %w", slot, err))
		}
		r.drop(slot)
	}
	return errs
}

// drained returns the closed slots with no call in flight.
func (r *Replica) drained() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for _, slot := range r.draining.Slots() {
		if r.inFlight[slot] == 0 {
			out = append(out, slot)
		}
	}
	return out
}

func (r *Replica) term(slot int) Term {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.terms[slot]
}

// drop forgets the term of slot.
func (r *Replica) drop(slot int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.terms[slot] = nil
	r.draining = r.draining.Remove(slot)
}

// Leave starts a graceful exit: from now on Begin refuses every call, and
// the following Steps release the membership and then each slot whose
// calls have returned, so the other replicas take them over at once
// rather than after the lease duration. Left reports when it is done.
func (r *Replica) Leave() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.leaving = true
	for slot, t := range r.terms {
		if t != nil {
			r.draining = r.draining.Add(slot)
		}
	}
}

// Left reports whether, after Leave, every Lease of this replica has been
// released or dropped.
func (r *Replica) Left() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.left
}

// Held returns the slots this replica may dispatch now.
func (r *Replica) Held() Set {
	r.mu.Lock()
	defer r.mu.Unlock()
	var s Set
	for slot := range r.terms {
		if r.mayDispatch(slot) {
			s = s.Add(slot)
		}
	}
	return s
}

// Terms returns, by slot, the term under which this replica may dispatch
// the slot now (what Held says), nil for the others. A slot whose term
// differs from the one an earlier call returned was lost or closed and
// taken again in between: what was dropped meanwhile is its owner's to
// list again.
func (r *Replica) Terms() []Term {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Term, len(r.terms))
	for slot, t := range r.terms {
		if r.mayDispatch(slot) {
			out[slot] = t
		}
	}
	return out
}

// Target returns the slots the last Step computed as this replica's.
func (r *Replica) Target() Set {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.target
}

// Members returns the live members the last Step read, sorted.
func (r *Replica) Members() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.members)
}

// Ready reports whether this replica holds its share: it is a member, a
// Step has read the ring, and it may dispatch exactly its target (which is
// empty for a spare, a replica beyond the slot count).
func (r *Replica) Ready() bool {
	held := r.Held()
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.synced && !r.leaving && r.member != nil && r.member.Dispatching() && held == r.target
}

// InFlight returns the number of calls in flight for slot.
func (r *Replica) InFlight(slot int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slot < 0 || slot >= len(r.inFlight) {
		return 0
	}
	return r.inFlight[slot]
}
