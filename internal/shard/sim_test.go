package shard

import (
	"container/heap"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// The simulation: replicas of one ring, each with its Replica and its own
// memLeases over one memStore, on one fake clock, driven by a queue of
// timed events. Each replica steps every retry period and its workers
// start calls (Begin) of random lengths on the slots it holds; the store
// serves every read stale by a random delay; and during a chaos phase
// replicas join, leave gracefully, are killed, freeze (no step, no call
// start, for up to 2.5 lease durations) or lose the store (every request
// fails, as long). After every event it checks that no slot has two
// replicas that may dispatch it or have a call of it in flight. Then the
// chaos stops and it checks that the ring settles: every slot held by
// exactly one live replica, shares within one slot, every replica Ready.

type simConfig struct {
	slots         int
	leaseDuration time.Duration
	renewDeadline time.Duration
	retryPeriod   time.Duration
	maxStale      time.Duration // reads are served up to this far in the past
	maxCall       time.Duration // calls last up to this long
	chaos         time.Duration // length of the phase with failures
	maxReplicas   int
	trustReads    bool          // take-overs judged on stale reads alone (unsafe)
	parallel      int           // Config.Parallel
	formation     time.Duration // Config.FormationDelay
}

// safeSim respects the rule: renewDeadline + maxCall < leaseDuration.
var safeSim = simConfig{
	slots:         16,
	leaseDuration: 3 * time.Second,
	renewDeadline: 2 * time.Second,
	retryPeriod:   500 * time.Millisecond,
	maxStale:      300 * time.Millisecond,
	maxCall:       600 * time.Millisecond,
	chaos:         60 * time.Second,
	maxReplicas:   6,
}

type simReplica struct {
	id          string
	rep         *Replica
	dead        bool // killed: nothing runs any more
	leaving     bool
	left        bool
	frozenUntil time.Time
	downUntil   time.Time
	calls       []int // by slot, calls in flight as the simulation counts them
	pendingEnds []int // calls that ended while frozen: End is told on resume
}

func (sr *simReplica) frozen(now time.Time) bool { return now.Before(sr.frozenUntil) }

type simEvent struct {
	at  time.Time
	seq int
	fn  func()
}

type eventQueue []simEvent

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(simEvent)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// handOver follows the slots of a replica that left or was killed until
// others dispatch them all.
type handOver struct {
	kind  string
	from  string
	at    time.Time
	slots Set
	took  time.Duration // 0 until done
}

type sim struct {
	t     *testing.T
	cfg   simConfig
	seed  uint64
	rng   *rand.Rand
	clock *clocktesting.FakeClock
	store *memStore
	ring  Ring

	replicas []*simReplica
	queue    eventQueue
	seq      int
	named    int

	// What was seen.
	overlaps   []string
	calls      int
	refused    int
	moves      int      // times a slot's dispatcher changed from one replica to another
	dispatcher []string // by slot, the last replica seen dispatching it
	handOvers  []*handOver
	perturbed  []string

	stopAtOverlap bool // end the run at the first overlap
}

func newSim(t *testing.T, cfg simConfig, seed uint64) *sim {
	ring, err := NewRing(cfg.slots)
	if err != nil {
		t.Fatal(err)
	}
	c := clocktesting.NewFakeClock(simStart)
	return &sim{
		t: t, cfg: cfg, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eed)), clock: c,
		store: newMemStore(c), ring: ring, dispatcher: make([]string, cfg.slots),
	}
}

func (s *sim) now() time.Time { return s.clock.Now() }

func (s *sim) after(d time.Duration, fn func()) {
	s.seq++
	heap.Push(&s.queue, simEvent{at: s.now().Add(d), seq: s.seq, fn: fn})
}

// staleness is how stale a read of name by replica id is served now: a
// pseudo-random duration in [0, maxStale] that depends only on the seed,
// the reader, the record and the time, so that it is the same in every run
// whatever order a Step's parallel writes take.
func (s *sim) staleness(id, name string) time.Duration {
	h := fnv.New64a()
	fmt.Fprintf(h, "%d/%s/%s/%d", s.seed, id, name, s.now().UnixNano())
	return time.Duration(h.Sum64() % uint64(s.cfg.maxStale+1))
}

// between returns a random duration in [lo, hi].
func (s *sim) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)+1))
}

