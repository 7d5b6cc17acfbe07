#!/usr/bin/env bash
# Formats every Go file of the repository with gofmt.
set -o errexit -o nounset -o pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO_ROOT}"
git ls-files --cached --others --exclude-standard '*.go' | xargs -r gofmt -w
