package kubehandler_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/kubehandlertest"
)

// A standby whose Run is cancelled while another replica leads returns and
// leaves no goroutine behind (promise 6), as a leader does.
func TestLeaderElectionStandbyStopsCleanly(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	client := fake.NewClientset()
	le := func(id string) kubehandler.Option {
		return kubehandler.WithLeaderElection(kubehandler.LeaderElection{
			Client: client.CoordinationV1(), Namespace: "ns", Name: "lease", Identity: id,
			LeaseDuration: time.Hour, RenewDeadline: 50 * time.Minute, RetryPeriod: 20 * time.Millisecond,
		})
	}
	leader := kubehandler.NewWorkQueue("le-leader", le("a"))
	standby := kubehandler.NewWorkQueue("le-standby", le("b"))
	a := kubehandlertest.Start(t, leader, 1)
	eventually(t, "a leads", func() bool { return kubehandler.IsLeader(leader) })
	b := kubehandlertest.Start(t, standby, 1)
	eventually(t, "b stands by, ready", func() bool { return kubehandler.Readiness(standby)(nil) == nil })
	if kubehandler.IsLeader(standby) {
		t.Fatal("two leaders")
	}
	if err := b.Stop(); err != nil {
		t.Fatalf("standby's Run = %v", err)
	}
	if err := a.Stop(); err != nil {
		t.Fatalf("leader's Run = %v", err)
	}
	goleak.VerifyNone(t, ignore)
}

