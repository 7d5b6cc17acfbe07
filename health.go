package kubehandler

import (
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Readiness returns the readiness check of loop, an EventLoop or WorkQueue
// made by this package, for a /readyz endpoint (see ProbeHandler); its
// signature is that of controller-runtime's healthz.Checker. It passes once
// Run is running and its caches have synced and, with leader election, while
// the replica leads or is a healthy standby: one that has heard from the API
// server about the lease within the lease duration, and so could take over.
func Readiness(loop interface{}) func(*http.Request) error {
	q := queueOf(loop)
	return func(*http.Request) error {
		if q == nil {
			return errNotALoop
		}
		return q.readiness()
	}
}

// Liveness returns the liveness check of loop, an EventLoop or WorkQueue
// made by this package, for a /healthz endpoint (see ProbeHandler). It fails
// while a handler call has been running for longer than the bound set with
// WithLivenessTimeout (a stuck worker is worth a restart), and passes
// otherwise, also when the loop is not running.
func Liveness(loop interface{}) func(*http.Request) error {
	q := queueOf(loop)
	return func(*http.Request) error {
		if q == nil {
			return errNotALoop
		}
		return q.liveness()
	}
}

// IsLeader reports whether loop, an EventLoop or WorkQueue made by this
// package, is running workers now: while it leads, or always once its caches
// synced when it has no leader election.
func IsLeader(loop interface{}) bool {
	q := queueOf(loop)
	if q == nil {
		return false
	}
	q.mu.Lock()
	r := q.active
	q.mu.Unlock()
	return r != nil && r.synced.Load() && (q.opts.leaderElection == nil || r.leading.Load())
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

var errNotALoop = errors.New("kubehandler: not an EventLoop or WorkQueue made by kubehandler")

func queueOf(loop interface{}) *workQueue {
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
	q.mu.Unlock()
	switch {
	case r == nil:
		return fmt.Errorf("queue %q is not running", q.name)
	case !r.synced.Load():
		return fmt.Errorf("queue %q is waiting for its caches to sync", q.name)
	case q.opts.leaderElection == nil || r.leading.Load():
		return nil
	}
	le := q.opts.leaderElection
	lease := r.lease
	if lease == nil {
		return fmt.Errorf("queue %q is starting its leader election", q.name)
	}
	since, ok := lease.since()
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
	if r == nil {
		return nil
	}
	now := q.opts.clock.Now()
	for _, s := range r.base.slots {
		if s.entry != nil {
			if d := now.Sub(s.started); d > bound {
				return fmt.Errorf("queue %q: a call for %s has been running for %s, longer than %s",
					q.name, s.entry.key, d.Round(time.Millisecond), bound)
			}
		}
	}
	return nil
}
