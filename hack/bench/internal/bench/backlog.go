package bench

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BacklogResult is the outcome of Backlog for one Impl.
type BacklogResult struct {
	Live, LiveHandled         int
	LiveP50, LiveP99, LiveMax time.Duration
	// Drained is the time from the start of the informer and the loop until
	// every object of the initial list was handled once.
	Drained time.Duration
}

// Backlog measures what a user's change waits for while a controller works
// through its start-up list: n objects exist when the informer and the loop
// start; every handler call works (sleeps) for work; as soon as the
// informer has synced, live new objects are created at rate per second. It
// reports the latency from each live creation to the first handler call for
// it, and how long the initial list took to drain.
func Backlog(impl Impl, n, live, rate int, work time.Duration) BacklogResult {
	s := newSource()
	for i := range n {
		s.Create(configMap(i, 0))
	}
	informer := newInformer(s)
	initialSeen := make([]atomic.Bool, n)
	liveSeen := make([]atomic.Bool, live)
	created := make([]atomic.Int64, live) // UnixNano of each live creation
	var initialLeft atomic.Int64
	initialLeft.Store(int64(n))
	var liveLeft atomic.Int64
	liveLeft.Store(int64(live))
	var drainedAt atomic.Int64
	var mu sync.Mutex
	var latencies []time.Duration
	handler := func(ctx context.Context, namespace, name string) error {
		now := time.Now().UnixNano()
		if rest, ok := strings.CutPrefix(name, "live-"); ok {
			i, _ := strconv.Atoi(rest)
			if !liveSeen[i].Swap(true) {
				mu.Lock()
				latencies = append(latencies, time.Duration(now-created[i].Load()))
				mu.Unlock()
				liveLeft.Add(-1)
			}
		} else if rest, ok := strings.CutPrefix(name, "cm-"); ok {
			i, _ := strconv.Atoi(rest)
			if !initialSeen[i].Swap(true) && initialLeft.Add(-1) == 0 {
				drainedAt.Store(now)
			}
		}
		time.Sleep(work)
		return nil
	}
	began := time.Now()
	stop := start(impl, informer, handler)
	defer stop()
	waitUntil(informer.HasSynced)

	interval := time.Second / time.Duration(rate)
	liveBegan := time.Now()
	for i := range live {
		if d := time.Until(liveBegan.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		created[i].Store(time.Now().UnixNano())
		s.Create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "live-" + strconv.Itoa(i)}})
	}
	waitUntil(func() bool { return initialLeft.Load() == 0 && liveLeft.Load() == 0 })

	mu.Lock()
	defer mu.Unlock()
	slices.Sort(latencies)
	r := BacklogResult{Live: live, LiveHandled: len(latencies)}
	if len(latencies) > 0 {
		r.LiveP50 = latencies[len(latencies)/2]
		r.LiveP99 = latencies[min(len(latencies)-1, int(0.99*float64(len(latencies))))]
		r.LiveMax = latencies[len(latencies)-1]
	}
	if at := drainedAt.Load(); at != 0 {
		r.Drained = time.Duration(at - began.UnixNano())
	}
	return r
}
