// Package rename tests hack/rename.sh on a copy of the sample controller:
// the renamed copy must build, pass its unit tests, and no longer mention
// the old module path, API group or name.
package rename

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestRename(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a renamed copy of the module: tens of seconds")
	}
	const (
		module = "example.com/widget-controller"
		group  = "widgets.example.com"
		image  = "example.com/team/widget-controller"
	)
	library, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "widget-controller")
	run(t, "", "cp", "-a", "../..", dir)
	// What builds and tests wrote is not the sample's source.
	if err := os.RemoveAll(filepath.Join(dir, "_output")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("hack/rename.sh", module, group)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "KUBEHANDLER="+library, "IMAGE="+image)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/rename.sh: %v\n%s", err, out)
	}

	// Nothing of the old names is left, but for the upstream example's.
	// (The old image is kubehandler/NAME, with the new name by then.)
	err = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || path == filepath.Join(dir, "hack", "rename.sh") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		text := strings.ReplaceAll(string(data), "kubernetes/sample-controller", "")
		for _, old := range []string{"github.com/kubehandler/kubehandler/sample-controller", "samplecontroller.kubehandler.dev", "sample-controller", "kubehandler" + "/widget-controller"} {
			if strings.Contains(text, old) {
				t.Errorf("%s still mentions %s", strings.TrimPrefix(path, dir+"/"), old)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if crd, err := os.ReadFile(filepath.Join(dir, "artifacts", "crd.yaml")); err != nil || !strings.Contains(string(crd), "name: foos."+group) {
		t.Errorf("artifacts/crd.yaml does not define foos.%s (%v)", group, err)
	}
	// The image, in the Deployment and in what builds it.
	for _, file := range []string{"artifacts/deploy/deployment.yaml", "Makefile", "hack/deploy.sh", "hack/image/main.go"} {
		if data, err := os.ReadFile(filepath.Join(dir, file)); err != nil || !strings.Contains(string(data), image) {
			t.Errorf("%s does not name the image %s (%v)", file, image, err)
		}
	}
	// The renamed module's unit tests (they compare the CRD with the types).
	run(t, dir, "go", "test", "-count=1", "./pkg/...")
}

func run(t *testing.T, dir, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
