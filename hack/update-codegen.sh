#!/usr/bin/env bash
# Regenerates the sample controller's deepcopy functions, clientset, listers
# and informers from its API types (sample-controller/hack/update-codegen.sh).
set -o errexit -o nounset -o pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "${REPO_ROOT}/sample-controller/hack/update-codegen.sh"
