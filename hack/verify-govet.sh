#!/usr/bin/env bash
# Runs go vet over every module of the repository.
set -o errexit -o nounset -o pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "${REPO_ROOT}/hack/lib.sh"

for mod in "${MODULES[@]}"; do
  (cd "${REPO_ROOT}/${mod}" && go vet ./...)
done
