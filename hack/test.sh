#!/usr/bin/env bash
# make test: verify, then every test tier, with -race. On a first run most
# of the time goes to compiling Kubernetes for hack/kubelab (etcd,
# kube-apiserver, kube-controller-manager, kubectl), which only the
# integration and e2e tiers need; so that module is vetted and built in the
# background while the rest is verified and the unit tests run, and the
# kubelab tiers wait for it. Later runs find it all in Go's build cache.
set -o errexit -o nounset -o pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${REPO_ROOT}"
source hack/lib.sh
MAKE="${MAKE:-make}"

log="$(mktemp)"
# A process group of its own (set -m), so that a failure or Ctrl-C here
# stops its go commands too.
set -m
(
  hack/verify-govet.sh hack/kubelab
  hack/build-kubelab.sh
  hack/build-kubectl.sh
) >"${log}" 2>&1 &
kubelab=$!
set +m
trap 'kill -- "-${kubelab}" 2>/dev/null || true; rm -f "${log}"' EXIT

others=()
for mod in "${MODULES[@]}"; do
  [[ "${mod}" == hack/kubelab ]] || others+=("${mod}")
done
hack/verify-gofmt.sh
hack/verify-govet.sh "${others[@]}"
hack/verify-gomod.sh
hack/verify-codegen.sh
"${MAKE}" test-unit

echo "test: waiting for hack/kubelab's vet and build" >&2
if ! wait "${kubelab}"; then
  cat "${log}" >&2
  echo "test: vetting or building hack/kubelab failed" >&2
  exit 1
fi
"${MAKE}" test-integration test-e2e
