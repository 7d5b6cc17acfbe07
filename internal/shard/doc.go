// Package shard is the protocol of sharded dispatch (DESIGN promise 10):
// one controller split across replicas by the hash of metadata.uid, with
// ownership in coordination.k8s.io Leases and, where the apiserver has the
// ShardedListAndWatch feature gate (KEP-5866), server-side shard
// selectors. It holds the parts, each usable and tested alone: the slot
// layout (Ring, Set), the assignment of slots to replicas
// (Ring.Rebalance), the hand-over protocol (Replica, over the Leases
// interface, which internal/lease's Pool implements) and the detection of
// server support (Detect). The root package's WithSharding (sharding.go)
// drives a Replica for each Run: its Steps, Begin and End around each call,
// metrics and readiness.
//
// # Slots
//
// A Ring of n = 2^k slots (1 to 4096) cuts the 64-bit FNV-1a hash of
// metadata.uid, as k8s.io/apimachinery/pkg/sharding computes it (the
// function the apiserver evaluates), into n equal ranges: slot i is
// [i*2^64/n, (i+1)*2^64/n), the top k bits of the hash. Bounds are written
// as the apiserver's parser demands: "0x" and 16 hex digits, inclusive
// start, exclusive end, and the last slot ends at "0x10000000000000000".
// Fixed power-of-two ranges keep a replica's selector a short list of
// shardRange terms joined with || (Ring.Selector merges adjacent slots into
// one term) and make every hand-over a whole range moving from one holder
// to another. The assignment below scatters a replica's slots, so merging
// saves less than it would for contiguous ranges: with 64 slots a replica
// of 3 holds 21 slots in about 15 ranges (a selector of about 1 KB), of 8
// holds 8 in 7; contiguous ranges would give one range each, but a join
// would move about half the slots instead of the joiner's share. Ring.Contains is the
// client-side test; it agrees with the selector's Matches, and so with the
// server, exactly. A selector of no slot is an error: the language has no
// "nothing", and an empty selector means everything, so a replica holding
// no slot must not list at all.
//
// Slots follow the UID, not the name: an object deleted and created again
// under the same name has a new UID and may land in another slot, on
// another replica. One call at a time per object (promise 1) holds per
// UID across replicas; the delete of the old object and the add of the new
// one may run at once on two replicas, as they are two objects.
//
// # Assignment
//
// Every replica computes the same target from what it reads, with no
// coordinator: Ring.Rebalance(members, holders) gives each live member
// floor(n/m) or ceil(n/m) slots and moves the fewest slots away from their
// current holders. The members entitled to one slot more are first those
// already holding that many; each member keeps as much of what it holds as
// its share allows; the rest go by rendezvous hashing with bounded loads
// (every (member, slot) pair has a pseudo-random weight; pairs in order of
// decreasing weight give the slot to the member while the slot is free and
// the member below its share). From a balanced ring a member that joins
// takes exactly its share, floor(n/(m+1)) slots, and one that leaves moves
// exactly its own; Ring.Assign (from scratch, with no holders) moves about
// twice as many (16 slots, 4 replicas: a join moves 3 slots against 4.6
// from scratch; 64 slots, 8 replicas: 7 against 10.6; the tests log the
// table for 1 to 16 replicas). The holders are an input because a function
// of the membership alone cannot be both balanced and minimal: with two
// slots and members {A,B}, {A,C} and {B,C}, minimal moves from {A,B} and
// from {A,C} to {A,B,C} force two different answers for {A,B,C}. The
// result also does not change while its moves are carried out (some
// slots released, some taken, in any order), so replicas that observe a
// hand-over at different stages agree; views that still differ (reads are
// stale) cost time, never safety, which rests on the Leases alone.
//
// # Leases
//
// Each slot has its own Lease, "<ring>-<slot>", and each replica a
// membership Lease, "<ring>-member-<16 hex digits of its identity's
// hash>", whose holder is the replica's identity; all carry LabelRing, and
// LabelRole says which kind (slot Leases also carry LabelSlot). A replica
// reads the membership Leases to learn who is alive (held and not expired)
// and the slot Leases to learn who holds what, through a watch (List of
// Leases reads the ring's informer: no request).
//
// Only the membership is renewed. A replica holds each slot under its
// membership term (Leases.Claim): the slot's term has no deadline of its
// own and ends when the membership term does, so a slot's Lease is written
// only when it changes hands: claimed, released, or taken from a holder
// that is gone. At rest a ring writes replicas/RetryPeriod Leases a second
// (1.5 for 3 replicas at the default 2 s, whatever the slot count; the
// first design renewed every slot too, (slots + replicas)/RetryPeriod, 9.5
// for 16 slots) and reads nothing but its watch. Slots still have one
// Lease each rather than one list per replica: exclusive ownership of a
// slot is then the exclusivity of one object, written with one
// compare-and-swap, the argument that makes leader election safe; with
// per-replica lists, two replicas' objects could both claim a slot and
// nothing in the API server would stop it.
//
// The Lease-holding rule is not here: a Replica uses the library's Lease
// mechanism, the one leader election holds its Lease with, through the
// small Leases and Term interfaces (Acquire and Renew for the membership,
// Claim for slots, Release, List for the reads). The mechanism judges all
// time on Leases: expiry as observed on this replica's clock (unchanged
// for the lease duration since first read), and the step-down
// (Dispatching turns false the moment a read shows another holder, or the
// renew deadline passes since the start of the membership's last
// successful write; a slot's term with its membership's).
//
// # Hand-over
//
// A Replica is a state machine its owner drives: Step every retry period
// and whenever a Lease of the ring changes hands or labels (renew the
// membership, or acquire it; drop the slot terms that ended, without
// releasing them; read members and holders; compute the target; close the
// slots that are no longer its own and release each once its calls have
// returned; claim the target's slots that no live member holds, and any
// slot whose record still names this replica from an earlier membership
// term), Begin before each call and End after it. Claims and releases of
// one Step run up to Config.Parallel at once (16 by default): with 64 slots
// and 50 ms a write, a leave of a replica holding all 64 takes 0.4 s, not
// 6.4 s. Begin is true only while the slot's term is Dispatching (so its
// membership's too) and the slot is not being handed over. A joining
// replica gets its share once the holders have seen it join and drained.
// A ring that forms, one where no live member holds a slot (it starts, or
// every holder is gone), is claimed only once a replica's membership is
// Config.FormationDelay old (the root's Sharding.FormationDelay, RetryPeriod by default): replicas started
// together find each other before any claims, and each claims its share
// with one write per slot; without the wait the first claims every slot
// and hands two thirds of them over a moment later (3 replicas, 16 slots:
// 36 slot writes instead of 16, and a first replica that briefly lists
// every object in server-side mode). Once any live member holds a slot the
// ring has formed: later joiners claim what is handed to them at once. A
// replica that Leaves marks its membership leaving (LabelLeaving, written
// with its next renewal: the others stop counting it in the assignment),
// releases each slot as soon as its calls have returned, so the others
// take it over at their next Step, and releases its membership last, once
// no slot and no call is left; a replica that dies or freezes loses its
// slots after the lease duration of its membership.
//
// Why no slot is dispatched by two replicas at once. A replica dispatches
// slot s only under a term of s's Lease, and such a term begins only with a
// write that carries the resourceVersion of the record read as a
// precondition (or creates it), on a record that is free, already the
// replica's own, or held by a holder that is gone. So two terms of one
// slot never begin from one version, and a new term begins only after the
// previous holder stopped:
//   - Free: only Release writes a record free, and a Replica releases a
//     slot only after it has closed it (Begin refuses) and its count of
//     calls in flight for the slot is zero. The old holder's last call has
//     returned before the record is free. A membership is released only
//     when no slot is held and no call is in flight, so the slots of a
//     holder whose membership is free have no call either.
//   - Gone: the taker read the slot's record at version v naming holder H,
//     then found H's membership record at one version m, unchanged for the
//     lease duration L by its clock since its first read of it (or free, or
//     missing for L), and then read H's membership from the API server
//     itself, not a cache, and found m still. Version m was written at or
//     after the start t of H's last membership write that succeeded before
//     that read, and no write of H's membership succeeded between t and
//     the read (it would show). H's membership term, and every slot term
//     under it, stops dispatching at t + renewDeadline; a renewal sent
//     before and answered after that does not start it again. H's last
//     call began before t + renewDeadline and, if calls last at most D,
//     has returned by t + renewDeadline + D, before the taker's write at
//     t + L or later, provided renewDeadline + D (plus the clocks' drift
//     over L) < L. If H came back meanwhile (a new membership term) and
//     claimed s again, it wrote s's record after version v, and the
//     taker's write on v fails. A call that runs longer, such as one in a
//     process frozen mid-call, is the part no lease can prevent (the Lease
//     mechanism's doc states it): its context is cancelled at the
//     step-down, and handlers that write with resourceVersion
//     preconditions make it harmless.
//   - Stale reads only delay: a claim based on a stale record of the slot
//     fails its precondition; an expiry is counted from the first read of
//     a version, so a late read makes it later, and the read from the API
//     server catches a watch that is behind; a read of an older version
//     showing another holder does not end a term.
//
// The simulation test checks this at every event, over minutes of
// simulated time with several seeds: reads stale by up to the lease
// duration, replicas that join, leave, are killed, freeze or lose the API
// server; once settled, that only the memberships are written (none of the
// slots); and it checks that the check fails with unsafe durations (a
// renew deadline past the lease duration, or calls longer than their
// difference) and with a take-over judged on a stale read alone (no read
// from the API server). With a 3 s lease, 2 s renew deadline, 0.5 s retry
// period and reads up to 0.3 s stale it measures a graceful hand-over in
// 0.5 to 1.5 s (the leaver's Step, then the taker's, which must read the
// release) and a killed replica's slots taken in 3 to 4 s when the others
// are healthy; a hand-over within a second at the default 2 s retry period
// needs the others to Step when the Leases change (a watch), not only on
// their timer.
//
// Replicas of one ring must run this protocol alike: a replica of the
// first design judged a slot by its own Lease's renewals and would take
// every slot of this one at once. Move a ring from it with a new ring name,
// or scale it to zero first.
//
// # Server-side shard selectors
//
// A server without the ShardedListAndWatch gate ignores
// ListOptions.ShardSelector and lists everything. Detect asks: it lists a
// page with the selector of the lower half of the hash space and looks for
// objects outside it (ignored) or the selector echoed in
// ListMeta.ShardInfo (honoured); failing both, it compares with a page
// listed without selector, and when that cannot tell (no object in the
// upper half) it answers not honoured, the safe fallback to filtering on
// the client side.
package shard