func (s *sim) addReplica() *simReplica {
	id := fmt.Sprintf("replica-%d", s.named)
	s.named++
	sr := &simReplica{id: id, calls: make([]int, s.cfg.slots)}
	leases := newMemLeases(id, s.store, s.clock, s.cfg.leaseDuration, s.cfg.renewDeadline)
	leases.stale = func(name string) time.Duration { return s.staleness(id, name) }
	leases.down = func() bool { return s.now().Before(sr.downUntil) }
	leases.trustReads = s.cfg.trustReads
	rep, err := NewReplica(Config{Ring: s.ring, Name: "sim", Identity: id, Leases: leases, Parallel: s.cfg.parallel,
		FormationDelay: s.cfg.formation, Clock: s.clock})
	if err != nil {
		s.t.Fatal(err)
	}
	sr.rep = rep
	s.replicas = append(s.replicas, sr)
	s.after(s.between(0, s.cfg.retryPeriod), func() { s.step(sr, true) })
	s.after(s.between(0, 20*time.Millisecond), func() { s.work(sr) })
	return sr
}

// step runs a Step of sr; periodic steps schedule the next one.
func (s *sim) step(sr *simReplica, periodic bool) {
	if sr.dead || sr.left {
		return
	}
	if sr.frozen(s.now()) {
		if periodic {
			s.after(sr.frozenUntil.Sub(s.now()), func() { s.step(sr, true) })
		}
		return
	}
	for _, slot := range sr.pendingEnds {
		sr.rep.End(slot)
	}
	sr.pendingEnds = nil
	_ = sr.rep.Step(s.t.Context()) // failures are part of the game
	if sr.leaving && sr.rep.Left() {
		sr.left = true
		return
	}
	if periodic {
		s.after(s.between(s.cfg.retryPeriod*9/10, s.cfg.retryPeriod*11/10), func() { s.step(sr, true) })
	}
}

// work is a worker of sr: it tries to start a call, mostly on a slot sr
// holds, sometimes on any slot.
func (s *sim) work(sr *simReplica) {
	if sr.dead || sr.left {
		return
	}
	if sr.frozen(s.now()) {
		s.after(sr.frozenUntil.Sub(s.now()), func() { s.work(sr) })
		return
	}
	slot := s.rng.IntN(s.cfg.slots)
	if held := sr.rep.Held().Slots(); len(held) > 0 && s.rng.IntN(5) > 0 {
		slot = held[s.rng.IntN(len(held))]
	}
	if sr.rep.Begin(slot) {
		s.calls++
		sr.calls[slot]++
		s.after(s.between(time.Millisecond, s.cfg.maxCall), func() { s.end(sr, slot) })
	} else {
		s.refused++
	}
	s.after(s.between(10*time.Millisecond, 50*time.Millisecond), func() { s.work(sr) })
}

func (s *sim) end(sr *simReplica, slot int) {
	if sr.dead {
		return
	}
	sr.calls[slot]--
	if sr.frozen(s.now()) {
		sr.pendingEnds = append(sr.pendingEnds, slot)
		return
	}
	if sr.rep.End(slot) {
		s.after(s.between(0, 5*time.Millisecond), func() { s.step(sr, false) })
	}
}

// running are the replicas that should end up holding slots.
func (s *sim) running() []*simReplica {
	var out []*simReplica
	for _, sr := range s.replicas {
		if !sr.dead && !sr.leaving {
			out = append(out, sr)
		}
	}
	return out
}

// perturb makes one random failure or change of membership.
func (s *sim) perturb() {
	running := s.running()
	now := s.now()
	pick := func() *simReplica { return running[s.rng.IntN(len(running))] }
	action := s.rng.IntN(5)
	if len(running) < 3 && s.rng.IntN(2) == 0 {
		action = 0 // keep the ring populated
	}
	switch action {
	case 0:
		if len(running) < s.cfg.maxReplicas {
			sr := s.addReplica()
			s.perturbed = append(s.perturbed, "join "+sr.id)
		}
	case 1, 2:
		if len(running) > 1 {
			sr := pick()
			s.handOvers = append(s.handOvers, &handOver{from: sr.id, at: now, slots: sr.rep.Held()})
			kind := "leave"
			if action == 1 {
				sr.leaving = true
				sr.rep.Leave()
			} else {
				kind = "kill"
				sr.dead = true
				clear(sr.calls) // the process is gone, and its calls with it
			}
			s.handOvers[len(s.handOvers)-1].kind = kind
			s.perturbed = append(s.perturbed, kind+" "+sr.id)
		}
	case 3:
		sr := pick()
		d := s.between(s.cfg.leaseDuration*3/10, s.cfg.leaseDuration*25/10)
		sr.frozenUntil = now.Add(d)
		s.perturbed = append(s.perturbed, fmt.Sprintf("freeze %s %v", sr.id, d))
	case 4:
		sr := pick()
		d := s.between(s.cfg.leaseDuration*3/10, s.cfg.leaseDuration*25/10)
		sr.downUntil = now.Add(d)
		s.perturbed = append(s.perturbed, fmt.Sprintf("cut %s off %v", sr.id, d))
	}
}

