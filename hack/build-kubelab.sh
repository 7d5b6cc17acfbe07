#!/usr/bin/env bash
# Builds kubelab (hack/kubelab, its own Go module: etcd, kube-apiserver and
# kube-controller-manager v1.37.1 in one binary) into _output/bin/kubelab and
# prints the binary's path on stdout; progress and errors go to stderr.
#
# The first build on a machine downloads the modules and compiles Kubernetes:
# about 5-8 minutes on 2 cores and 3 GB of memory. Later builds reuse Go's
# build cache: a couple of seconds when nothing changed.
#
# Use: KUBELAB_BIN="$(hack/build-kubelab.sh)"
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly KUBE_MAJOR=1 KUBE_MINOR=37 KUBE_VERSION=v1.37.1
OUT="${REPO_ROOT}/_output/bin/kubelab"

# Without these, /version reports v0.0.0-master, which clients may reject.
ldflags="-s -w"
ldflags+=" -X k8s.io/component-base/version.gitVersion=${KUBE_VERSION}"
ldflags+=" -X k8s.io/component-base/version.gitMajor=${KUBE_MAJOR}"
ldflags+=" -X k8s.io/component-base/version.gitMinor=${KUBE_MINOR}"

mkdir -p "$(dirname "${OUT}")"
# One build at a time: test packages running in parallel (kubelabtest)
# take the same lock.
exec 9>"${OUT}.lock"
flock 9

cd "${REPO_ROOT}/hack/kubelab"
# The caller's GOFLAGS (say -race) must not change how Kubernetes is built:
# that would be a second cold build. -buildvcs=false keeps the binary the same
# from commit to commit, so an unchanged tree does not relink.
GOWORK=off GOFLAGS=-buildvcs=false go build -ldflags "${ldflags}" -o "${OUT}" .

echo "${OUT}"
