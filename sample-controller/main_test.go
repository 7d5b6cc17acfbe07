package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/client-go/kubernetes/fake"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestLeaderElectAndShardRing: the two modes exclude each other, and run
// says so before it reaches for a cluster.
func TestLeaderElectAndShardRing(t *testing.T) {
	err := run(context.Background(), flags{leaderElect: true, shardRing: "sample-controller", kubeconfig: "/nonexistent"})
	if err == nil || !strings.Contains(err.Error(), "--leader-elect and --shard-ring exclude each other") {
		t.Fatalf("run with --leader-elect and --shard-ring: %v, want the exclusion", err)
	}
}

// TestShardingFlags: the flags reach kubehandler.Sharding; the identity
// defaults to $POD_NAME with a suffix unique per process; outside a Pod the
// namespace must be given.
func TestShardingFlags(t *testing.T) {
	client := fake.NewClientset()
	f := flags{shardRing: "ring", shardSlots: 32, shardNS: "ns", shardLeaseDuration: 3 * time.Second, shardRenewDeadline: 2 * time.Second, shardRetryPeriod: 500 * time.Millisecond}

	t.Setenv("POD_NAME", "sample-controller-abc")
	a, err := sharding(f, client)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sharding(f, client)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.Identity, "sample-controller-abc_") || a.Identity == b.Identity {
		t.Errorf("identities %q and %q: want $POD_NAME_<suffix>, different per call", a.Identity, b.Identity)
	}
	if a.Client == nil || a.Namespace != "ns" || a.Name != "ring" || a.Slots != 32 ||
		a.LeaseDuration != 3*time.Second || a.RenewDeadline != 2*time.Second || a.RetryPeriod != 500*time.Millisecond || len(a.Secondary) != 0 {
		t.Errorf("Sharding %+v: not the flags' values", a)
	}

	f.shardIdentity = "replica-1"
	if s, err := sharding(f, client); err != nil || s.Identity != "replica-1" {
		t.Errorf("with --shard-identity: %q, %v; want replica-1", s.Identity, err)
	}

	f.shardNS = ""
	if _, ok := podNamespace(); !ok {
		if _, err := sharding(f, client); err == nil || !strings.Contains(err.Error(), "--shard-namespace") {
			t.Errorf("outside a Pod without --shard-namespace: %v, want an error naming the flag", err)
		}
	}
}
