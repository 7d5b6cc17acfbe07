package kubehandler_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/client-go/kubernetes/fake"

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
