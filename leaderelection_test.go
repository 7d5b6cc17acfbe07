package kubehandler_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/kubehandler/kubehandler"
	"github.com/kubehandler/kubehandler/internal/looptest"
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
	a := looptest.Start(t, leader, 1)
	eventually(t, "a leads", func() bool { return kubehandler.IsLeader(leader) })
	b := looptest.Start(t, standby, 1)
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
