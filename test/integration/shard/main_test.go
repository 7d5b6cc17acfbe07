// Package shard tests internal/shard against a real kube-apiserver
// (hack/kubelab): the slots' shard selectors as the server evaluates them,
// in lists and in watches, and the detection of server support, with the
// ShardedListAndWatch feature gate and without it.
package shard

import (
	"testing"

	"github.com/kubehandler/kubehandler/kubelabtest"
)

// shardedGate enables server-side shard selectors (KEP-5866).
const shardedGate = "ShardedListAndWatch=true"

// TestMain starts the lab with the gate; the tests of a server without it
// start a lab of their own.
func TestMain(m *testing.M) {
	kubelabtest.Main(m, kubelabtest.Options{FeatureGates: shardedGate})
}
