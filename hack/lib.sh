# Sourced by hack/ scripts: what they share.

# The Go modules of the repository, relative to its root. hack/kubelab is a
# module of its own so that nothing of k8s.io/kubernetes reaches the library;
# sample-controller is one so that code-generator and what users copy with it
# stay out of the library too; hack/bench is one so that controller-runtime,
# measured beside the library, never enters its go.mod.
MODULES=(. hack/kubelab hack/bench sample-controller)
