#!/usr/bin/env bash
# Builds kubectl v1.37.1, the one that matches kubelab's apiserver, from the
# hack/kubelab module (a `tool` of its go.mod) into _output/bin/kubectl and
# prints its path on stdout; progress and errors go to stderr. Later builds
# are a link, and only when something changed, once Go's build cache has it.
#
# Use: KUBECTL="$(hack/build-kubectl.sh)"
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "${REPO_ROOT}/hack/lib.sh"
OUT="${REPO_ROOT}/_output/bin/kubectl"
build_kube "${OUT}" k8s.io/kubernetes/cmd/kubectl
echo "${OUT}"
