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

func TestMain(m *testing.M) {
	if os.Getenv(replicaEnv) != "" {
		// A replica of the freeze test or the ring test (replica_test.go).
		os.Exit(runReplica())
	}
	kubelabtest.Main(m, kubelabtest.Options{CRDs: [][]byte{widgetCRD}})
}
