#!/usr/bin/env bash
# Builds kubectl v1.37.2, the one that matches kubelab's apiserver, from the
# hack/kubelab module into _output/bin/kubectl and prints its path on stdout;
# progress and errors go to stderr. Later builds are a link, and only when
# something changed, once Go's build cache has it.
#
# Use: KUBECTL="$(hack/build-kubectl.sh)"
set -o errexit -o nounset -o pipefail

exec "$(dirname "${BASH_SOURCE[0]}")/build-kubelab.sh" kubectl
