#!/usr/bin/env bash
# Fails if the generated code (deepcopy, clientset, listers, informers) is not
# what hack/update-codegen.sh makes from pkg/apis. It generates into a
# temporary copy of the module and compares; it changes nothing here.
set -o errexit -o nounset -o pipefail

MODULE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "${tmp}"' EXIT

cp -a "${MODULE_ROOT}/." "${tmp}/"
# A replace directive with a relative path (the library, ../, in the
# kubehandler repository) must point to the same directory from the copy.
awk '/=>/ { for (i = 1; i < NF; i++) if ($i == "=>") {
      mod = ($1 == "replace") ? $2 : $1; path = $(i + 1)
      if (path ~ /^\.\.?(\/|$)/) print mod, path } }' "${MODULE_ROOT}/go.mod" |
  while read -r mod path; do
    (cd "${tmp}" && go mod edit -replace "${mod}=$(cd "${MODULE_ROOT}/${path}" && pwd)")
  done

if ! out="$("${MODULE_ROOT}/hack/update-codegen.sh" "${tmp}" 2>&1)"; then
  echo "${out}" >&2
  exit 1
fi

if ! diff -ru "${MODULE_ROOT}/pkg" "${tmp}/pkg" >&2; then
  echo "The generated code is out of date; run hack/update-codegen.sh" >&2
  exit 1
fi
