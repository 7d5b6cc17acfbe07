#!/usr/bin/env bash
# Generates the deepcopy functions of the API types (pkg/apis/*/*/zz_generated.deepcopy.go)
# and the typed clientset, listers and informers (pkg/generated/) with
# k8s.io/code-generator, pinned by the `tool` lines of go.mod and run with
# `go tool`: nothing is installed, and it works offline once the module cache
# has the tools. Run it after editing pkg/apis; commit what it writes.
#
# Use: hack/update-codegen.sh [DIR]   (DIR: the module to generate in; default: this one)
set -o errexit -o nounset -o pipefail

MODULE_ROOT="$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd)"
cd "${MODULE_ROOT}"
# Generated code must not depend on a workspace the caller happens to have.
export GOWORK=off

module="$(go list -m)"
boilerplate="${MODULE_ROOT}/hack/boilerplate.go.txt"
apis_pkg="${module}/pkg/apis"
out_pkg="${module}/pkg/generated"

# The API packages: pkg/apis/<group>/<version>.
group_versions=()
packages=()
for dir in pkg/apis/*/*/; do
  dir="${dir%/}"
  [[ "$(basename "${dir}")" =~ ^v[0-9]+((alpha|beta)[0-9]+)?$ ]] || continue
  group_versions+=("${dir#pkg/apis/}")
  packages+=("${module}/${dir}")
done
if [[ ${#packages[@]} -eq 0 ]]; then
  echo "no API packages found under ${MODULE_ROOT}/pkg/apis/<group>/<version>" >&2
  exit 1
fi

# Start clean, so that code of removed types does not linger.
find pkg/apis -name zz_generated.deepcopy.go -delete
rm -rf pkg/generated

echo "deepcopy-gen: ${group_versions[*]}" >&2
go tool deepcopy-gen \
  --go-header-file "${boilerplate}" \
  --output-file zz_generated.deepcopy.go \
  "${packages[@]}"

inputs=()
for gv in "${group_versions[@]}"; do
  inputs+=(--input "${gv}")
done
echo "client-gen, lister-gen, informer-gen: ${group_versions[*]}" >&2
go tool client-gen \
  --go-header-file "${boilerplate}" \
  --clientset-name versioned \
  --input-base "${apis_pkg}" \
  "${inputs[@]}" \
  --output-dir pkg/generated/clientset \
  --output-pkg "${out_pkg}/clientset"

go tool lister-gen \
  --go-header-file "${boilerplate}" \
  --output-dir pkg/generated/listers \
  --output-pkg "${out_pkg}/listers" \
  "${packages[@]}"

go tool informer-gen \
  --go-header-file "${boilerplate}" \
  --versioned-clientset-package "${out_pkg}/clientset/versioned" \
  --listers-package "${out_pkg}/listers" \
  --output-dir pkg/generated/informers \
  --output-pkg "${out_pkg}/informers" \
  "${packages[@]}"
