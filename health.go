package kubehandler

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// Loop is what Readiness, Liveness, IsLeader and DebugHandler take: an
// EventLoop or a WorkQueue. Both interfaces have its one method, so a value
// of either type is a Loop as it is, with no conversion or type assertion:
//
//	loop := kubehandler.NewEventLoop("deployments")
//	mux.Handle("/readyz", kubehandler.ProbeHandler(kubehandler.Readiness(loop)))
//
// Only loops made by NewEventLoop and NewWorkQueue can be checked; the checks
// of any other Loop fail (IsLeader is false, DebugHandler answers 500).
type Loop interface {
	Run(ctx context.Context, threadiness int) error
}

// Readiness returns the readiness check of loop for a /readyz endpoint (see
// ProbeHandler); its signature is that of controller-runtime's
// healthz.Checker. It passes once Run is running and its caches have synced
// and, with leader election, while the replica leads or is a healthy
// standby: one that has heard from the API server about the lease within the
// lease duration, and so could take over.
func Readiness(loop Loop) func(*http.Request) error {
	q := queueOf(loop)
	return func(*http.Request) error {
		if q == nil {
			return errNotALoop
		}
		return q.readiness()
	}
}

// Liveness returns the liveness check of loop for a /healthz endpoint (see
// ProbeHandler). It fails while a handler call has been running for longer
// than the bound set with WithLivenessTimeout (a stuck worker is worth a
// restart), and passes otherwise, also when the loop is not running.
func Liveness(loop Loop) func(*http.Request) error {
	q := queueOf(loop)
	return func(*http.Request) error {
		if q == nil {
			return errNotALoop
		}
		return q.liveness()
	}
}

// IsLeader reports whether loop is dispatching now: its Run has synced its
// caches and runs workers. With WithLeaderElection, that is while the replica
// holds the Lease. Without leader election there is no Lease and no
// election: IsLeader is then true from the moment the workers start until
// Run stops them, so a single replica counts as its own leader. It is false
// before Run, while Run waits for caches to sync, once Run is stopping, and
// for a Loop this package did not make.
func IsLeader(loop Loop) bool {
	q := queueOf(loop)
	if q == nil {
		return false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active != nil && q.active.phase == phaseDispatching
}

// ProbeHandler serves a health check: 200 and "ok" when check returns nil,
// 503 and the error otherwise.
func ProbeHandler(check func(*http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if err := check(req); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
}

// queueOf returns the workQueue of a loop made by this package, or nil.
func queueOf(loop Loop) *workQueue {
	switch l := loop.(type) {
	case *eventLoop:
		return l.q
	case *workQueue:
		return l
	}
	return nil
}

func (q *workQueue) readiness() error {
	q.mu.Lock()
	r := q.active
	var p phase
	if r != nil {
		p = r.phase
	}
	q.mu.Unlock()
	switch {
	case r == nil || p == phaseEnded:
		return fmt.Errorf("queue %q is not running", q.name)
	case p == phaseSyncing:
		return fmt.Errorf("queue %q is waiting for its caches to sync", q.name)
	case p == phaseDispatching && r.shard != nil:
		if err := r.shard.readiness(); err != nil {
			return fmt.Errorf("queue %q %w", q.name, err)
		}
		return nil
	case p == phaseDispatching:
		return nil
	}
	// A standby: ready while it is in touch with the lease.
	le := q.opts.leaderElection
	since, ok := r.lease.SinceContact()
	switch {
	case !ok:
		return fmt.Errorf("queue %q has not yet reached its lease %s/%s", q.name, le.Namespace, le.Name)
	case since > le.LeaseDuration:
		return fmt.Errorf("queue %q is a standby that has not reached its lease %s/%s for %s",
			q.name, le.Namespace, le.Name, since.Round(time.Millisecond))
	}
	return nil
}

func (q *workQueue) liveness() error {
	bound := q.opts.livenessTimeout
	if bound <= 0 {
		return nil
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	r := q.active
	if r == nil || r.phase == phaseEnded {
		return nil
	}
	now := q.opts.clock.Now()
	for _, s := range r.ready.slots {
		if s.entry != nil {
			if d := now.Sub(s.started); d > bound {
				return fmt.Errorf("queue %q: a call for %s has been running for %s, longer than %s",
					q.name, s.entry.key(), d.Round(time.Millisecond), bound)
			}
		}
	}
	return nil
}
