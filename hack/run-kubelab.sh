#!/usr/bin/env bash
# Builds kubelab and runs it with the controller manager in the foreground,
# printing how to point kubectl at it. Ctrl-C stops it and removes its files.
set -o errexit -o nounset -o pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
echo "Building kubelab (the first build takes several minutes)..." >&2
KUBELAB_BIN="$("${REPO_ROOT}/hack/build-kubelab.sh")"

# kubelab's first line on stdout is KUBECONFIG=<path>, written once it is ready.
exec 3< <(exec "${KUBELAB_BIN}" --controller-manager)
pid=$!
trap 'kill -TERM "${pid}" 2>/dev/null || true' INT TERM

if ! IFS= read -r line <&3; then
  wait "${pid}" || true
  echo "kubelab failed to start" >&2
  exit 1
fi
kubeconfig="${line#KUBECONFIG=}"
dir="$(dirname "${kubeconfig}")"

cat <<EOT

kubelab is running: kube-apiserver v1.37.2 and kube-controller-manager
(no scheduler, no kubelet: Pods are stored but never run).

  export KUBECONFIG=${kubeconfig}
  kubectl get namespaces

EOT
if ! command -v kubectl >/dev/null; then
  echo "kubectl is not installed here; the kubelab module builds the matching one:"
else
  echo "Or with a kubectl matching the server, built by the kubelab module:"
fi
cat <<EOT

  (cd ${REPO_ROOT}/hack/kubelab && go tool kubectl get namespaces)

EOT
cat <<EOT
Logs: ${dir}/*.log
Control API: curl --unix-socket ${dir}/control.sock http://lab/status
Stop with Ctrl-C.
EOT

# wait returns early when a trapped signal arrives; wait again for the exit.
while kill -0 "${pid}" 2>/dev/null; do
  wait "${pid}" || true
done
