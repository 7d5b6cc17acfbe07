package kubehandler

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"
	coordinationv1 "k8s.io/client-go/kubernetes/typed/coordination/v1"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/clock"

	"github.com/kubehandler/kubehandler/internal/lease"
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
	// RenewDeadline is how long after the last renewal that succeeded the
	// leader steps down if it could not renew since (10s by default). It
	// must be shorter than LeaseDuration: the difference is the time the
	// old leader's calls have to return, once cancelled, before a standby
	// may start.
	RenewDeadline time.Duration
	// RetryPeriod is the time between attempts to acquire or renew (2s by
	// default).
	RetryPeriod time.Duration
	// KeepLeaseOnCancel keeps the lease when Run's context is cancelled.
	// By default the leader releases it once its calls have returned, so a
	// standby takes over within RetryPeriod instead of LeaseDuration. (A
	// leader that lost its lease releases it too, if it is still its own
	// once the calls returned.)
	KeepLeaseOnCancel bool
}

// Defaults of LeaderElection, as in kube-controller-manager.
const (
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// defaultTimings sets the durations of a Lease that are zero to their
// defaults: leader election's and a shard ring's are the same.
func defaultTimings(lease, renew, retry *time.Duration) {
	for _, d := range []struct {
		field *time.Duration
		def   time.Duration
	}{{lease, DefaultLeaseDuration}, {renew, DefaultRenewDeadline}, {retry, DefaultRetryPeriod}} {
		if *d.field == 0 {
			*d.field = d.def
		}
	}
}

// WithLeaderElection makes replicas of a loop take turns: every replica
// runs its informers and keeps its queue (a warm standby), but only the
// holder of the Lease runs workers. The leader steps down the moment a read
// of the Lease shows another holder or RenewDeadline passes since its last
// renewal: no call starts from then on, the calls in flight have their
// context cancelled, and once they have returned Run returns an error
// wrapping ErrLeaderElectionLost. When Run's context is cancelled, the
// leader stops its workers, waits for its calls, and only then releases the
// Lease, so two replicas never dispatch at once because of a hand-over. The
// package documentation ("Running in production") states the guarantee:
// handlers should return promptly once their context is cancelled, as
// always.
func WithLeaderElection(le LeaderElection) Option {
	return func(o *options) {
		cfg := le
		if cfg.Identity == "" {
			host, _ := os.Hostname()
			cfg.Identity = host + "_" + string(uuid.NewUUID())
		}
		defaultTimings(&cfg.LeaseDuration, &cfg.RenewDeadline, &cfg.RetryPeriod)
		var errs []error
		if cfg.Client == nil {
			errs = append(errs, errors.New("no Client"))
		}
		if cfg.Namespace == "" || cfg.Name == "" {
			errs = append(errs, fmt.Errorf("the Lease needs a namespace and a name, got %q/%q", cfg.Namespace, cfg.Name))
		}
		if _, err := cfg.newHolder(nil, logr.Discard(), nil); err != nil && len(errs) == 0 {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			o.errs = append(o.errs, fmt.Errorf("kubehandler: WithLeaderElection: %w", errors.Join(errs...)))
			return
		}
		o.leaderElection = &cfg
	}
}

// newHolder returns the lease.Holder of le for one Run: the Lease, held
// through client-go's elector, with the step-down rule of package lease.
// onStepDown runs the moment the term ends.
func (le *LeaderElection) newHolder(c clock.Clock, logger logr.Logger, onStepDown func(string)) (*lease.Holder, error) {
	return lease.New(lease.Config{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: le.Namespace, Name: le.Name},
			Client:     le.Client,
			LockConfig: resourcelock.ResourceLockConfig{Identity: le.Identity},
		},
		Name:          le.Namespace + "/" + le.Name,
		LeaseDuration: le.LeaseDuration,
		RenewDeadline: le.RenewDeadline,
		RetryPeriod:   le.RetryPeriod,
		Clock:         c,
		OnStepDown:    onStepDown,
		Logger:        logger,
	})
}
