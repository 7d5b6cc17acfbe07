// Package integration tests the event loop against a real kube-apiserver and
// etcd (hack/kubelab), with real typed and dynamic informers.
package integration

import (
	_ "embed"
	"os"
	"testing"

	"github.com/kubehandler/kubehandler/kubelabtest"
)

// widgetCRD is a namespaced custom resource with a status subresource, for
// tests of unstructured objects.
//
//go:embed testdata/widget-crd.yaml
var widgetCRD []byte

// labGatesEnv sets the lab apiserver's feature gates (kubelabtest's
// Options.FeatureGates): make bench-scale turns ShardedListAndWatch on for
// BenchmarkRingScale; the tests run on the apiserver's defaults.
const labGatesEnv = "KUBEHANDLER_TEST_FEATURE_GATES"

func TestMain(m *testing.M) {
	if os.Getenv(replicaEnv) != "" {
		// A replica of the freeze, ring or scale tests (replica_test.go).
		os.Exit(runReplica())
	}
	kubelabtest.Main(m, kubelabtest.Options{CRDs: [][]byte{widgetCRD}, FeatureGates: os.Getenv(labGatesEnv)})
}
