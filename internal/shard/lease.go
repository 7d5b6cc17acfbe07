package shard

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Leases is what a Replica needs from the library's Lease mechanism, the
// one that leader election holds its Lease with: it holds Lease records of
// one namespace for one identity, any number at once, one Term per record
// held. A Replica holds one for its membership (Acquire, renewed every
// Step) and one per slot (Claim, never renewed: it lasts as long as the
// membership). The mechanism owns every judgement of time on Leases (when
// a record has expired, when a holder must stop), so the rule is written
// once.
type Leases interface {
	// Acquire makes one attempt to start a term on the Lease name,
	// creating the record with labels if it does not exist. It takes the
	// record only if it is free (no holder: released), already names
	// this identity, or has expired: unchanged for its lease duration by
	// this replica's clock, counted from when this replica first read
	// that version of it. It writes with the resourceVersion of the
	// record it read as a precondition, so a stale read can only make it
	// fail. It returns an error wrapping ErrHeld when another holder's
	// lease has not expired, or the write lost a race. The term must be
	// renewed (Term.Renew) within the renew deadline to last.
	Acquire(ctx context.Context, name string, labels map[string]string) (Term, error)
	// Claim makes one attempt to start a term on the Lease name that
	// lasts as long as the term under, a term of these Leases on another
	// record (the ring's membership): it is never renewed, and it is
	// Dispatching while under is, until a read shows the record held by
	// another or it is released. Claim reads the record from the same
	// place List does and takes it if it does not exist (it creates it
	// with labels), is free, already names this identity, or names a
	// holder that is gone: the Lease membership(holder) names (that
	// holder's membership) has not changed for its lease duration by this
	// replica's clock, counted from when this replica first read that
	// version, or it is free, or it has been missing for the lease
	// duration of name's record; and a read of it from the API server
	// itself (not a cache), made after name's record was read, still
	// shows that version. It writes name's record with the
	// resourceVersion it read first as a precondition. So a holder whose
	// membership changed after that read (it renewed, or came back and
	// took the slot again) makes the write fail. It returns an error
	// wrapping ErrHeld when the holder is not gone, or the write lost a
	// race.
	Claim(ctx context.Context, name string, labels map[string]string, under Term, membership func(holder string) string) (Term, error)
	// List reads the Lease records carrying all of labels, from a watch
	// of them where the mechanism has one (no request). It is a read like
	// any other: a term of this identity whose record it shows held by
	// another, in a version newer than the term's own last write, ends
	// there (Term.Dispatching turns false).
	List(ctx context.Context, labels map[string]string) ([]Record, error)
}

// ErrHeld is wrapped by Leases.Acquire and Leases.Claim when another
// holder has the lease.
var ErrHeld = errors.New("shard: the lease is held by another replica")

// A Term is one holding of one Lease, from its acquisition until it is
// lost or released. Its methods are safe for concurrent use.
type Term interface {
	// Dispatching reports whether calls covered by the Lease may start
	// now. It turns false, and stays false, the moment a read (by Renew,
	// Acquire, Claim or List) shows another holder in a newer version of
	// the record, the term is released, or (for a term of Acquire) the
	// renew deadline has passed since the start of the last write that
	// succeeded (the acquisition or a renewal) or (for a term of Claim)
	// the term it was claimed under is not Dispatching. The renew
	// deadline is shorter than the lease duration. It must be cheap: it
	// is asked before each call.
	Dispatching() bool
	// Deadline is when the term ends unless it is renewed first: for a
	// term of Acquire, the renew deadline after the start of its last
	// write that succeeded; for a term of Claim, the Deadline of the term
	// it was claimed under.
	Deadline() time.Time
	// Renew makes one attempt to renew the Lease, writing with the
	// resourceVersion of the term's last write as a precondition. An
	// error means this attempt failed; Dispatching says whether the term
	// survives it. A term of Claim has nothing to renew: Renew writes
	// nothing and says whether it is Dispatching.
	Renew(ctx context.Context) error
	// Relabel makes the term's renewals from the next one on write the
	// record with labels set (added to, or replacing, its own). It writes
	// nothing itself.
	Relabel(labels map[string]string)
	// Release ends the term: Dispatching is false from the call on, and
	// the record is written free (no holder), with the resourceVersion
	// of the term's last write as a precondition, so a record that is no
	// longer this term's is left alone. Call it only once every call
	// started under the term has returned; a term that was lost, or
	// whose calls cannot be waited for, is not released but left to
	// expire.
	Release(ctx context.Context) error
}

// A Record is a Lease as Leases.List read it.
type Record struct {
	Name   string
	Labels map[string]string
	// Holder is the identity holding the Lease, "" when it is free.
	Holder string
	// Expired is true when a holder is named but the record has not
	// changed for its lease duration, by this replica's clock, since this
	// replica first read that version.
	Expired bool
}

// Labels on the Leases of a ring. Each Lease of a ring carries LabelRing
// with the ring's name and LabelRole, RoleSlot or RoleMember; a slot's
// Lease also carries LabelSlot with the slot number. A membership Lease
// carries LabelLeaving ("true") from the replica's first renewal after
// Leave: the others stop counting it in the assignment and take each slot
// as it is released, while its record keeps the slots it still drains its
// own.
const (
	LabelRing    = "kubehandler.io/shard-ring"
	LabelRole    = "kubehandler.io/shard-role"
	LabelSlot    = "kubehandler.io/shard-slot"
	LabelLeaving = "kubehandler.io/shard-leaving"
	RoleSlot     = "slot"
	RoleMember   = "member"
)

// maxRingName keeps a ring's name a valid label value, and its Leases'
// names (the ring's name with at most 24 characters added) valid object
// names.
const maxRingName = validation.LabelValueMaxLength

// ValidateRingName returns an error if name cannot name a ring: it must be
// a valid object name (a DNS-1123 subdomain) and a valid label value, so at
// most 63 characters.
func ValidateRingName(name string) error {
	errs := validation.IsDNS1123Subdomain(name)
	if len(name) > maxRingName {
		errs = append(errs, fmt.Sprintf("must be no more than %d characters", maxRingName))
	}
	if len(errs) > 0 {
		return fmt.Errorf("shard: ring name %q: %v", name, errs)
	}
	return nil
}

// SlotLeaseName is the name of the Lease of slot in the ring named ring:
// "<ring>-<slot>".
func SlotLeaseName(ring string, slot int) string {
	return ring + "-" + strconv.Itoa(slot)
}

// MemberLeaseName is the name of the membership Lease of identity in the
// ring named ring: "<ring>-member-" and 16 hex digits of the FNV-1a hash of
// identity (an identity need not be a valid object name; the Lease's
// holder names it in full).
func MemberLeaseName(ring, identity string) string {
	h := fnv.New64a()
	h.Write([]byte(identity))
	return fmt.Sprintf("%s-member-%016x", ring, h.Sum64())
}

// slotLabels and memberLabels are the labels of a ring's Leases.
func slotLabels(ring string, slot int) map[string]string {
	return map[string]string{LabelRing: ring, LabelRole: RoleSlot, LabelSlot: strconv.Itoa(slot)}
}

func memberLabels(ring string) map[string]string {
	return map[string]string{LabelRing: ring, LabelRole: RoleMember}
}
