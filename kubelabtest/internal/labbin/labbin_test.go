package labbin

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// With no KUBELAB_BIN and no kubelab source, the error says what to do.
func TestNotFoundSaysWhatToDo(t *testing.T) {
	dir := t.TempDir()
	_, err := Find(t.Context(), "", []string{dir}, &bytes.Buffer{})
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("Find = %v, want a NotFoundError", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"no kubelab binary: KUBELAB_BIN is not set",
		"make kubelab-bin",
		"export KUBELAB_BIN=",
		"hack/kubelab/ and hack/build-kubelab.sh",
		"into your\n     repository's hack/ directory",
		"in and above: " + dir,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the message does not say %q:\n%s", want, msg)
		}
	}
}

func TestKubelabBinWins(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "kubelab")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Find(t.Context(), bin, nil, &bytes.Buffer{})
	if err != nil || got != bin {
		t.Errorf("Find = %q, %v; want %q", got, err, bin)
	}
	if _, err := Find(t.Context(), bin+".missing", nil, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "KUBELAB_BIN") {
		t.Errorf("a KUBELAB_BIN that does not exist: %v", err)
	}
}

// writeSource makes dir a kubelab source whose build script prints path
// (and says it built, on stderr, as the real one does).
func writeSource(t *testing.T, dir, script string) {
	t.Helper()
	for name, content := range map[string]string{
		"hack/build-kubelab.sh": script,
		"hack/kubelab/go.mod":   "module example.com/kubelab\n",
	} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// A copy of hack/kubelab and hack/build-kubelab.sh in a user's repository
// is found from a package below it, and built by its script.
func TestSourceAboveIsBuilt(t *testing.T) {
	repo := t.TempDir()
	writeSource(t, repo, "#!/usr/bin/env bash\necho building >&2\necho \"$(dirname \"$0\")/../_output/bin/kubelab\"\n")
	pkg := filepath.Join(repo, "internal", "controller")
	if err := os.MkdirAll(pkg, 0o755); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	got, err := Find(t.Context(), "", []string{filepath.Join(t.TempDir(), "elsewhere"), pkg}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if want := repo + "/hack/../_output/bin/kubelab"; got != want {
		t.Errorf("Find = %q, want %q", got, want)
	}
	if !strings.Contains(progress.String(), "the first build on a machine takes several minutes") {
		t.Errorf("no word of a first build: %q", progress.String())
	}
}

// A directory with hack/build-kubelab.sh but no hack/kubelab (the library
// in the Go module cache) is not a kubelab source.
func TestModuleCacheCopyIsNotASource(t *testing.T) {
	dir := t.TempDir()
	writeSource(t, dir, "#!/usr/bin/env bash\nexit 1\n")
	if err := os.RemoveAll(filepath.Join(dir, "hack", "kubelab")); err != nil {
		t.Fatal(err)
	}
	var nf *NotFoundError
	if _, err := Find(t.Context(), "", []string{dir}, &bytes.Buffer{}); !errors.As(err, &nf) {
		t.Errorf("Find = %v, want a NotFoundError", err)
	}
}

func TestFailedBuildShowsItsOutput(t *testing.T) {
	dir := t.TempDir()
	writeSource(t, dir, "#!/usr/bin/env bash\necho 'go: cannot find module' >&2\nexit 1\n")
	_, err := Find(t.Context(), "", []string{dir}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "go: cannot find module") {
		t.Errorf("Find = %v, want the script's stderr", err)
	}
}
