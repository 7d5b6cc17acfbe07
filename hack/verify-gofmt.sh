#!/usr/bin/env bash
# Fails if any Go file is not gofmt-formatted. Fix with hack/update-gofmt.sh.
set -o errexit -o nounset -o pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO_ROOT}"

files="$(git ls-files --cached --others --exclude-standard '*.go' | xargs -r gofmt -l)"
if [[ -n "${files}" ]]; then
  echo "These files are not gofmt-formatted; run hack/update-gofmt.sh:" >&2
  echo "${files}" >&2
  exit 1
fi
