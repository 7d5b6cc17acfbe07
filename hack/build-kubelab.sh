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
source "${REPO_ROOT}/hack/lib.sh"
OUT="${REPO_ROOT}/_output/bin/kubelab"
build_kube "${OUT}" .
echo "${OUT}"
