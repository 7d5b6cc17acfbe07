# Sourced by hack/ scripts: what they share.

# The Go modules of the repository, relative to its root. hack/kubelab is a
# module of its own so that nothing of k8s.io/kubernetes reaches the library;
# sample-controller is one so that code-generator and what users copy with it
# stay out of the library too; hack/bench is one so that controller-runtime,
# measured beside the library, never enters its go.mod.
MODULES=(. hack/kubelab hack/bench sample-controller)

# build_kube OUT PACKAGE builds a Kubernetes v1.37.1 command of the
# hack/kubelab module into OUT, one build at a time (test packages running
# in parallel take the same lock). The caller's GOFLAGS (say -race) must not
# change how Kubernetes is built: that would be a second cold build.
# -buildvcs=false keeps the binary the same from commit to commit, so an
# unchanged tree does not relink. Without the -X flags, /version (and
# `kubectl version`) report v0.0.0-master, which clients may reject.
build_kube() {
  local out="$1" pkg="$2"
  local ldflags="-s -w"
  ldflags+=" -X k8s.io/component-base/version.gitVersion=v1.37.1"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
  ldflags+=" -X k8s.io/component-base/version.gitMinor=37"
  mkdir -p "$(dirname "${out}")"
  (
    exec 9>"${out}.lock"
    flock 9
    cd "${REPO_ROOT}/hack/kubelab"
    GOWORK=off GOFLAGS=-buildvcs=false go build -ldflags "${ldflags}" -o "${out}" "${pkg}"
  )
}
