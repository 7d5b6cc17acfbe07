#!/usr/bin/env bash
# Renames a copy of the sample controller: its Go module path, its API group
# and its name (binary, namespace, labels, image), then regenerates the
# clients and checks that it builds. Run it in the copy, not in the
# kubehandler repository.
#
# Use: hack/rename.sh MODULE GROUP [NAME]
#   MODULE  the new Go module path, e.g. example.com/widget-controller
#   GROUP   the new API group, e.g. widgets.example.com
#   NAME    the new name, default: the last element of MODULE
#
# The library: the sample's go.mod replaces github.com/kubehandler/kubehandler
# with ../ (the repository around it). Set KUBEHANDLER to a directory to
# replace it with that instead, or to a version (v0.3.0, latest) to depend on
# a release. Without KUBEHANDLER, a ../ that holds the library is kept, and
# otherwise the replace is dropped for the latest release.
#
# The image: IMAGE names its repository (registry/name, no tag), default
# NAME; artifacts/deploy, make image and make deploy use it.
#
# The kind stays Foo; README.md says how to rename it.
set -o errexit -o nounset -o pipefail

if [[ $# -lt 2 || $# -gt 3 ]]; then
  sed -n '2,/^set -o/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
new_module="$1" new_group="$2" new_name="${3:-${1##*/}}"
new_image="${IMAGE:-${new_name}}"
readonly LIBRARY=github.com/kubehandler/kubehandler

MODULE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${MODULE_ROOT}"
export GOWORK=off

old_module="$(awk '$1 == "module" { print $2; exit }' go.mod)"
old_group="$(sed -n 's/^const GroupName = "\(.*\)"$/\1/p' pkg/apis/*/register.go)"
old_name="${old_module##*/}"
if [[ -z "${old_group}" ]]; then
  echo "rename: cannot find the API group (const GroupName) in pkg/apis/*/register.go" >&2
  exit 1
fi
for v in new_module new_group new_name new_image; do
  if [[ ! "${!v}" =~ ^[A-Za-z0-9._/~-]+$ ]]; then
    echo "rename: ${v} ${!v@Q} has characters a module path, group or name cannot have" >&2
    exit 1
  fi
done

old_image="kubehandler/${old_name}"
echo "rename: ${old_module} -> ${new_module}, ${old_group} -> ${new_group}, ${old_name} -> ${new_name}, image ${old_image} -> ${new_image}" >&2
# The module path first: it contains the old name.
quote() { printf '%s' "$1" | sed 's/[.[\*^$/]/\\&/g'; }
sources() { find . -path ./_output -prune -o -type f \( -name '*.go' -o -name '*.yaml' -o -name '*.md' -o -name '*.sh' -o -name go.mod -o -name Dockerfile -o -name Makefile \) -not -path './hack/rename.sh' -print; }
# Mentions of kubernetes/sample-controller, the upstream example, stay. The
# image after the module path, which holds its name.
sources | xargs sed -i \
  -e "s/$(quote "${old_module}")/$(quote "${new_module}")/g" \
  -e "s/$(quote "${old_image}")/$(quote "${new_image}")/g" \
  -e "s/$(quote "${old_group}")/$(quote "${new_group}")/g" \
  -e "s/kubernetes\/$(quote "${old_name}")/@UPSTREAM@/g" \
  -e "s/$(quote "${old_name}")/$(quote "${new_name}")/g" \
  -e "s/@UPSTREAM@/kubernetes\/$(quote "${old_name}")/g"

# The library.
replace_dir="$(awk -v lib="${LIBRARY}" '$0 ~ "^replace " lib " => " { print $4 }' go.mod)"
case "${KUBEHANDLER:-}" in
  "")
    if [[ -n "${replace_dir}" ]] && grep -qs "^module ${LIBRARY}\$" "${replace_dir}/go.mod"; then
      echo "rename: keeping the library from ${replace_dir}" >&2
    else
      go mod edit -dropreplace "${LIBRARY}"
      go get "${LIBRARY}@latest"
    fi
    ;;
  v* | latest)
    go mod edit -dropreplace "${LIBRARY}"
    go get "${LIBRARY}@${KUBEHANDLER}"
    ;;
  *)
    go mod edit -replace "${LIBRARY}=$(cd "${KUBEHANDLER}" && pwd)"
    ;;
esac

hack/update-codegen.sh
go mod tidy
go build ./...
go vet ./...
echo "rename: done; the module builds. Review the changes, then commit." >&2
