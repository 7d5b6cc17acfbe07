#!/usr/bin/env bash
# Fails if the sample controller's generated code is not what its API types
# generate. It generates into a temporary copy and changes nothing here.
# Fix with hack/update-codegen.sh.
set -o errexit -o nounset -o pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "${REPO_ROOT}/sample-controller/hack/verify-codegen.sh"
