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
// What the lab does not have: a scheduler or kubelet (Pods are stored, never
// run) and, without Options.ControllerManager, any controller: then a
// foreground deletion never finishes and a deleted namespace stays
// Terminating.
package kubelabtest
