// Package e2e tests the sample controller end to end, on a real control
// plane (hack/kubelab: kube-apiserver, etcd and kube-controller-manager, no
// nodes): the controller runs in this process (Run), or as its own binary
// where a test kills and restarts it.
//
// The tests run one at a time: a controller acts on Foos in every namespace,
// so two would step on each other. Each test runs its own controller and
// works in namespaces of its own.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

var (
	// kubeconfig is the lab's kubeconfig file.
	kubeconfig string
	// controllerKubeconfig is the kubeconfig of the controller binary: as
	// the ServiceAccount of artifacts/deploy, with its RBAC.
	controllerKubeconfig string
	// controllerBin is the sample controller built for this test run.
	controllerBin string
)

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) (code int) {
	start := time.Now()
	ctx := context.Background()
	// A short path: the lab's unix sockets live in it.
	labDir, err := os.MkdirTemp("", "kl-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	l, err := startLab(ctx, labDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: cannot start kubelab:", err)
		os.RemoveAll(labDir)
		return 1
	}
	defer func() {
		if err := l.stop(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e:", err)
			code = max(code, 1)
		}
		if code != 0 {
			fmt.Fprintf(os.Stderr, "e2e: kubelab's logs are in %s\n", labDir)
		} else {
			os.RemoveAll(labDir)
		}
		// With the lab gone, the clients' connections are closed. klog
		// starts its flush daemon in init; it is not the tests' leak.
		klog.StopFlushDaemon()
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: leaked goroutines:", err)
			code = max(code, 1)
		}
		fmt.Fprintf(os.Stderr, "e2e: wall time %s\n", time.Since(start).Round(time.Millisecond))
	}()
	kubeconfig = l.kubeconfig

	tmp, err := os.MkdirTemp("", "sample-controller-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	controllerBin = filepath.Join(tmp, "sample-controller")
	// The binary is built with the race detector too: it exits 66 when it
	// finds a race, which the tests that run it check.
	build := exec.CommandContext(ctx, "go", "build", "-race", "-o", controllerBin, "github.com/kubehandler/kubehandler/sample-controller")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: building the sample controller:", err)
		return 1
	}

	if err := installCRD(ctx, labConfig()); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	// The binary runs with the permissions the manifests grant: a missing
	// rule fails the tests that run it.
	deploy := []string{"../../artifacts/deploy/namespace.yaml", "../../artifacts/deploy/serviceaccount.yaml", "../../artifacts/deploy/rbac.yaml"}
	if err := applyManifests(ctx, labConfig(), deploy...); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	controllerKubeconfig = filepath.Join(tmp, "controller.kubeconfig")
	if err := writeImpersonatingKubeconfig(controllerKubeconfig, serviceAccount); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e: kubelab, the controller binary and the CRD ready in %s\n", time.Since(start).Round(time.Millisecond))

	return m.Run()
}

// labConfig returns a client configuration for the lab, not throttled on
// the client side.
func labConfig() *rest.Config {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		panic(err)
	}
	cfg.QPS, cfg.Burst = 500, 1000
	return cfg
}
