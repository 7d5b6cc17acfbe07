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
// shard.ErrHeld too.
func (l leases) Acquire(ctx context.Context, name string, labels map[string]string) (shard.Term, error) {
	t, err := l.pool.Acquire(ctx, name, labels)
	if err != nil {
		if errors.Is(err, lease.ErrHeld) {
			err = fmt.Errorf("%w (%w)", err, shard.ErrHeld)
		}
		return nil, err // not a nil *lease.Term in a non-nil shard.Term
	}
	return t, nil
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
