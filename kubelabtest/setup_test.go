package kubelabtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehandler/kubehandler/kubelabtest/internal/labbin"
)

func TestSetupRanBeforeTheTests(t *testing.T) {
	if _, err := Default().Client().CoreV1().ConfigMaps(metav1.NamespaceDefault).Get(t.Context(), setupConfigMap, metav1.GetOptions{}); err != nil {
		t.Errorf("the ConfigMap Setup creates: %v", err)
	}
}

// TestCopiedKubelabSource is what a user's repository does to get the
// binary: copy hack/kubelab/ and hack/build-kubelab.sh into its own hack/.
// From a package below, the copy is found and built into the repository's
// _output/bin/kubelab, and the binary runs. (The Go build cache makes this
// a relink, not the first build's minutes.)
func TestCopiedKubelabSource(t *testing.T) {
	if testing.Short() {
		t.Skip("links a kubelab binary: tens of seconds")
	}
	_, file, _, _ := runtime.Caller(0)
	kubehandler := filepath.Join(filepath.Dir(file), "..")
	repo := t.TempDir()
	if err := os.MkdirAll(filepath.Join(repo, "hack"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"hack/kubelab", "hack/build-kubelab.sh"} {
		if out, err := exec.Command("cp", "-r", filepath.Join(kubehandler, p), filepath.Join(repo, "hack")).CombinedOutput(); err != nil {
			t.Fatalf("cp %s: %v\n%s", p, err, out)
		}
	}
	pkg := filepath.Join(repo, "pkg", "controller")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	bin, err := labbin.Find(t.Context(), "", []string{pkg}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("built the copy in %v", time.Since(start).Round(time.Millisecond))
	if want := filepath.Join(repo, "_output", "bin", "kubelab"); bin != want {
		t.Errorf("binary %s, want %s", bin, want)
	}
	if out, err := exec.Command(bin, "--help").CombinedOutput(); err != nil {
		t.Errorf("%s --help: %v\n%s", bin, err, out)
	}
}
