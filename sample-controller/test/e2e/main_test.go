// Package e2e tests the sample controller end to end, on a real control
// plane (kubehandler's kubelabtest: kube-apiserver, etcd and
// kube-controller-manager, no nodes): the controller runs in this process
// (Run), or as its own binary where a test kills and restarts it.
//
// The tests run one at a time: a controller acts on Foos in every namespace,
// so two would step on each other. Each test runs its own controller and
// works in namespaces of its own.
//
// kubelabtest needs the kubelab binary: inside the kubehandler repository
// it builds it; elsewhere, set KUBELAB_BIN or copy kubehandler's
// hack/kubelab and hack/build-kubelab.sh into your repository (see the
// kubelabtest package doc).
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kubehandler/kubehandler/kubelabtest"
)

var (
	// controllerKubeconfig is the kubeconfig of the controller binary: as
	// the ServiceAccount of artifacts/deploy, with its RBAC.
	controllerKubeconfig string
	// controllerBin is the sample controller built for this test run.
	controllerBin string
)

func TestMain(m *testing.M) {
	crd, err := os.ReadFile("../../artifacts/crd.yaml")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	start := time.Now()
	kubelabtest.Main(m, kubelabtest.Options{
		ControllerManager: true,
		CRDs:              [][]byte{crd},
		Setup: func(ctx context.Context, lab *kubelabtest.Lab) error {
			// In the lab's directory: removed with the lab.
			controllerBin = filepath.Join(lab.Dir(), "sample-controller")
			// The binary is built with the race detector too: it exits 66
			// when it finds a race, which the tests that run it check.
			build := exec.CommandContext(ctx, "go", "build", "-race", "-o", controllerBin, "github.com/kubehandler/kubehandler/sample-controller")
			build.Stdout, build.Stderr = os.Stderr, os.Stderr
			if err := build.Run(); err != nil {
				return fmt.Errorf("building the sample controller: %w", err)
			}
			// The binary runs with the permissions the manifests grant: a
			// missing rule fails the tests that run it.
			deploy := []string{"../../artifacts/deploy/namespace.yaml", "../../artifacts/deploy/serviceaccount.yaml", "../../artifacts/deploy/rbac.yaml"}
			if err := applyManifests(ctx, lab.Config(), deploy...); err != nil {
				return err
			}
			controllerKubeconfig = filepath.Join(lab.Dir(), "controller.kubeconfig")
			if err := writeImpersonatingKubeconfig(lab.KubeconfigPath(), controllerKubeconfig, serviceAccount); err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "e2e: kubelab, the controller binary and the CRD ready in %s\n", time.Since(start).Round(time.Millisecond))
			return nil
		},
	})
}

// labConfig returns a client configuration for the lab, not throttled on
// the client side.
func labConfig() *rest.Config {
	return kubelabtest.Default().Config()
}
