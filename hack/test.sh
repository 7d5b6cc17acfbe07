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
times="$(mktemp)"
# timed LABEL CMD...: runs CMD and records how long it took, for the table
# printed on the way out (what a first run on a fresh machine spends where).
timed() {
  local label="$1" start="${SECONDS}" status=0
  shift
  "$@" || status=$?
  printf '%-34s %5ds\n' "${label}" "$((SECONDS - start))" >>"${times}"
  return "${status}"
}
# A process group of its own (set -m), so that a failure or Ctrl-C here
# stops its go commands too.
set -m
(
  timed "vet hack/kubelab (background)" hack/verify-govet.sh hack/kubelab
  timed "build kubelab (background)" hack/build-kubelab.sh
  timed "build kubectl (background)" hack/build-kubectl.sh
) >"${log}" 2>&1 &
kubelab=$!
set +m
# On the way out, passed or not, the table of where the time went.
finish() {
  kill -- "-${kubelab}" 2>/dev/null || true
  echo "test: ${SECONDS}s in all; where the time went:" >&2
  cat "${times}" >&2
  rm -f "${log}" "${times}"
}
trap finish EXIT

others=()
for mod in "${MODULES[@]}"; do
  [[ "${mod}" == hack/kubelab ]] || others+=("${mod}")
done
timed "gofmt" hack/verify-gofmt.sh
for mod in "${others[@]}"; do
  timed "vet ${mod} (-race)" hack/verify-govet.sh "${mod}"
done
timed "go.mod tidiness" hack/verify-gomod.sh
timed "generated code" hack/verify-codegen.sh
timed "unit tests (-race)" "${MAKE}" test-unit

echo "test: waiting for hack/kubelab's vet and build" >&2
if ! timed "wait for hack/kubelab" wait "${kubelab}"; then
  cat "${log}" >&2
  echo "test: vetting or building hack/kubelab failed" >&2
  exit 1
fi
timed "integration tests (-race)" "${MAKE}" test-integration
timed "e2e tests (-race)" "${MAKE}" test-e2e
