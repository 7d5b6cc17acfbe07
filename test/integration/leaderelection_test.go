package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
	"github.com/kubehandler/kubehandler/kubelabtest"
)

// Short lease timings, so that tests of expiry take seconds.
const (
	testLeaseDuration = 4 * time.Second
	testRenewDeadline = 3 * time.Second
	testRetryPeriod   = 200 * time.Millisecond
)

// interval is one handler call of one replica.
type interval struct {
	replica    string
	start, end time.Time
}

// calls collects the calls of several replicas.
type calls struct {
	mu        sync.Mutex
	intervals []interval
}

func (c *calls) record(replica string) func(context.Context, kubehandler.Event) error {
	return func(ctx context.Context, ev kubehandler.Event) error {
		start := time.Now()
		time.Sleep(2 * time.Millisecond) // long enough for overlaps to show
		c.mu.Lock()
		defer c.mu.Unlock()
		c.intervals = append(c.intervals, interval{replica, start, time.Now()})
		return nil
	}
}

// overlap returns the first pair of calls of different replicas that ran at
// the same time, if any.
func (c *calls) overlap() (interval, interval, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	iv := append([]interval(nil), c.intervals...)
	sort.Slice(iv, func(i, j int) bool { return iv[i].start.Before(iv[j].start) })
	for i := 1; i < len(iv); i++ {
		for j := i - 1; j >= 0 && iv[j].end.After(iv[i].start); j-- {
			if iv[j].replica != iv[i].replica {
				return iv[j], iv[i], true
			}
		}
	}
	return interval{}, interval{}, false
}

// count returns how many calls replica started after t.
func (c *calls) count(replica string, after time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, iv := range c.intervals {
		if iv.replica == replica && iv.start.After(after) {
			n++
		}
	}
	return n
}

// first returns when replica first handled a call after t, or false.
func (c *calls) first(replica string, after time.Time) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, iv := range c.intervals {
		if iv.replica == replica && iv.start.After(after) {
			return iv.start, true
		}
	}
	return time.Time{}, false
}

// replica is one loop of a leader election test, with its own informer.
type replica struct {
	name   string
	loop   kubehandler.EventLoop
	cancel context.CancelFunc
	done   chan error
}

