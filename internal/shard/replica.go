package shard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"k8s.io/utils/clock"
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
	// Parallel bounds the slot Leases a Step writes at once (claims and
	// releases); 0 means DefaultParallel. A hand-over moves many slots in
	// one Step, and Step must end well within the renew deadline.
	Parallel int
	// FormationDelay is how long a replica waits, from the acquisition
	// of its membership, before it claims a slot of a ring that is
	// forming: one where no live member holds a slot (it starts, or
	// every holder is gone). Replicas started together (a Deployment's)
	// then find each other first and each claims its share, rather than
	// the first claiming every slot and handing most of them over a
	// moment later (with server-side shard selectors, after listing
	// every object). Once a live member holds a slot, a replica claims
	// its share at once. 0 claims at once always.
	FormationDelay time.Duration
	// Clock measures FormationDelay; nil means the real clock.
	Clock clock.PassiveClock
}

// DefaultParallel is the number of slot Leases a Step writes at once when
// Config.Parallel is 0: with 64 slots and 50 ms a write, a replica that
// joins a ring of one takes its 32 slots in two rounds, 100 ms.
const DefaultParallel = 16

// A Replica is one replica's part in a ring: the hand-over state machine
// that decides, slot by slot, when this replica may dispatch. It starts no
// goroutine but those a Step waits for: its owner calls Step every retry
// period (and may call it sooner, say when End reports a drained slot or a
// Lease of the ring changed hands, and at FormingUntil), asks Begin before
// each call and tells End after it. The Leases mechanism judges time on
// Leases; the Replica reads its clock only for Config.FormationDelay.
// Begin, End and the accessors are safe for concurrent use with each other
// and with Step; Step runs one at a time.
type Replica struct {
	cfg  Config
	step sync.Mutex // one Step at a time

	mu       sync.Mutex
	member   Term      // this replica's membership; nil until acquired
	joined   time.Time // when member was acquired
	forming  time.Time // while the ring forms: when this replica may claim (zero: it may)
	terms    []Term    // by slot: the term held, nil if none
	draining Set       // held slots closed for dispatch, to be released once drained
	inFlight []int     // by slot: calls begun and not yet ended, of any term
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
	if cfg.Parallel < 0 {
		errs = append(errs, fmt.Errorf("shard: Parallel %d is negative", cfg.Parallel))
	}
	if cfg.FormationDelay < 0 {
		errs = append(errs, fmt.Errorf("shard: FormationDelay %s is negative", cfg.FormationDelay))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if cfg.Parallel == 0 {
		cfg.Parallel = DefaultParallel
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	n := cfg.Ring.Slots()
	return &Replica{cfg: cfg, terms: make([]Term, n), inFlight: make([]int, n)}, nil
}

// Begin reports whether a call for an object of slot may start now, and if
// so counts it in flight: the caller must call End(slot) when it returns.
// It is true only while this replica holds the slot's Lease, the term
// allows dispatching (Term.Dispatching: the membership it was claimed
// under is still on), and the slot is not being handed over.
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

// Step makes one round of the protocol. First the membership: renew it, or
// acquire it when there is none; it is the one Lease written at rest, and
// every slot's term lasts as long as it. Then drop the slot terms that
// ended (their membership ended, or a read showed another holder), without
// releasing them; read the members and the slots' holders (List: from the
// watch, no request); compute the target (Rebalance); close the slots that
// are no longer this replica's and release those whose calls have all
// returned; and claim the target's slots that no live member holds. Slot
// Leases are written only there, when they change hands, at most
// Config.Parallel at once. Once Leave was called, it releases every
// drained slot instead, and the membership once no slot is held and no
// call is in flight. The error joins what failed; the state stays
// consistent and the next Step tries again.
func (r *Replica) Step(ctx context.Context) error {
	r.step.Lock()
	defer r.step.Unlock()
	var errs []error
	member, err := r.renewMembership(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	r.dropEnded()

	r.mu.Lock()
	leaving := r.leaving
	r.mu.Unlock()
	if leaving {
		return errors.Join(append(errs, r.stepLeaving(ctx, member)...)...)
	}

	isMember := member != nil && member.Dispatching()
	live, holders, orphans, err := r.read(ctx, isMember)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	r.dropEnded() // a read may have shown a slot taken
	var target Set
	if isMember {
		target = r.cfg.Ring.Rebalance(live, holders).Of(r.cfg.Identity)
	}
	r.mu.Lock()
	r.target, r.members, r.synced = target, live, true
	r.forming = time.Time{} // formation sets it again, for a member that waits
	// Close what is no longer this replica's: no call starts from here on.
	for slot := range r.terms {
		if r.terms[slot] != nil && !target.Has(slot) {
			r.draining = r.draining.Add(slot)
		}
	}
	r.mu.Unlock()
	errs = append(errs, r.releaseDrained(ctx)...)
	if !isMember {
		return errors.Join(errs...)
	}

	// Claim what is this replica's, unless a live member holds it: that
	// one hands it over once it computes the same target; or, while the
	// ring forms, it is too soon (Config.FormationDelay). A record that
	// names this replica without a term (one that ended with an earlier
	// membership) is its own in the others' eyes: claim it again even
	// outside the target, so that it can be released.
	waiting := r.formation(holders)
	var claims []int
	for slot := range r.terms {
		if r.term(slot) != nil {
			continue
		}
		if orphans.Has(slot) || (holders[slot] == "" && target.Has(slot) && !waiting) {
			claims = append(claims, slot)
		}
	}
	errs = append(errs, r.parallel(claims, func(slot int) error {
		t, err := r.cfg.Leases.Claim(ctx, SlotLeaseName(r.cfg.Name, slot), slotLabels(r.cfg.Name, slot), member, r.memberLease)
		if err != nil {
			if errors.Is(err, ErrHeld) {
				return nil
			}
			return fmt.Errorf("claiming slot %d: %w", slot, err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.terms[slot] = t
		if !target.Has(slot) {
			r.draining = r.draining.Add(slot)
		}
		return nil
	})...)
	return errors.Join(errs...)
}

// formation reports whether this replica must not claim yet because the
// ring is forming (no live member, this one included, holds a slot) and
// its membership is younger than Config.FormationDelay; FormingUntil says
// until when.
func (r *Replica) formation(holders []string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cfg.FormationDelay == 0 || slices.ContainsFunc(holders, func(h string) bool { return h != "" }) {
		return false
	}
	if until := r.joined.Add(r.cfg.FormationDelay); r.cfg.Clock.Now().Before(until) {
		r.forming = until
		return true
	}
	return false
}

// FormingUntil returns, when the last Step claimed nothing because the
// ring is forming (Config.FormationDelay), the time from which a Step
// claims: its owner Steps then.
func (r *Replica) FormingUntil() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.forming, !r.forming.IsZero()
}

// dropEnded drops the terms that ended (their membership did, or a read
// showed the slot taken): they are left to expire with the membership,
// never released.
func (r *Replica) dropEnded() {
	for slot := range r.terms {
		if term := r.term(slot); term != nil && !term.Dispatching() {
			r.drop(slot)
		}
	}
}

// memberLease is the name of the membership Lease of the holder identity.
func (r *Replica) memberLease(holder string) string { return MemberLeaseName(r.cfg.Name, holder) }

// renewMembership renews this replica's membership, or acquires it when
// there is none (or it ended), and returns it.
func (r *Replica) renewMembership(ctx context.Context) (Term, error) {
	r.mu.Lock()
	member, leaving := r.member, r.leaving
	r.mu.Unlock()
	if member != nil && member.Dispatching() {
		if err := member.Renew(ctx); err != nil {
			err = fmt.Errorf("renewing the membership: %w", err)
			if member.Dispatching() {
				return member, err
			}
			return nil, err
		}
		return member, nil
	}
	var t Term
	var err error
	if !leaving { // a replica that leaves does not join again
		t, err = r.cfg.Leases.Acquire(ctx, MemberLeaseName(r.cfg.Name, r.cfg.Identity), memberLabels(r.cfg.Name))
		if err != nil {
			err = fmt.Errorf("acquiring the membership: %w", err)
		}
	}
	r.mu.Lock()
	r.member = t
	if t != nil {
		r.joined = r.cfg.Clock.Now()
	}
	r.mu.Unlock()
	return t, err
}

// stepLeaving is Step after Leave: it releases every slot whose calls have
// returned, and then, when no slot is held and no call of any is in
// flight, the membership, which kept the slots this replica's until then.
func (r *Replica) stepLeaving(ctx context.Context, member Term) []error {
	r.mu.Lock()
	// Including a slot claimed by a Step that ran as Leave was called.
	for slot, t := range r.terms {
		if t != nil {
			r.draining = r.draining.Add(slot)
		}
	}
	r.mu.Unlock()
	errs := r.releaseDrained(ctx)
	r.mu.Lock()
	idle := !slices.ContainsFunc(r.terms, func(t Term) bool { return t != nil }) &&
		!slices.ContainsFunc(r.inFlight, func(n int) bool { return n > 0 })
	r.mu.Unlock()
	if idle && member != nil {
		if err := member.Release(ctx); err != nil {
			errs = append(errs, fmt.Errorf("releasing the membership: %w", err))
		}
		member = nil
	}
	r.mu.Lock()
	if member == nil {
		r.member = nil
	}
	r.left = idle && r.member == nil
	r.mu.Unlock()
	return errs
}

// read lists the ring's live members and the holder of each slot, as every
// replica sees them, so that all compute the same target: a member is
// alive while its membership record is held and has not expired, and live
// (it counts in the assignment) while alive and not leaving; this replica
// counts as one only while its membership term lasts. A slot's holder
// counts while it is alive (or it is this replica, which knows better than
// a stale read what it holds). The orphans are the
// slots whose record names this replica, a member, while it holds no term
// of them.
func (r *Replica) read(ctx context.Context, isMember bool) (live []string, holders []string, orphans Set, err error) {
	recs, err := r.cfg.Leases.List(ctx, memberLabels(r.cfg.Name))
	if err != nil {
		return nil, nil, Set{}, fmt.Errorf("listing the members: %w", err)
	}
	var alive []string
	for _, rec := range recs {
		if rec.Holder != "" && !rec.Expired && rec.Holder != r.cfg.Identity && rec.Name == r.memberLease(rec.Holder) {
			alive = append(alive, rec.Holder)
			if rec.Labels[LabelLeaving] == "" {
				live = append(live, rec.Holder)
			}
		}
	}
	if isMember {
		live = append(live, r.cfg.Identity)
	}
	slices.Sort(live)
	live = slices.Compact(live)
	slices.Sort(alive)

	recs, err = r.cfg.Leases.List(ctx, map[string]string{LabelRing: r.cfg.Name, LabelRole: RoleSlot})
	if err != nil {
		return nil, nil, Set{}, fmt.Errorf("listing the slots: %w", err)
	}
	holders = make([]string, len(r.terms))
	for _, rec := range recs {
		slot, err := strconv.Atoi(rec.Labels[LabelSlot])
		if err != nil || slot < 0 || slot >= len(holders) || rec.Name != SlotLeaseName(r.cfg.Name, slot) {
			continue // not a slot of this ring's layout
		}
		if _, ok := slices.BinarySearch(alive, rec.Holder); ok || (rec.Holder == r.cfg.Identity && isMember) {
			holders[slot] = rec.Holder
		}
	}
	// What this replica holds, it knows better than a stale read.
	for slot := range holders {
		switch {
		case r.term(slot) != nil:
			holders[slot] = r.cfg.Identity
		case holders[slot] == r.cfg.Identity:
			orphans = orphans.Add(slot)
		}
	}
	return live, holders, orphans, nil
}

// releaseDrained releases the closed slots that have no call in flight.
func (r *Replica) releaseDrained(ctx context.Context) []error {
	return r.parallel(r.drained(), func(slot int) error {
		err := r.term(slot).Release(ctx)
		r.drop(slot)
		if err != nil {
			return fmt.Errorf("releasing slot %d: %w", slot, err)
		}
		return nil
	})
}

// parallel runs write for each slot, at most Config.Parallel at once, and
// returns the errors in the order of slots.
func (r *Replica) parallel(slots []int, write func(slot int) error) []error {
	if len(slots) == 0 {
		return nil
	}
	errs := make([]error, len(slots))
	if r.cfg.Parallel == 1 || len(slots) == 1 {
		for i, slot := range slots {
			errs[i] = write(slot)
		}
	} else {
		var wg sync.WaitGroup
		sem := make(chan struct{}, r.cfg.Parallel)
		for i, slot := range slots {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				errs[i] = write(slot)
			})
		}
		wg.Wait()
	}
	return slices.DeleteFunc(errs, func(err error) bool { return err == nil })
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
// the following Steps release each slot whose calls have returned, so the
// other replicas take them over at once rather than after the lease
// duration, and then the membership. Left reports when it is done.
func (r *Replica) Leave() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.leaving && r.member != nil {
		r.member.Relabel(map[string]string{LabelLeaving: "true"})
	}
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

// Draining returns the slots closed for dispatch and not yet released:
// handed over, waiting for their calls to return.
func (r *Replica) Draining() Set {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.draining
}

// Membership returns this replica's membership term, nil while it has none.
// Every slot's term ends with it, at its Deadline unless it is renewed.
func (r *Replica) Membership() Term {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.member
}
