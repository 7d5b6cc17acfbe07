// Package kubelabtest runs a real Kubernetes control plane (hack/kubelab:
// etcd, kube-apiserver and optionally kube-controller-manager, v1.37.1) for
// this repository's integration tests.
//
// A test package starts one lab in TestMain and gives each test its own
// namespace:
//
//	func TestMain(m *testing.M) {
//		kubelabtest.Main(m, kubelabtest.Options{ControllerManager: true})
//	}
//
//	func TestSomething(t *testing.T) {
//		lab := kubelabtest.Default()
//		client := kubernetes.NewForConfigOrDie(lab.Config())
//		ns := lab.Namespace(t)
//		...
//	}
//
// The first use on a machine builds the kubelab binary (several minutes; Go's
// build cache makes later builds take a second or two). Set KUBELAB_BIN to a
// binary built by hack/build-kubelab.sh to skip that step.
//
// Integration tests of reconnection can take the apiserver away under
// running clients: StopAPIServer (graceful), KillAPIServer (a crash),
// StartAPIServer and RestartAPIServer. It comes back on the same address with
// the same data, and clients made from Lab.Config reconnect by themselves.
//
// Each lab lives in a directory os.TempDir()/kl-*. Start removes those left
// behind by labs whose process died without cleaning up.
//
// What the lab does not have: a scheduler or kubelet (Pods are stored, never
// run) and, without Options.ControllerManager, any controller: then a
// foreground deletion never finishes and a deleted namespace stays
// Terminating.
package kubelabtest
