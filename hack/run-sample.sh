#!/usr/bin/env bash
# `make run`: runs the sample controller (sample-controller/) in the
# foreground, with its CRD installed.
#
# With a cluster configured ($KUBECONFIG, or ~/.kube/config) it runs against
# that cluster. Without one it builds and starts hack/kubelab (kube-apiserver,
# etcd and kube-controller-manager; no nodes) and runs against that. It
# prints how to create a Foo and watch it. Ctrl-C stops everything it started.
#
# Arguments are passed to the controller: hack/run-sample.sh --threadiness=4 -v=2
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SAMPLE="${REPO_ROOT}/sample-controller"
BIN="${REPO_ROOT}/_output/bin"
mkdir -p "${BIN}"

# Background jobs get process groups of their own, so that Ctrl-C reaches
# this script alone, which stops them in order: the controller drains its
# calls while the API server is still there, then the lab stops.
set -m
pids=()
cleanup() {
  trap - INT TERM EXIT
  # The controller first (it drains), then the lab.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    while kill -0 "${pids[i]}" 2>/dev/null; do
      wait "${pids[i]}" 2>/dev/null || true
    done
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

step() { echo "run: $*" >&2; }

# A kubectl that matches kubelab's apiserver.
step "building kubectl (the first build on a machine takes a minute or two)"
kubectl="$("${REPO_ROOT}/hack/build-kubectl.sh")"

step "building the sample controller"
(cd "${SAMPLE}" && GOWORK=off go build -o "${BIN}/sample-controller" .)

if [[ -n "${KUBECONFIG:-}" || -f "${HOME}/.kube/config" ]]; then
  where="the cluster of ${KUBECONFIG:-${HOME}/.kube/config} (context $("${kubectl}" config current-context 2>/dev/null || echo '?'))"
  kubeconfig_line=""
else
  step "no cluster configured (\$KUBECONFIG, ~/.kube/config): starting hack/kubelab (the first build on a machine takes several minutes)"
  kubelab="$("${REPO_ROOT}/hack/build-kubelab.sh")"
  # kubelab's first line on stdout is KUBECONFIG=<path>, written once the
  # apiserver is ready. Its directory, logs included, goes when it stops.
  fifo="$(mktemp -u)"
  mkfifo "${fifo}"
  "${kubelab}" --controller-manager >"${fifo}" &
  pids+=($!)
  exec 3<"${fifo}"
  rm -f "${fifo}"
  if ! IFS= read -r line <&3; then
    echo "kubelab failed to start" >&2
    exit 1
  fi
  export KUBECONFIG="${line#KUBECONFIG=}"
  where="kubelab: kube-apiserver v1.37.2 and kube-controller-manager, without nodes (Pods are stored, never run; logs in $(dirname "${KUBECONFIG}"))"
  kubeconfig_line="  export KUBECONFIG=${KUBECONFIG}"
fi

step "installing the Foo CRD (sample-controller/artifacts/crd.yaml)"
"${kubectl}" apply -f "${SAMPLE}/artifacts/crd.yaml" >&2
"${kubectl}" wait --for condition=Established --timeout=60s crd/foos.samplecontroller.kubehandler.dev >/dev/null

cat <<EOT

The sample controller runs against ${where}.
In another terminal:

${kubeconfig_line:+${kubeconfig_line}
}  alias kubectl=${kubectl}    # matches kubelab's kube-apiserver
  cd ${SAMPLE}
  kubectl apply -f artifacts/examples/foo.yaml      # a Foo, and its Deployment appears
  kubectl get foos,deployments -w
  kubectl patch foo example-foo --type merge -p '{"spec":{"replicas":3}}'
  kubectl label foo example-foo samplecontroller.kubehandler.dev/paused=   # pause it; label- resumes
  kubectl create namespace elsewhere && kubectl create configmap dependent -n elsewhere
  kubectl label configmap dependent -n elsewhere samplecontroller.kubehandler.dev/foo-uid=\$(kubectl get foo example-foo -o jsonpath='{.metadata.uid}')
  kubectl delete foo example-foo                    # the ConfigMap goes first, then the Foo

Metrics: http://127.0.0.1:8080/metrics  Health: http://127.0.0.1:8081/healthz, /readyz
Ctrl-C stops the controller$([[ ${#pids[@]} -gt 0 ]] && echo " and kubelab").

EOT

"${BIN}/sample-controller" \
  --metrics-bind-address=127.0.0.1:8080 \
  --health-probe-bind-address=127.0.0.1:8081 \
  "$@" &
pids+=($!)
# wait returns early when a trapped signal arrives; the trap then cleans up.
wait "${pids[-1]}"
