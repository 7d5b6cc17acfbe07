# Sourced by hack/ scripts: what they share.

# The Go modules of the repository, relative to its root. hack/kubelab is a
# module of its own so that nothing of k8s.io/kubernetes reaches the library;
# sample-controller is one so that code-generator and what users copy with it
# stay out of the library too; hack/bench is one so that controller-runtime,
# measured beside the library, never enters its go.mod.
MODULES=(. hack/kubelab hack/bench sample-controller)

# image_modules_behind prints, as module@version, each module the sample's
# image binary is built from that hack/kubelab selects at another version.
# kubelab is built with the image's flags (hack/build-kubelab.sh), so with
# the same versions a first make test compiles client-go and the rest once
# for both; hack/update-gomod.sh requires these in hack/kubelab.
image_modules_behind() {
  local root="$1" sample kubelab
  sample="$(cd "${root}/sample-controller" && GOWORK=off CGO_ENABLED=0 go list -deps \
    -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}}{{end}}{{end}}' . | sort -u)"
  kubelab="$(cd "${root}/hack/kubelab" && GOWORK=off go list -m -f '{{.Path}} {{with .Replace}}{{.Version}}{{else}}{{.Version}}{{end}}' all | sort -u)"
  join <(echo "${sample}") <(echo "${kubelab}") | awk '$2 != $3 { print $1 "@" $2 }'
}
