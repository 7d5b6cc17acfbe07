#!/usr/bin/env bash
# Builds kubectl v1.37.1, the one that matches kubelab's apiserver, from the
# hack/kubelab module (a `tool` of its go.mod) into _output/bin/kubectl and
# prints its path on stdout; progress and errors go to stderr. Later builds
# are a link, and only when something changed, once Go's build cache has it.
#
# Use: KUBECTL="$(hack/build-kubectl.sh)"
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly KUBE_MAJOR=1 KUBE_MINOR=37 KUBE_VERSION=v1.37.1
OUT="${REPO_ROOT}/_output/bin/kubectl"

# Without these, `kubectl version` says v0.0.0-master.
ldflags="-s -w"
ldflags+=" -X k8s.io/component-base/version.gitVersion=${KUBE_VERSION}"
ldflags+=" -X k8s.io/component-base/version.gitMajor=${KUBE_MAJOR}"
ldflags+=" -X k8s.io/component-base/version.gitMinor=${KUBE_MINOR}"

mkdir -p "$(dirname "${OUT}")"
exec 9>"${OUT}.lock"
flock 9

cd "${REPO_ROOT}/hack/kubelab"
# As for kubelab: the caller's GOFLAGS must not change how it is built.
GOWORK=off GOFLAGS=-buildvcs=false go build -ldflags "${ldflags}" -o "${OUT}" k8s.io/kubernetes/cmd/kubectl

echo "${OUT}"