// check looks for a slot that two replicas may dispatch or have calls of,
// follows hand-overs, and reports whether the ring is settled.
func (s *sim) check(calm bool) (settled bool) {
	now := s.now()
	held := make([]Set, len(s.replicas))
	for i, sr := range s.replicas {
		if !sr.dead && !sr.left {
			held[i] = sr.rep.Held()
		}
	}
	for slot := range s.cfg.slots {
		active := 0
		for i, sr := range s.replicas {
			if !sr.dead && (held[i].Has(slot) || sr.calls[slot] > 0) {
				active++
			}
		}
		if active > 1 && len(s.overlaps) < 10 {
			var who []string
			for i, sr := range s.replicas {
				if !sr.dead && (held[i].Has(slot) || sr.calls[slot] > 0) {
					who = append(who, fmt.Sprintf("%s (may dispatch %t, calls %d)", sr.id, held[i].Has(slot), sr.calls[slot]))
				}
			}
			s.overlaps = append(s.overlaps, fmt.Sprintf("at %v slot %d: %s", now.Sub(simStart), slot, strings.Join(who, ", ")))
		}
		for i, sr := range s.replicas {
			if held[i].Has(slot) {
				if d := s.dispatcher[slot]; d != "" && d != sr.id {
					s.moves++
				}
				s.dispatcher[slot] = sr.id
			}
		}
	}
	for _, h := range s.handOvers {
		if h.took > 0 {
			continue
		}
		var others Set
		for i, sr := range s.replicas {
			if sr.id != h.from {
				others = others.Union(held[i])
			}
		}
		if others.Intersect(h.slots) == h.slots {
			h.took = max(now.Sub(h.at), time.Nanosecond)
		}
	}

	if !calm {
		return false
	}
	running := s.running()
	var union Set
	total := 0
	for i, sr := range s.replicas {
		if sr.dead || sr.leaving {
			continue
		}
		if !sr.rep.Ready() || sr.frozen(now) || now.Before(sr.downUntil) {
			return false
		}
		n := held[i].Len()
		if n < s.cfg.slots/len(running) || n > (s.cfg.slots+len(running)-1)/len(running) {
			return false
		}
		union = union.Union(held[i])
		total += n
	}
	return total == s.cfg.slots && union == s.ring.All()
}

// simResult is what one run saw.
type simResult struct {
	overlaps  []string
	settled   bool
	settle    time.Duration // from the end of the last failure to settled
	calls     int
	refused   int
	moves     int
	handOvers []*handOver
	perturbed []string
	replicas  int
	// At rest (the last two lease durations, settled): how long, and the
	// writes of slot and membership records in that time.
	rest                       time.Duration
	restSlots, restMemberships int
}

// run runs the simulation: chaos, then calm until settled for a while or
// until the time runs out.
func (s *sim) run() simResult {
	start := s.now()
	for range 3 {
		s.addReplica()
	}
	var calmFrom time.Time // when the last failure ends
	var perturbAt func()
	perturbAt = func() {
		if s.now().Sub(start) >= s.cfg.chaos {
			return
		}
		s.perturb()
		for _, sr := range s.replicas {
			calmFrom = latest(calmFrom, sr.frozenUntil, sr.downUntil, s.now())
		}
		s.after(s.between(2*time.Second, 6*time.Second), perturbAt)
	}
	s.after(5*time.Second, perturbAt)

	deadline := start.Add(s.cfg.chaos + 3*s.cfg.leaseDuration + time.Minute)
	var settledSince time.Time
	var settledWrites map[string]int
	for s.queue.Len() > 0 {
		e := heap.Pop(&s.queue).(simEvent)
		if e.at.After(deadline) {
			break
		}
		s.clock.SetTime(e.at)
		e.fn()
		calm := s.now().Sub(start) >= s.cfg.chaos && !s.now().Before(calmFrom)
		settled := s.check(calm)
		if s.stopAtOverlap && len(s.overlaps) > 0 {
			return s.result(false, 0)
		}
		switch {
		case !calm || !settled:
			settledSince = time.Time{}
		case settledSince.IsZero():
			settledSince, settledWrites = s.now(), s.store.written()
		case s.now().Sub(settledSince) >= 2*s.cfg.leaseDuration:
			// Settled and stayed so for two lease durations: done.
			res := s.result(true, settledSince.Sub(calmFrom))
			now := s.store.written()
			res.rest = s.now().Sub(settledSince)
			res.restSlots = now[RoleSlot] - settledWrites[RoleSlot]
			res.restMemberships = now[RoleMember] - settledWrites[RoleMember]
			return res
		}
	}
	return s.result(false, 0)
}

