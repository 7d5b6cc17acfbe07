#!/usr/bin/env bash
# Applies the controller to the current cluster (the CRD, artifacts/deploy/)
# with the image IMAGE, or deletes it: `make deploy` and `make undeploy`.
# Through kustomize, as `kubectl apply -k` takes it: a kustomization in
# DEPLOY_DIR that sets IMAGE on artifacts/kustomization.yaml.
#
# Use: [IMAGE=registry/name:tag|registry/name@sha256:...] hack/deploy.sh apply|delete [kubectl flags]
#   IMAGE    default kubehandler/sample-controller:dev, the Deployment's
#   KUBECTL  the kubectl to run; default: kubectl on PATH, else (inside the
#            kubehandler repository) one built by ../hack/build-kubectl.sh
#   DEPLOY_DIR  where to write the kustomization, default _output/deploy
# The cluster is kubectl's: $KUBECONFIG or ~/.kube/config. delete also
# removes the CRD, and with it every Foo.
set -o errexit -o nounset -o pipefail

if [[ $# -lt 1 || ( "$1" != apply && "$1" != delete ) ]]; then
  sed -n '2,/^set -o/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
fi
verb="$1"
shift

MODULE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly DEFAULT_IMAGE=kubehandler/sample-controller
image="${IMAGE:-${DEFAULT_IMAGE}:dev}"

# IMAGE as kustomize's images entry: name, then a digest or a tag.
if [[ "${image}" == *@* ]]; then
  new_name="${image%%@*}" pin="digest: ${image#*@}"
elif [[ "${image##*/}" == *:* ]]; then
  new_name="${image%:*}" pin="newTag: ${image##*:}"
else
  new_name="${image}" pin="newTag: latest"
fi
if [[ -z "${new_name}" || "${new_name}" =~ [[:space:]] ]]; then
  echo "deploy: IMAGE ${image@Q} is not an image reference" >&2
  exit 2
fi

kubectl="${KUBECTL:-}"
if [[ -z "${kubectl}" ]]; then
  if command -v kubectl >/dev/null; then
    kubectl=kubectl
  elif [[ -x "${MODULE_ROOT}/../hack/build-kubectl.sh" ]]; then
    echo "deploy: no kubectl on PATH; building one (the first build takes a minute or two)" >&2
    kubectl="$("${MODULE_ROOT}/../hack/build-kubectl.sh")"
  else
    echo "deploy: no kubectl on PATH; install one or set KUBECTL" >&2
    exit 1
  fi
fi

overlay="${DEPLOY_DIR:-${MODULE_ROOT}/_output/deploy}"
mkdir -p "${overlay}"
overlay="$(cd "${overlay}" && pwd)"
cat >"${overlay}/kustomization.yaml" <<EOT
# Written by hack/deploy.sh: artifacts/ with the image ${image}.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="${overlay}" "${MODULE_ROOT}/artifacts")
images:
  - name: ${DEFAULT_IMAGE}
    newName: ${new_name}
    ${pin}
EOT

if [[ "${verb}" == apply ]]; then
  echo "deploy: applying $(realpath --relative-to=. "${overlay}") with image ${image}" >&2
  exec "${kubectl}" apply -k "${overlay}" "$@"
fi
echo "deploy: deleting what $(realpath --relative-to=. "${overlay}") applies" >&2
exec "${kubectl}" delete --ignore-not-found -k "${overlay}" "$@"
