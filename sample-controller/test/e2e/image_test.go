package e2e

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehandler/kubehandler/kubelabtest"
)

// moduleRoot is the sample's module, from this package's directory.
const moduleRoot = "../.."

// TestImage builds the image as make image does (twice: the same digest),
// reads it back, applies the manifests as make deploy does (a server-side
// dry run, then for real) with the image pinned by digest, and runs the
// binary taken from the image's layer with the args of the Deployment that
// landed: the Foo flow passes with it.
//
// No container runs here (no container runtime works on these machines;
// kubelab has no kubelet), so the test runs the image's binary itself, with
// what a Pod would give it in other ways: a kubeconfig for the
// ServiceAccount in place of its token, the Pod's namespace for the Lease,
// and addresses of its own in place of the Pod's network namespace.
func TestImage(t *testing.T) {
	dir := t.TempDir()
	layoutDir := filepath.Join(dir, "image")
	digest := buildImage(t, layoutDir)
	if again := buildImage(t, filepath.Join(dir, "again")); again != digest {
		t.Errorf("a second build of the same sources: digest %s, want %s", again, digest)
	}

	img := readImage(t, layoutDir)
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "65532:65532" || !slices.Equal(cfg.Config.Entrypoint, []string{"/sample-controller"}) || cfg.OS != "linux" {
		t.Errorf("config: user %q entrypoint %q os %q, want 65532:65532 [/sample-controller] linux", cfg.Config.User, cfg.Config.Entrypoint, cfg.OS)
	}
	revision, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	labels := cfg.Config.Labels
	if got, want := labels["org.opencontainers.image.revision"], strings.TrimSpace(string(revision)); got != want {
		t.Errorf("label revision %q, want %q", got, want)
	}
	for _, l := range []string{"org.opencontainers.image.source", "org.opencontainers.image.version"} {
		if labels[l] == "" {
			t.Errorf("no label %s: %v", l, labels)
		}
	}
	bin := filepath.Join(dir, "sample-controller")
	extractFile(t, img, "sample-controller", bin)
	// Static (an empty base has no libc) and built without local paths.
	buildInfo, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatalf("go version -m: %v", err)
	}
	for _, setting := range []string{"CGO_ENABLED=0", "-trimpath=true", "GOOS=linux"} {
		if !strings.Contains(string(buildInfo), setting) {
			t.Errorf("the image's binary was not built with %s:\n%s", setting, buildInfo)
		}
	}

	// The manifests, as make deploy applies them, with the image pinned.
	c := newClients(t, labConfig())
	image := "kubehandler/sample-controller@" + digest.String()
	deployments := c.kube.AppsV1().Deployments("sample-controller")
	deploy(t, image, "apply", "--dry-run=server")
	if _, err := deployments.Get(t.Context(), "sample-controller", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("after a dry run, getting the Deployment: %v, want NotFound", err)
	}
	deploy(t, image, "apply")
	t.Cleanup(func() {
		// The rest stays for the other tests: TestMain created it.
		err := deployments.Delete(context.WithoutCancel(t.Context()), "sample-controller", metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("deleting the Deployment: %v", err)
		}
	})
	d, err := deployments.Get(t.Context(), "sample-controller", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	container := d.Spec.Template.Spec.Containers[0]
	if container.Image != image {
		t.Errorf("the Deployment's image is %s, want %s", container.Image, image)
	}
	if d.Spec.Template.Spec.ServiceAccountName != "sample-controller" {
		t.Errorf("the Deployment runs as ServiceAccount %q, want sample-controller", d.Spec.Template.Spec.ServiceAccountName)
	}
	// make undeploy would remove all it applied: the dry run says so.
	out := deploy(t, image, "delete", "--dry-run=server")
	for _, obj := range []string{
		`customresourcedefinition.apiextensions.k8s.io "foos.samplecontroller.kubehandler.dev" deleted`,
		`namespace "sample-controller" deleted`,
		`deployment.apps "sample-controller" deleted`,
		`serviceaccount "sample-controller" deleted`,
	} {
		if !strings.Contains(out, obj) {
			t.Errorf("undeploy's dry run does not say %s:\n%s", obj, out)
		}
	}

	// The image's binary, with the Deployment's args.
	probeAddr, metrics := freeAddr(t), freeAddr(t)
	args := append(slices.Clone(container.Args),
		"--kubeconfig", controllerKubeconfig,
		"--leader-elect-resource-namespace", d.Namespace,
		// A Lease of its own: another test's killed leader may hold the
		// usual one until it expires.
		"--leader-elect-resource-name", "sample-controller-image",
		"--health-probe-bind-address", probeAddr,
		"--metrics-bind-address", metrics,
	)
	if !slices.Contains(container.Args, "--leader-elect") {
		t.Errorf("the Deployment's args %q lack --leader-elect, which its two replicas need", container.Args)
	}
	p := launchBinary(t, "image", bin, probeAddr, metrics, args)
	p.waitReady(t, timeout)

	ns := newNamespace(t, c)
	foo, err := c.foo.SamplecontrollerV1alpha1().Foos(ns).Create(t.Context(), newFoo(ns, "foo", 2), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitForDeployment(t, c, foo, 2)
	waitForReady(t, c, foo)
	if code := p.terminate(t, timeout); code != 0 {
		t.Errorf("the image's binary exited %d after SIGTERM, want 0", code)
	}
}

var digestLine = regexp.MustCompile(`(?m)^digest: (sha256:[0-9a-f]{64})$`)

// buildImage builds the image into the layout at dir, as make image does,
// and returns the digest it printed.
func buildImage(t *testing.T, dir string) v1.Hash {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", "run", "./hack/image", "build", "--output", dir)
	cmd.Dir = moduleRoot
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/image build: %v", err)
	}
	m := digestLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("hack/image build printed no digest:\n%s", out)
	}
	h, err := v1.NewHash(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	if got := readImage(t, dir); digestOf(t, got) != h {
		t.Errorf("the layout's image has digest %s, the build printed %s", digestOf(t, got), h)
	}
	return h
}

// readImage returns the one image of the OCI layout at dir.
func readImage(t *testing.T, dir string) v1.Image {
	t.Helper()
	index, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := index.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 {
		t.Fatalf("the layout holds %d images, want 1", len(m.Manifests))
	}
	img, err := index.Image(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func digestOf(t *testing.T, img v1.Image) v1.Hash {
	t.Helper()
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// extractFile writes the file name of the image's filesystem to path,
// executable, and checks that it is the only file of the image.
func extractFile(t *testing.T, img v1.Image, name, path string) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Errorf("%d layers, want 1 (the binary on an empty base)", len(layers))
	}
	fs := mutate.Extract(img)
	defer fs.Close()
	tr := tar.NewReader(fs)
	found := false
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if hdr.Name != name {
			t.Errorf("the image holds %s, want %s alone", hdr.Name, name)
			continue
		}
		found = true
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(f, tr); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if !found {
		t.Fatalf("the image holds no %s", name)
	}
}

// deploy runs hack/deploy.sh (make deploy, make undeploy) against the lab
// with the image, and returns what it printed.
func deploy(t *testing.T, image, verb string, flags ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "hack/deploy.sh", append([]string{verb}, flags...)...)
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(),
		"IMAGE="+image,
		"KUBECONFIG="+kubelabtest.Default().KubeconfigPath(),
		"DEPLOY_DIR="+filepath.Join(t.TempDir(), "deploy"),
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hack/deploy.sh %s %s: %v\n%s", verb, strings.Join(flags, " "), err, out)
	}
	return string(out)
}