func (s *sim) result(settled bool, settle time.Duration) simResult {
	return simResult{
		overlaps: s.overlaps, settled: settled, settle: settle,
		calls: s.calls, refused: s.refused, moves: s.moves,
		handOvers: s.handOvers, perturbed: s.perturbed, replicas: len(s.running()),
	}
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

var simStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var simSeeds = []uint64{1, 2, 3, 4, 5, 6, 7, 8}

func TestSimulationNeverDispatchesASlotTwice(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*simConfig)
		seeds  []uint64
	}{
		{"16 slots", func(*simConfig) {}, simSeeds},
		{"64 slots", func(c *simConfig) { c.slots = 64 }, simSeeds[:4]},
		{"reads stale by up to the lease duration", func(c *simConfig) { c.maxStale = c.leaseDuration }, simSeeds[:4]},
		{"one write at a time", func(c *simConfig) { c.parallel = 1 }, simSeeds[:2]},
		{"a formation delay of a retry period", func(c *simConfig) { c.formation = c.retryPeriod }, simSeeds[:4]},
	}
	for _, tt := range tests {
		for _, seed := range tt.seeds {
			t.Run(fmt.Sprintf("%s/seed=%d", tt.name, seed), func(t *testing.T) {
				cfg := safeSim
				tt.modify(&cfg)
				res := newSim(t, cfg, seed).run()
				if len(res.overlaps) > 0 {
					t.Errorf("a slot was dispatched by two replicas at once:\n%s\nafter: %s",
						strings.Join(res.overlaps, "\n"), strings.Join(res.perturbed, "; "))
				}
				if !res.settled {
					t.Errorf("the ring did not settle after the failures stopped (%s)", strings.Join(res.perturbed, "; "))
				}
				if res.calls == 0 {
					t.Errorf("no call was ever dispatched")
				}
				// At rest only the memberships are written, once a retry
				// period each (the periods are jittered by 10%).
				if res.restSlots != 0 {
					t.Errorf("%d slot Lease writes in %v at rest, want none", res.restSlots, res.rest)
				}
				if limit := float64(res.replicas) * (res.rest.Seconds()/(cfg.retryPeriod.Seconds()*0.9) + 1); float64(res.restMemberships) > limit {
					t.Errorf("%d membership writes in %v at rest by %d replicas, want at most %.0f", res.restMemberships, res.rest, res.replicas, limit)
				}
				var leaves, kills []string
				for _, h := range res.handOvers {
					switch {
					case h.took == 0 || h.slots.Len() == 0:
					case h.kind == "leave":
						leaves = append(leaves, h.took.Round(time.Millisecond).String())
					default:
						kills = append(kills, h.took.Round(time.Millisecond).String())
					}
				}
				t.Logf("%d calls, %d refused, %d slot moves, %d replicas at the end, settled %v after the last failure; at rest %d membership and %d slot writes in %v; hand-over after leave: %v, after kill: %v; events: %s",
					res.calls, res.refused, res.moves, res.replicas, res.settle.Round(time.Millisecond), res.restMemberships, res.restSlots, res.rest, leaves, kills, strings.Join(res.perturbed, "; "))
			})
		}
	}
}

// TestSimulationIsDeterministic: one seed, one history.
func TestSimulationIsDeterministic(t *testing.T) {
	a := newSim(t, safeSim, 3).run()
	b := newSim(t, safeSim, 3).run()
	if !slices.Equal(a.perturbed, b.perturbed) || a.calls != b.calls || a.moves != b.moves || a.settle != b.settle {
		t.Errorf("two runs of seed 3 differ: %+v vs %+v", a, b)
	}
}

// TestSimulationCatchesUnsafeDurations shows that the check can fail: when
// a holder may keep dispatching past the moment others may take its slot,
// the simulation finds two replicas on one slot.
func TestSimulationCatchesUnsafeDurations(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*simConfig)
	}{
		{"renew deadline past the lease duration", func(c *simConfig) { c.renewDeadline = c.leaseDuration + 2*time.Second }},
		{"calls longer than lease duration minus renew deadline", func(c *simConfig) { c.maxCall = 3 * time.Second }},
		{"take-over judged on a stale read of the membership", func(c *simConfig) {
			c.trustReads = true
			c.maxStale = c.leaseDuration
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := safeSim
			tt.modify(&cfg)
			for _, seed := range simSeeds {
				s := newSim(t, cfg, seed)
				s.stopAtOverlap = true
				if res := s.run(); len(res.overlaps) > 0 {
					t.Logf("seed %d: %s", seed, res.overlaps[0])
					return
				}
			}
			t.Errorf("no seed of %d found an overlap with unsafe durations: the check cannot fail", len(simSeeds))
		})
	}
}
