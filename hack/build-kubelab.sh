#!/usr/bin/env bash
# Builds kubelab (hack/kubelab, its own Go module: etcd, kube-apiserver and
# kube-controller-manager v1.37.2 in one binary) into _output/bin/kubelab and
# prints the binary's path on stdout; progress and errors go to stderr.
# `hack/build-kubelab.sh kubectl` builds the matching kubectl (a `tool` of
# the module's go.mod) into _output/bin/kubectl the same way.
#
# The script needs nothing of hack/ but hack/kubelab/: a repository that
# copies the two (see kubelabtest's doc) builds the same binary.
#
# The first build on a machine downloads the modules and compiles Kubernetes:
# about 5-8 minutes on 2 cores and 3 GB of memory. Later builds reuse Go's
# build cache: a couple of seconds when nothing changed.
#
# Use: KUBELAB_BIN="$(hack/build-kubelab.sh)"
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
case "${1:-kubelab}" in
  kubelab) pkg=. ;;
  kubectl) pkg=k8s.io/kubernetes/cmd/kubectl ;;
  *) echo "usage: $0 [kubelab|kubectl]" >&2; exit 2 ;;
esac
OUT="${REPO_ROOT}/_output/bin/${1:-kubelab}"

# One build at a time (test packages running in parallel take the same
# lock). The caller's GOFLAGS (say -race) must not change how Kubernetes is
# built: that would be a second cold build. -buildvcs=false keeps the binary
# the same from commit to commit, so an unchanged tree does not relink.
# Without the -X flags, /version (and `kubectl version`) report
# v0.0.0-master, which clients may reject.
#
# CGO_ENABLED=0 and -trimpath are the flags the sample's image is built with
# (sample-controller/hack/image), and hack/kubelab's go.mod requires every
# module of the sample's binary at the sample's version
# (hack/verify-gomod.sh): so the client-go, apimachinery and the rest
# compiled here are the image build's too, and a first make test compiles
# them once. hack/verify-govet.sh vets the module with the same flags.
ldflags="-s -w"
ldflags+=" -X k8s.io/component-base/version.gitVersion=v1.37.2"
ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
ldflags+=" -X k8s.io/component-base/version.gitMinor=37"
mkdir -p "$(dirname "${OUT}")"
(
  exec 9>"${OUT}.lock"
  flock 9
  cd "${REPO_ROOT}/hack/kubelab"
  GOWORK=off GOFLAGS=-buildvcs=false CGO_ENABLED=0 go build -trimpath -ldflags "${ldflags}" -o "${OUT}" "${pkg}"
)
echo "${OUT}"
