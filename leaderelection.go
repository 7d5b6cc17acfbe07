package kubehandler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderElection configures WithLeaderElection: a coordination.k8s.io/v1
// Lease that replicas of one controller compete for, through client-go's
// tools/leaderelection.
type LeaderElection struct {
	// Client reaches the Lease, e.g. clientset.CoordinationV1(). Required.
	Client coordinationv1.LeasesGetter
	// Namespace and Name of the Lease. Required.
	Namespace, Name string
	// Identity names this replica in the Lease; it must differ between
	// replicas. Default: the host name and a random suffix.
	Identity string
	// LeaseDuration is how long standbys wait after the last renewal
	// before taking over a lease that was not released (15s by default).
	LeaseDuration time.Duration
	// RenewDeadline is how long the leader keeps trying to renew before
	// it gives up leadership (10s by default). It must be shorter than
	// LeaseDuration: the difference is the time the old leader has to stop
	// its calls before a standby may start.
	RenewDeadline time.Duration
	// RetryPeriod is the time between attempts to acquire or renew (2s by
	// default).
	RetryPeriod time.Duration
	// KeepLeaseOnCancel keeps the lease when Run's context is cancelled.
	// By default the leader releases it once its calls have returned, so a
	// standby takes over within RetryPeriod instead of LeaseDuration.
	KeepLeaseOnCancel bool
}

// Defaults of LeaderElection, as in kube-controller-manager.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// WithLeaderElection makes replicas of a loop take turns: every replica
// runs its informers and keeps its queue (a warm standby), but only the
// holder of the Lease runs workers. When it loses the lease, the leader
// stops its workers at once (their calls' context is cancelled), waits for
// the calls in flight, and Run returns an error wrapping
// ErrLeaderElectionLost. When Run's context is cancelled, the leader stops
// its workers, waits for its calls, and only then releases the lease, so two
// replicas never dispatch at once because of a hand-over. (A leader cut off
// from the API server stops within RenewDeadline, while a standby may start
// after LeaseDuration: handlers should return promptly once their context is
// cancelled, as always.)
func WithLeaderElection(le LeaderElection) Option {
	return func(o *options) {
		cfg := le
		if cfg.Identity == "" {
			host, _ := os.Hostname()
			cfg.Identity = host + "_" + string(uuid.NewUUID())
		}
		if cfg.LeaseDuration == 0 {
			cfg.LeaseDuration = DefaultLeaseDuration
		}
		if cfg.RenewDeadline == 0 {
			cfg.RenewDeadline = DefaultRenewDeadline
		}
		if cfg.RetryPeriod == 0 {
			cfg.RetryPeriod = DefaultRetryPeriod
		}
		var errs []error
		if cfg.Client == nil {
			errs = append(errs, errors.New("no Client"))
		}
		if cfg.Namespace == "" || cfg.Name == "" {
			errs = append(errs, fmt.Errorf("the Lease needs a namespace and a name, got %q/%q", cfg.Namespace, cfg.Name))
		}
		if _, err := cfg.electorConfig(nil, leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {}, OnStoppedLeading: func() {},
		}); err != nil && len(errs) == 0 {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			o.errs = append(o.errs, fmt.Errorf("kubehandler: WithLeaderElection: %w", errors.Join(errs...)))
			return
		}
		o.leaderElection = &cfg
	}
}

// electorConfig returns the client-go configuration for lock and callbacks,
// validated.
func (le *LeaderElection) electorConfig(lock resourcelock.Interface, callbacks leaderelection.LeaderCallbacks) (leaderelection.LeaderElectionConfig, error) {
	if lock == nil {
		lock = &resourcelock.LeaseLock{LockConfig: resourcelock.ResourceLockConfig{Identity: le.Identity}}
	}
	cfg := leaderelection.LeaderElectionConfig{
		Lock:          lock,
		LeaseDuration: le.LeaseDuration,
		RenewDeadline: le.RenewDeadline,
		RetryPeriod:   le.RetryPeriod,
		Callbacks:     callbacks,
		// Released by lead (run.go) itself, after the workers stopped.
		ReleaseOnCancel: !le.KeepLeaseOnCancel,
		Name:            le.Namespace + "/" + le.Name,
	}
	_, err := leaderelection.NewLeaderElector(cfg)
	return cfg, err
}

// observedLock is the Lease lock, remembering when the API server last
// answered about it: a standby that hears from it is a healthy standby.
type observedLock struct {
	resourcelock.Interface
	clock       interface{ Now() time.Time }
	lastContact atomic.Int64 // UnixNano
}

func (l *observedLock) observe(err error) {
	if err == nil {
		l.lastContact.Store(l.clock.Now().UnixNano())
	}
}

func (l *observedLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	r, raw, err := l.Interface.Get(ctx)
	// NotFound is an answer too: nobody leads yet.
	if err == nil || isNotFound(err) {
		l.observe(nil)
	}
	return r, raw, err
}

func (l *observedLock) Create(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Create(ctx, r)
	l.observe(err)
	return err
}

func (l *observedLock) Update(ctx context.Context, r resourcelock.LeaderElectionRecord) error {
	err := l.Interface.Update(ctx, r)
	l.observe(err)
	return err
}

// newObservedLock returns the Lease lock of le.
func newObservedLock(le *LeaderElection, c interface{ Now() time.Time }) *observedLock {
	return &observedLock{
		Interface: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: le.Namespace, Name: le.Name},
			Client:     le.Client,
			LockConfig: resourcelock.ResourceLockConfig{Identity: le.Identity},
		},
		clock: c,
	}
}

// since returns how long ago the API server last answered about the lease,
// or false if it never has.
func (l *observedLock) since() (time.Duration, bool) {
	t := l.lastContact.Load()
	if t == 0 {
		return 0, false
	}
	return l.clock.Now().Sub(time.Unix(0, t)), true
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
