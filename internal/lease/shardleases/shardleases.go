// Package shardleases gives a lease.Pool to internal/shard: it is the
// Pool as a shard.Leases, with the Pool's ErrHeld also read as shard's. It
// lives apart so that package lease, the lower layer, knows nothing of
// sharding, and package shard nothing of the Lease API: the root package
// passes New(pool) as shard.Config.Leases.
package shardleases

import (
	"context"
	"errors"
	"fmt"

	"github.com/kubehandler/kubehandler/internal/lease"
	"github.com/kubehandler/kubehandler/internal/shard"
)

// New returns pool as the Leases of a shard Replica.
func New(pool *lease.Pool) shard.Leases { return leases{pool} }

type leases struct{ pool *lease.Pool }

var (
	_ shard.Leases = leases{}
	_ shard.Term   = (*lease.Term)(nil)
)

// Acquire is Pool.Acquire; an error wrapping lease.ErrHeld wraps
// shard.ErrHeld too, here and in Claim.
func (l leases) Acquire(ctx context.Context, name string, labels map[string]string) (shard.Term, error) {
	t, err := l.pool.Acquire(ctx, name, labels)
	if err != nil {
		return nil, asShardErr(err) // not a nil *lease.Term in a non-nil shard.Term
	}
	return t, nil
}

// Claim is Pool.Claim, under a term of the same Pool.
func (l leases) Claim(ctx context.Context, name string, labels map[string]string, under shard.Term, membership func(string) string) (shard.Term, error) {
	parent, ok := under.(*lease.Term)
	if !ok {
		return nil, fmt.Errorf("lease %s: claimed under a %T, not a term of this Pool", name, under)
	}
	t, err := l.pool.Claim(ctx, name, labels, parent, membership)
	if err != nil {
		return nil, asShardErr(err)
	}
	return t, nil
}

// asShardErr makes an error wrapping lease.ErrHeld wrap shard.ErrHeld too.
func asShardErr(err error) error {
	if errors.Is(err, lease.ErrHeld) {
		return fmt.Errorf("%w (%w)", err, shard.ErrHeld)
	}
	return err
}

// List is Pool.List, its records as shard's.
func (l leases) List(ctx context.Context, labels map[string]string) ([]shard.Record, error) {
	recs, err := l.pool.List(ctx, labels)
	if err != nil {
		return nil, err
	}
	out := make([]shard.Record, len(recs))
	for i, r := range recs {
		out[i] = shard.Record{Name: r.Name, Labels: r.Labels, Holder: r.Holder, Expired: r.Expired}
	}
	return out, nil
}
