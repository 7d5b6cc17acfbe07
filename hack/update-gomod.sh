#!/usr/bin/env bash
# Runs `go mod tidy` in every module of the repository, after requiring in
# hack/kubelab the versions the sample's image binary is built from
# (image_modules_behind in hack/lib.sh).
set -o errexit -o nounset -o pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "${REPO_ROOT}/hack/lib.sh"

for mod in "${MODULES[@]}"; do
  if [[ "${mod}" == hack/kubelab ]]; then
    behind=($(image_modules_behind "${REPO_ROOT}"))
    if [[ ${#behind[@]} -gt 0 ]]; then
      (cd "${REPO_ROOT}/${mod}" && GOWORK=off go get "${behind[@]}")
    fi
  fi
  (cd "${REPO_ROOT}/${mod}" && go mod tidy)
done
