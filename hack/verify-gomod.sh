#!/usr/bin/env bash
# Fails if go.mod or go.sum of any module is not what `go mod tidy` makes.
# Fix with hack/update-gomod.sh.
set -o errexit -o nounset -o pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "${REPO_ROOT}/hack/lib.sh"

failed=0
for mod in "${MODULES[@]}"; do
  if ! (cd "${REPO_ROOT}/${mod}" && go mod tidy -diff >/dev/null); then
    echo "${mod}/go.mod or go.sum is not tidy; run hack/update-gomod.sh" >&2
    failed=1
  fi
done
exit "${failed}"
