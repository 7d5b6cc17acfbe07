package kubehandler

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	clocktesting "k8s.io/utils/clock/testing"
)

func cm(rv string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", ResourceVersion: rv}}
}

// A merged update whose object the informer's store has already replaced is
// not dispatched: the newer event on its way is. If it never comes, the
// deferred update is dispatched at the recheck; if newer events keep coming
// while the store stays ahead, at most maxDefers dispatches in a row are
// deferred.
func TestSupersededDispatchIsDeferred(t *testing.T) {
	for _, tt := range []struct {
		name          string
		storeRV       string
		feed          func(q *workQueue, deferrals func() float64, step func())
		wantCall      string
		wantDeferrals float64
	}{
		{"newer event arrives", "3", func(q *workQueue, deferrals func() float64, step func()) {
			waitFor(t, func() bool { return deferrals() == 1 })
			q.EnqueueUpdate("k", cm("3"))
		}, "3", 1},
		{"newer event never arrives", "3", func(q *workQueue, deferrals func() float64, step func()) {
			waitFor(t, func() bool { return deferrals() == 1 })
			step()
		}, "2", 1},
		{"store stays ahead", "100", func(q *workQueue, deferrals func() float64, step func()) {
			for i := 1; i <= maxDefers; i++ {
				waitFor(t, func() bool { return deferrals() == float64(i) })
				q.EnqueueUpdate("k", cm(fmt.Sprint(i+2)))
			}
		}, fmt.Sprint(maxDefers + 2), maxDefers},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := clocktesting.NewFakeClock(time.Now())
			reg := prometheus.NewRegistry()
			q := newWorkQueue("superseded", []Option{WithClock(clock), WithMetrics(reg)})
			// A deferral requeues the entry after supersededRecheck: the
			// delaying queue counts it in workqueue_retries_total.
			deferrals := func() float64 {
				return testutil.ToFloat64(q.metrics.retries.WithLabelValues("superseded"))
			}
			store := cache.NewStore(cache.MetaNamespaceKeyFunc)
			var mu sync.Mutex
			var calls []string
			record := func(ctx context.Context, _, _ string) error {
				ev, _ := EventFromContext(ctx)
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, ev.Object.(*corev1.ConfigMap).ResourceVersion)
				return nil
			}
			q.setHandlers("k", func(k *kindHandlers) {
				k.handlers[updateEvent] = record
				k.store = store
			})
			// The loop has seen rv 1 and 2, merged; the store is ahead.
			_ = store.Add(cm(tt.storeRV))
			q.EnqueueUpdate("k", cm("1"))
			q.EnqueueUpdate("k", cm("2"))

			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error)
			go func() { done <- q.Run(ctx, 1) }()
			defer func() {
				cancel()
				<-done
			}()
			called := func() int { mu.Lock(); defer mu.Unlock(); return len(calls) }
			tt.feed(q, deferrals, func() { clock.Step(supersededRecheck) })
			waitFor(t, func() bool { return called() == 1 })
			if got := deferrals(); got != tt.wantDeferrals {
				t.Errorf("deferred %v times, want %v", got, tt.wantDeferrals)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(calls) != 1 || calls[0] != tt.wantCall {
				t.Errorf("calls saw rvs %v, want only %s", calls, tt.wantCall)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in time")
		}
		time.Sleep(time.Millisecond)
	}
}

// superseded defers only an add or update whose object the store has
// replaced or dropped, and only while the bound allows.
func TestSuperseded(t *testing.T) {
	store := cache.NewStore(cache.MetaNamespaceKeyFunc)
	_ = store.Add(cm("5"))
	withStore := &kindHandlers{store: store}
	tests := []struct {
		name   string
		k      *kindHandlers
		key    string // the entry's name; "a" is in the store
		typ    eventType
		obj    interface{}
		defers uint8
		want   bool
	}{
		{"store is ahead", withStore, "a", updateEvent, cm("4"), 0, true},
		{"store is ahead, add", withStore, "a", addEvent, cm("4"), 0, true},
		{"object gone from the store", withStore, "gone", updateEvent, cm("4"), 0, true},
		{"up to date", withStore, "a", updateEvent, cm("5"), 0, false},
		{"bound reached", withStore, "a", updateEvent, cm("4"), maxDefers, false},
		{"under the bound", withStore, "a", updateEvent, cm("4"), maxDefers - 1, true},
		{"delete", withStore, "a", deleteEvent, cm("4"), 0, false},
		{"no resourceVersion", withStore, "a", updateEvent, cm(""), 0, false},
		{"no object (a bare key)", withStore, "a", updateEvent, nil, 0, false},
		{"no store (a WorkQueue kind)", &kindHandlers{}, "a", updateEvent, cm("4"), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEntry(Key{Kind: "k", Namespace: "ns", Name: tt.key})
			e.defers = tt.defers
			if got := superseded(tt.k, e, stage{typ: tt.typ, obj: tt.obj}); got != tt.want {
				t.Errorf("superseded = %v, want %v", got, tt.want)
			}
		})
	}
}
