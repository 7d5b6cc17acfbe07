#!/usr/bin/env bash
# Runs go vet over the modules of the repository: the ones given (paths
# relative to the root), or all of them.
#
# The modules whose tests run with -race are vetted with -race too: vet
# compiles every dependency, and so it compiles them as the race build of
# their tests does, once, rather than a second time without -race.
# hack/kubelab is vetted without -race, with CGO_ENABLED=0 and -trimpath: it
# is built so (hack/build-kubelab.sh), and its build then compiles nothing
# again.
set -o errexit -o nounset -o pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "${REPO_ROOT}/hack/lib.sh"

mods=("$@")
if [[ ${#mods[@]} -eq 0 ]]; then
  mods=("${MODULES[@]}")
fi
for mod in "${mods[@]}"; do
  env=() flags=(-race)
  if [[ "${mod}" == hack/kubelab ]]; then
    env=(CGO_ENABLED=0) flags=(-trimpath)
  fi
  (cd "${REPO_ROOT}/${mod}" && env GOWORK=off "${env[@]}" go vet "${flags[@]}" ./...)
done
