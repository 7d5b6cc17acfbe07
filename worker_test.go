package kubehandler_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// WithHandlerTimeout: the call's context has a deadline; a call that
// overruns it is counted as a timeout and retried, even if it returned nil.
func TestHandlerTimeout(t *testing.T) {
	reg, gather := newRegistry()
	q := kubehandler.NewWorkQueue("timeout", kubehandler.WithHandlerTimeout(20*time.Millisecond), fastRetries(), kubehandler.WithMetrics(reg))
	var mu sync.Mutex
	var calls int
	var deadlines []bool
	q.RegisterAddHandler("k", func(ctx context.Context, namespace, name string) error {
		_, hasDeadline := ctx.Deadline()
		mu.Lock()
		calls++
		first := calls == 1
		deadlines = append(deadlines, hasDeadline)
		mu.Unlock()
		if first {
			<-ctx.Done() // overrun, then claim success
		}
		return nil
	})
	q.EnqueueAdd("k", "ns/a")
	kubehandlertest.Start(t, q, 1)
	eventually(t, "retried after the timeout", func() bool { mu.Lock(); defer mu.Unlock(); return calls == 2 })
	eventually(t, "metrics", func() bool {
		g := gather()
		return g.calls("timeout", "k", "add", "timeout") == 1 && g.calls("timeout", "k", "add", "success") == 1
	})
	mu.Lock()
	defer mu.Unlock()
	if !deadlines[0] || !deadlines[1] {
		t.Errorf("calls had deadlines %v, want all true", deadlines)
	}
	if !errors.Is(errors.Join(kubehandler.ErrHandlerTimeout), kubehandler.ErrHandlerTimeout) {
		t.Error("ErrHandlerTimeout must be matchable")
	}
}