func startReplica(t *testing.T, client kubernetes.Interface, ns, name string, c *calls, keep bool) *replica {
	t.Helper()
	h := kubehandlertest.NewRecorder(t, configMapInformer(t, client, ns), "configmaps")
	h.Fn = c.record(name)
	loop := kubehandler.NewEventLoop("elected", kubehandler.WithLeaderElection(kubehandler.LeaderElection{
		Client: client.CoordinationV1(), Namespace: ns, Name: "elected", Identity: name,
		LeaseDuration: testLeaseDuration, RenewDeadline: testRenewDeadline, RetryPeriod: testRetryPeriod,
		KeepLeaseOnCancel: keep,
	}))
	loop.Register(h)
	ctx, cancel := context.WithCancel(context.Background())
	r := &replica{name: name, loop: loop, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- loop.Run(ctx, 4) }()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// keepWriting updates ConfigMaps of ns until the returned stop is called.
func keepWriting(t *testing.T, client kubernetes.Interface, ns string) (stop func()) {
	t.Helper()
	cms := client.CoreV1().ConfigMaps(ns)
	for i := range 20 {
		if _, err := cms.Create(t.Context(), configMap(ns, fmt.Sprint("cm-", i), 0), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for v := 1; ctx.Err() == nil; v++ {
			// Errors are fine here: the apiserver may be away on purpose.
			_, _ = cms.Update(ctx, configMap(ns, fmt.Sprint("cm-", v%20), v), metav1.UpdateOptions{})
			time.Sleep(5 * time.Millisecond)
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

// Two replicas on one Lease: exactly one dispatches at any time; when the
// leader stops, the standby takes over, within the retry period when the
// lease is released on cancel and after the lease duration when it is kept.
func TestLeaderElectionHandOver(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("KeepLeaseOnCancel=%v", keep), func(t *testing.T) {
			lab := kubelabtest.Default()
			client := lab.Client()
			ns := lab.Namespace(t)
			var c calls
			stopWriting := keepWriting(t, client, ns)
			defer stopWriting()

			a := startReplica(t, client, ns, "a", &c, keep)
			eventually(t, 30*time.Second, func() (bool, string) {
				return kubehandler.IsLeader(a.loop), "a does not lead"
			})
			b := startReplica(t, client, ns, "b", &c, keep)
			eventually(t, 30*time.Second, func() (bool, string) {
				err := kubehandler.Readiness(b.loop)(nil)
				return err == nil, fmt.Sprint("standby b not ready: ", err)
			})
			if kubehandler.IsLeader(b.loop) {
				t.Fatal("two leaders")
			}
			// a leads and dispatches for a while, b standing by.
			eventually(t, 30*time.Second, func() (bool, string) {
				return c.count("a", time.Time{}) >= 50, "a dispatched fewer than 50 calls"
			})

			stopped := time.Now()
			a.cancel()
			if err := <-a.done; err != nil {
				t.Fatalf("a: Run = %v", err)
			}
			a.done <- nil // for the cleanup
			eventually(t, 30*time.Second, func() (bool, string) {
				_, ok := c.first("b", stopped)
				return ok, "b did not take over"
			})
			took, _ := c.first("b", stopped)
			handOver := took.Sub(stopped)
			t.Logf("hand-over: %s (lease duration %s, retry period %s)", handOver.Round(time.Millisecond), testLeaseDuration, testRetryPeriod)
			// A kept lease expires a lease duration after its last renewal,
			// which came up to a retry period before the leader stopped.
			if keep && handOver < testLeaseDuration/2 {
				t.Errorf("took over after %s, before a kept lease could expire", handOver)
			}
			if !keep && handOver > testLeaseDuration/2 {
				t.Errorf("took over after %s, a released lease should go within a few retry periods", handOver)
			}
			// b dispatches for a while before the overlap check.
			eventually(t, 30*time.Second, func() (bool, string) {
				return c.count("b", stopped) >= 50, "b dispatched fewer than 50 calls"
			})
			if x, y, ok := c.overlap(); ok {
				t.Fatalf("replicas %s and %s dispatched at once: %v-%v and %v-%v", x.replica, y.replica, x.start, x.end, y.start, y.end)
			}
			c.mu.Lock()
			n := len(c.intervals)
			c.mu.Unlock()
			t.Logf("%d calls, no overlap between replicas", n)
		})
	}
}

// A leader cut off from the API server cannot renew its lease: it stops its
// workers and Run returns ErrLeaderElectionLost. Health endpoints follow each
// state.
func TestLeaderLosesLeaseAndHealth(t *testing.T) {
	lab := kubelabtest.Default()
	client := lab.Client()
	ns := lab.Namespace(t)
	var c calls
	stopWriting := keepWriting(t, client, ns)
	defer stopWriting()

	a := startReplica(t, client, ns, "a", &c, false)
	mux := http.NewServeMux()
	mux.Handle("/readyz", kubehandler.ProbeHandler(kubehandler.Readiness(a.loop)))
	mux.Handle("/healthz", kubehandler.ProbeHandler(kubehandler.Liveness(a.loop)))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	status := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode
	}
	eventually(t, 30*time.Second, func() (bool, string) {
		return kubehandler.IsLeader(a.loop) && status("/readyz") == 200, "a not leading and ready"
	})
	if status("/healthz") != 200 {
		t.Error("leader not live")
	}

	// A standby on the same lease is ready while it reaches the lease.
	b := startReplica(t, client, ns, "b", &c, false)
	eventually(t, 30*time.Second, func() (bool, string) {
		return kubehandler.Readiness(b.loop)(nil) == nil, "standby not ready"
	})

	if err := lab.StopAPIServer(t.Context()); err != nil {
		t.Fatal(err)
	}
	restarted := false
	defer func() {
		if !restarted {
			if err := lab.StartAPIServer(context.Background()); err != nil {
				t.Error(err)
			}
		}
	}()
	cut := time.Now()
	var err error
	select {
	case err = <-a.done:
		a.done <- err
	case <-time.After(30 * time.Second):
		t.Fatal("the leader kept leading with the API server gone")
	}
	if !errors.Is(err, kubehandler.ErrLeaderElectionLost) {
		t.Fatalf("Run = %v, want ErrLeaderElectionLost", err)
	}
	t.Logf("leadership lost %s after the API server went away (renew deadline %s)", time.Since(cut).Round(time.Millisecond), testRenewDeadline)
	if status("/readyz") != http.StatusServiceUnavailable {
		t.Error("a loop whose Run returned is ready")
	}
	// The standby cannot reach the lease either: after the lease duration it
	// is no longer a healthy standby.
	eventually(t, 30*time.Second, func() (bool, string) {
		err := kubehandler.Readiness(b.loop)(nil)
		return err != nil, "the standby stays ready without the API server"
	})
	if err := lab.StartAPIServer(t.Context()); err != nil {
		t.Fatal(err)
	}
	restarted = true
	// The standby takes over.
	eventually(t, 60*time.Second, func() (bool, string) {
		return kubehandler.IsLeader(b.loop), "b did not take over"
	})
}
