package lease

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
)

// rule is the state of one term of one Lease and the rule that ends it: a
// term begins with the first write that made this replica the holder, and
// ends, once and for good, the moment a read shows another holder, the
// renew deadline passes since the start of the last write that succeeded
// (on the given clock), or its owner ends it. A Holder and every Term of a
// Pool have one; they differ only in who does the reads and the writes.
type rule struct {
	clock         clock.PassiveClock
	renewDeadline time.Duration
	// onStepDown is the caller's hook: it runs once, when a term that began
	// ends, after Held turned false and before done is closed.
	onStepDown func(reason string)
	logger     logr.Logger

	// under, if set, is the rule of the term this one lasts with (a Pool's
	// term of Claim): this term has no deadline of its own and ends when
	// that one does.
	under *rule

	lastRenew atomic.Pointer[time.Time] // start of the last write that succeeded; nil before the term
	stepped   atomic.Bool
	once      sync.Once     // guards the step-down
	reason    string        // why the term ended; set before done is closed
	done      chan struct{} // closed when the term ends
}

func newRule(c clock.PassiveClock, renewDeadline time.Duration, onStepDown func(string), logger logr.Logger) *rule {
	return &rule{clock: c, renewDeadline: renewDeadline, onStepDown: onStepDown, logger: logger, done: make(chan struct{})}
}

// began reports whether the term began: a write made this replica the
// holder.
func (r *rule) began() bool { return r.lastRenew.Load() != nil }

// renewed records a write that made or kept this replica the holder, sent
// at sent, and reports whether it began the term. A write that succeeds
// after the term ended does not begin it again.
func (r *rule) renewed(sent time.Time) (first bool) {
	if r.stepped.Load() {
		return false
	}
	first = r.lastRenew.Load() == nil
	r.lastRenew.Store(&sent)
	return first
}

// heldBy records a read of the Lease that shows holder ("" when released)
// where this replica was expected: a term that began ends there.
func (r *rule) heldBy(holder string) {
	if !r.began() {
		return
	}
	if holder == "" {
		holder = "nobody (released)"
	}
	r.stepDown("the lease is held by " + holder)
}

// held reports whether the term is on: begun, not ended, and renewed
// within the renew deadline. It only reads.
func (r *rule) held() bool {
	if r.stepped.Load() {
		return false
	}
	last := r.lastRenew.Load()
	if r.under != nil {
		return last != nil && r.under.held()
	}
	return last != nil && r.clock.Since(*last) < r.renewDeadline
}

// check is held, and ends the term when it finds the renew deadline passed.
func (r *rule) check() bool {
	if r.held() {
		return true
	}
	if r.began() {
		if r.under != nil {
			r.under.check()
			r.stepDown("the term it was claimed under ended: " + r.under.ended())
		} else {
			r.stepDown(r.deadlineReason())
		}
	}
	return false
}

// deadline is when the term ends unless it is renewed first: the renew
// deadline after its last write that succeeded, or its under's deadline.
// The zero time before the term began.
func (r *rule) deadline() time.Time {
	if r.under != nil {
		return r.under.deadline()
	}
	last := r.lastRenew.Load()
	if last == nil {
		return time.Time{}
	}
	return last.Add(r.renewDeadline)
}

// untilDeadline returns how long the term has before the renew deadline
// passes; the term must have begun.
func (r *rule) untilDeadline() time.Duration {
	return r.renewDeadline - r.clock.Since(*r.lastRenew.Load())
}

func (r *rule) deadlineReason() string {
	return fmt.Sprintf("the lease was not renewed within the renew deadline (%s)", r.renewDeadline)
}

// stepDown ends the term, once: onStepDown first (the caller stops taking
// work), then done, then the log.
func (r *rule) stepDown(reason string) {
	r.once.Do(func() {
		r.stepped.Store(true)
		term := r.began()
		if term && r.onStepDown != nil {
			r.onStepDown(reason)
		}
		r.reason = reason
		close(r.done)
		if term {
			r.logger.Info("Stepping down: no new calls", "reason", reason)
		}
	})
}

// ended returns why the term ended, "" while it has not.
func (r *rule) ended() string {
	select {
	case <-r.done:
		return r.reason
	default:
		return ""
	}
}
