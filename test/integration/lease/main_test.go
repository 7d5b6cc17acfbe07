// Package lease tests internal/lease's Pool against a real kube-apiserver
// (hack/kubelab): two replicas' Pools on the same Leases, the
// resourceVersion preconditions enforced by the server, expiry and the
// renew deadline judged on each replica's own fake clock, and shard
// Replicas handing slots over through the Pool.
package lease

import (
	"testing"

	"github.com/kubehandler/kubehandler/kubelabtest"
)

func TestMain(m *testing.M) {
	kubelabtest.Main(m, kubelabtest.Options{})
}
