// Package kubelabtest runs a real Kubernetes control plane for integration
// tests: etcd, kube-apiserver and, if asked, kube-controller-manager
// (v1.37.2), started by the kubelab binary (hack/kubelab of the kubehandler
// repository) in a process of its own, on 127.0.0.1, in seconds. No
// container runtime, no downloads at test time: it works offline and in
// locked-down CI.
//
// A test package starts one lab in TestMain and gives each test its own
// namespace:
//
//	func TestMain(m *testing.M) {
//		kubelabtest.Main(m, kubelabtest.Options{ControllerManager: true})
//	}
//
//	func TestMyController(t *testing.T) {
//		lab := kubelabtest.Default()
//		client := kubernetes.NewForConfigOrDie(lab.Config())
//		ns := lab.Namespace(t)
//		// Run your controller against lab.Config(), create objects in ns,
//		// and wait for what it should do.
//	}
//
// Main also checks, once the tests are done and the lab is stopped, that no
// goroutine leaked (go.uber.org/goleak), as goleak.VerifyTestMain does.
//
// # The kubelab binary
//
// kubelab is a Go module of its own (hack/kubelab), kept out of the library
// so that nothing of k8s.io/kubernetes reaches a user's go.mod; kubelabtest
// runs it as a program and does not link it. Its module needs replace
// directives, so "go install" refuses it. Binary finds it:
//
//   - $KUBELAB_BIN, the path of a kubelab binary. To build one, in a clone
//     of the kubehandler repository:
//
//     make kubelab-bin    # prints the binary's path
//
//     The first build on a machine takes several minutes (about 5 on 2
//     cores, 3 GB of memory); it downloads nothing but Go modules.
//
//   - Otherwise, a kubelab source in or above the test's working directory
//     (or this package's source, inside the kubehandler repository or a
//     checkout a go.mod replace points at): hack/kubelab/ and
//     hack/build-kubelab.sh. Copy both from the kubehandler repository into
//     your repository's hack/ and kubelabtest builds the binary there, into
//     _output/bin/kubelab, the first time (the same minutes), and in
//     seconds after. This is how the kubehandler repository's own tests
//     and its sample controller get it.
//
// Otherwise Start (and so Main) fails with an error that says the above.
// Tests never skip for want of a control plane.
//
// # What a lab has
//
// Lab.Config gives clients as a member of system:masters, with client-side
// rate limits raised; Lab.Client and Lab.Dynamic are shared clients.
// Options.CRDs are installed before the tests start (Lab.InstallCRDs waits
// until they can be used without the apiserver's two-second delay).
// Integration tests of reconnection can take the apiserver away under
// running clients: StopAPIServer (graceful), KillAPIServer (a crash),
// StartAPIServer and RestartAPIServer. It comes back on the same address
// with the same data, and clients made from Lab.Config reconnect by
// themselves.
//
// What it does not have: a scheduler or kubelet (Pods are stored, never
// run) and, without Options.ControllerManager, any controller: then a
// foreground deletion never finishes and a deleted namespace stays
// Terminating. With it, the garbage collector and the namespace,
// deployment, replicaset and serviceaccount controllers run.
//
// Each lab lives in a directory os.TempDir()/kl-* (kubeconfig, logs,
// control socket). Start removes those left behind by labs whose process
// died without cleaning up; the kernel stops a lab whose test process
// dies.
//
// For unit tests, without any server, see the kubehandlertest package.
package kubelabtest
