#!/usr/bin/env bash
# Fails if go.mod or go.sum of any module is not what `go mod tidy` makes,
# or if hack/kubelab selects another version of a module the sample's image
# is built from (image_modules_behind in hack/lib.sh).
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
behind="$(image_modules_behind "${REPO_ROOT}")"
if [[ -n "${behind}" ]]; then
  echo "hack/kubelab selects other versions than the sample's image is built from (a first make test would compile them twice); run hack/update-gomod.sh:" >&2
  echo "${behind}" >&2
  failed=1
fi
exit "${failed}"