func TestLeaderElectionConfigErrors(t *testing.T) {
	client := fake.NewClientset()
	tests := []struct {
		name string
		le   kubehandler.LeaderElection
		want string
	}{
		{"no client", kubehandler.LeaderElection{Namespace: "ns", Name: "lease"}, "no Client"},
		{"no name", kubehandler.LeaderElection{Client: client.CoordinationV1(), Namespace: "ns"}, "namespace and a name"},
		{"renew deadline too long", kubehandler.LeaderElection{Client: client.CoordinationV1(), Namespace: "ns", Name: "lease",
			LeaseDuration: time.Second, RenewDeadline: 2 * time.Second}, "leaseDuration must be greater than renewDeadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := kubehandler.NewWorkQueue("le", kubehandler.WithLeaderElection(tt.le))
			if err := q.Run(t.Context(), 1); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Run = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// Two loops on one Lease of a fake clientset: one leads and dispatches, the
// other stands by; when the leader's Run is cancelled it releases the lease
// and the standby takes over, dispatching what it queued meanwhile.
func TestLeaderElectionHandsOver(t *testing.T) {
	client := fake.NewClientset()
	le := func(id string) kubehandler.Option {
		return kubehandler.WithLeaderElection(kubehandler.LeaderElection{
			Client: client.CoordinationV1(), Namespace: "ns", Name: "lease", Identity: id,
			LeaseDuration: time.Hour, RenewDeadline: 50 * time.Minute, RetryPeriod: 20 * time.Millisecond,
		})
	}
	var handled [2]atomic.Int32
	queues := make([]kubehandler.WorkQueue, 2)
	for i := range queues {
		queues[i] = kubehandler.NewWorkQueue("le", le([]string{"a", "b"}[i]))
		queues[i].RegisterAddHandler("k", func(context.Context, string, string) error { handled[i].Add(1); return nil })
		queues[i].EnqueueAdd("k", "ns/x")
	}
	first := kubehandlertest.Start(t, queues[0], 1)
	eventually(t, "a leads", func() bool { return handled[0].Load() == 1 })
	second := kubehandlertest.Start(t, queues[1], 1)
	eventually(t, "b stands by, ready", func() bool { return kubehandler.Readiness(queues[1])(nil) == nil })
	if kubehandler.IsLeader(queues[1]) || handled[1].Load() != 0 {
		t.Fatal("the standby dispatches")
	}
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	// The lease was released: b takes over within a few retry periods,
	// not the hour-long lease duration.
	eventually(t, "b leads", func() bool { return handled[1].Load() == 1 })
	if !kubehandler.IsLeader(queues[1]) {
		t.Error("b dispatches but is not the leader")
	}
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
}

// leaseAPI is the Lease of a fake clientset with a transport the test
// controls: renewals (writes naming a holder) can hang or fail, reads can be
// answered with another replica's record, and every write is recorded with
// whether a handler call was running at that moment.
type leaseAPI struct {
	client *fake.Clientset

	inCall       atomic.Int32 // handler calls running
	frozen       atomic.Bool  // renewals hang until unfrozen
	unfreeze     chan struct{}
	failRenewals atomic.Bool  // renewals fail
	heldBy       atomic.Value // string: when set, reads show this holder
	reads        atomic.Int32 // reads answered with heldBy
	renewals     atomic.Int32 // renewal attempts
	lastRenewal  atomic.Int64 // UnixNano of the last renewal attempt
	mu           sync.Mutex
	writes       []leaseWrite
}

type leaseWrite struct {
	holder string
	inCall bool
}

func newLeaseAPI() *leaseAPI {
	a := &leaseAPI{client: fake.NewClientset(), unfreeze: make(chan struct{})}
	a.heldBy.Store("")
	a.client.PrependReactor("get", "leases", func(clienttesting.Action) (bool, runtime.Object, error) {
		other := a.heldBy.Load().(string)
		if other == "" {
			return false, nil, nil
		}
		a.reads.Add(1)
		d := int32(3600)
		now := metav1.NewMicroTime(time.Now())
		return true, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "lease", ResourceVersion: "999"},
			Spec:       coordinationv1.LeaseSpec{HolderIdentity: &other, LeaseDurationSeconds: &d, RenewTime: &now, AcquireTime: &now},
		}, nil
	})
	write := func(action clienttesting.Action) (bool, runtime.Object, error) {
		l := action.(interface{ GetObject() runtime.Object }).GetObject().(*coordinationv1.Lease)
		holder := ""
		if l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		if holder != "" {
			a.renewals.Add(1)
			a.lastRenewal.Store(time.Now().UnixNano())
			if a.frozen.Load() {
				<-a.unfreeze
			}
			if a.failRenewals.Load() {
				return true, nil, errors.New("connection refused")
			}
			if a.heldBy.Load().(string) != "" {
				return true, nil, apierrors.NewConflict(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, "lease", errors.New("modified"))
			}
		}
		a.mu.Lock()
		a.writes = append(a.writes, leaseWrite{holder: holder, inCall: a.inCall.Load() > 0})
		a.mu.Unlock()
		return false, nil, nil
	}
	a.client.PrependReactor("create", "leases", write)
	a.client.PrependReactor("update", "leases", write)
	return a
}

// releases returns the writes that gave the Lease up (no holder).
func (a *leaseAPI) releases() []leaseWrite {
	a.mu.Lock()
	defer a.mu.Unlock()
	var r []leaseWrite
	for _, w := range a.writes {
		if w.holder == "" {
			r = append(r, w)
		}
	}
	return r
}

// stepDownLoop is a queue with one worker on a's Lease whose handler records
// each call and blocks until its context is cancelled and, if hold is set,
// until hold is closed too. Ten keys are queued.
type stepDownLoop struct {
	q       kubehandler.WorkQueue
	started atomic.Int32 // calls started
	// readsAtStart[i] is how many reads of the other holder the Lease had
	// answered when call i started.
	mu           sync.Mutex
	readsAtStart []int32
	cancelled    chan struct{} // closed when the first call's context is cancelled
}

func newStepDownLoop(t *testing.T, a *leaseAPI, hold chan struct{}, le kubehandler.LeaderElection, opts ...kubehandler.Option) *stepDownLoop {
	t.Helper()
	le.Client, le.Namespace, le.Name, le.Identity = a.client.CoordinationV1(), "ns", "lease", "a"
	l := &stepDownLoop{cancelled: make(chan struct{})}
	l.q = kubehandler.NewWorkQueue("stepdown", append(opts, kubehandler.WithLeaderElection(le))...)
	var once sync.Once
	l.q.RegisterAddHandler("k", func(ctx context.Context, _, _ string) error {
		a.inCall.Add(1)
		defer a.inCall.Add(-1)
		l.mu.Lock()
		l.readsAtStart = append(l.readsAtStart, a.reads.Load())
		l.mu.Unlock()
		l.started.Add(1)
		<-ctx.Done()
		once.Do(func() { close(l.cancelled) })
		if hold != nil {
			<-hold
		}
		return ctx.Err()
	})
	for i := range 10 {
		l.q.EnqueueAdd("k", fmt.Sprintf("ns/x%d", i))
	}
	return l
}

func wantLost(t *testing.T, r *kubehandlertest.Running) {
	t.Helper()
	select {
	case <-r.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the step-down")
	}
	if err := r.Err(); !errors.Is(err, kubehandler.ErrLeaderElectionLost) {
		t.Fatalf("Run = %v, want ErrLeaderElectionLost", err)
	}
}

// The first read of the Lease that shows another holder ends the term: the
// call in flight has its context cancelled, no call starts after that read,
// Run returns ErrLeaderElectionLost, and the Lease, no longer ours, is not
// released. The renew deadline (an hour) plays no part.
func TestLeaderStepsDownAtReadOfAnotherHolder(t *testing.T) {
	a := newLeaseAPI()
	l := newStepDownLoop(t, a, nil, kubehandler.LeaderElection{
		LeaseDuration: 2 * time.Hour, RenewDeadline: time.Hour, RetryPeriod: 20 * time.Millisecond,
	})
	r := kubehandlertest.Start(t, l.q, 1)
	eventually(t, "the first call starts", func() bool { return l.started.Load() == 1 })
	// Another replica took the Lease: the next renewal conflicts, the read
	// that follows shows it.
	a.heldBy.Store("b")
	wantLost(t, r)
	if err := r.Err(); !strings.Contains(err.Error(), "held by b") {
		t.Errorf("Run = %v, want the reason: the Lease is held by b", err)
	}
	if n := l.started.Load(); n != 1 {
		t.Errorf("%d calls started, want 1: calls started after the read of the other holder", n)
	}
	l.mu.Lock()
	for i, reads := range l.readsAtStart {
		if reads > 0 {
			t.Errorf("call %d started after %d reads of the other holder", i, reads)
		}
	}
	l.mu.Unlock()
	if rel := a.releases(); len(rel) > 0 {
		t.Errorf("a Lease held by another replica was released: %v", rel)
	}
	if kubehandler.IsLeader(l.q) {
		t.Error("still the leader")
	}
}

// A leader frozen past its renew deadline (its clock moves on, its renewal
// hangs in a blocked transport) steps down at the deadline, on the loop's
// clock: not a moment before, and without waiting for the renewal or the
// elector. It releases the Lease, still its own, only after its call
// returned.
func TestLeaderStepsDownAtRenewDeadline(t *testing.T) {
	a := newLeaseAPI()
	c := clocktesting.NewFakeClock(time.Now())
	const renewDeadline = time.Hour
	hold := make(chan struct{})
	l := newStepDownLoop(t, a, hold, kubehandler.LeaderElection{
		LeaseDuration: 2 * renewDeadline, RenewDeadline: renewDeadline, RetryPeriod: 20 * time.Millisecond,
	}, kubehandler.WithClock(c))
	r := kubehandlertest.Start(t, l.q, 1)
	eventually(t, "the first call starts", func() bool { return l.started.Load() == 1 })
	// Freeze: renewals hang from now on. The last one that succeeded was
	// sent at the fake clock's time, which has not moved.
	a.frozen.Store(true)
	sent := a.renewals.Load()
	eventually(t, "a renewal hangs", func() bool { return a.renewals.Load() > sent })

	c.Step(renewDeadline - time.Millisecond)
	select {
	case <-l.cancelled:
		t.Fatal("stepped down before the renew deadline")
	default:
	}
	if !kubehandler.IsLeader(l.q) {
		t.Fatal("not the leader before the renew deadline")
	}
	c.Step(time.Millisecond)
	select {
	case <-l.cancelled:
	case <-time.After(30 * time.Second):
		t.Fatal("the call's context was not cancelled at the renew deadline")
	}
	if kubehandler.IsLeader(l.q) {
		t.Error("still the leader past the renew deadline")
	}
	// The transport comes back; the call is still running: no release yet.
	close(a.unfreeze)
	a.frozen.Store(false)
	close(hold)
	wantLost(t, r)
	if n := l.started.Load(); n != 1 {
		t.Errorf("%d calls started, want 1", n)
	}
	rel := a.releases()
	if len(rel) != 1 {
		t.Fatalf("%d releases, want 1 (the Lease was still ours)", len(rel))
	}
	if rel[0].inCall {
		t.Error("the Lease was released while a call was running")
	}
}

// When renewals fail, the leader steps down at its renew deadline, and
// releases the Lease only after the drain: not when client-go's elector
// gives up, although that happens while the call still runs (it ignores its
// cancelled context until the test lets it return).
func TestFailingRenewalReleasesAfterTheDrain(t *testing.T) {
	a := newLeaseAPI()
	hold := make(chan struct{})
	const retry = 20 * time.Millisecond
	l := newStepDownLoop(t, a, hold, kubehandler.LeaderElection{
		LeaseDuration: 2 * time.Second, RenewDeadline: time.Second, RetryPeriod: retry,
	})
	r := kubehandlertest.Start(t, l.q, 1)
	eventually(t, "the first call starts", func() bool { return l.started.Load() == 1 })
	a.failRenewals.Store(true)
	select {
	case <-l.cancelled:
	case <-time.After(30 * time.Second):
		t.Fatal("no step-down while renewals fail")
	}
	// The elector gives up too (its renew deadline, then no more attempts);
	// renewals may go through again, a release would too.
	eventually(t, "the elector stops renewing", func() bool {
		return time.Since(time.Unix(0, a.lastRenewal.Load())) > 25*retry
	})
	a.failRenewals.Store(false)
	if rel := a.releases(); len(rel) > 0 {
		t.Fatalf("the Lease was released while the call was running: %v", rel)
	}
	close(hold)
	wantLost(t, r)
	rel := a.releases()
	if len(rel) != 1 || rel[0].inCall {
		t.Fatalf("releases %v, want one, after the call returned", rel)
	}
	if n := l.started.Load(); n != 1 {
		t.Errorf("%d calls started, want 1", n)
	}
}
