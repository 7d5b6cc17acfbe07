// Package labbin finds the kubelab binary for kubelabtest, or builds it
// from a kubelab source: hack/kubelab and hack/build-kubelab.sh, in the
// kubehandler repository or copied into the user's.
package labbin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// Env is the environment variable that names a kubelab binary.
const Env = "KUBELAB_BIN"

// Find returns the path of a kubelab binary: env (the value of $KUBELAB_BIN)
// if it is not empty, otherwise the binary that the hack/build-kubelab.sh
// of the first kubelab source found in or above one of starts builds (it
// prints the path; it holds a file lock while it builds, so that test
// packages running at once build once). A kubelab source is a directory
// with hack/build-kubelab.sh and hack/kubelab/go.mod: a module's copy in
// the Go module cache has no hack/kubelab (a nested module is not part of
// it), so it is passed over. Before a first build, Find says so on
// progress. With neither, it returns a *NotFoundError.
func Find(ctx context.Context, env string, starts []string, progress io.Writer) (string, error) {
	if env != "" {
		if _, err := os.Stat(env); err != nil {
			return "", fmt.Errorf("%s: %w", Env, err)
		}
		return env, nil
	}
	root, ok := findSource(starts)
	if !ok {
		return "", &NotFoundError{Searched: starts}
	}
	return build(ctx, root, progress)
}

// findSource returns the first directory in or above one of starts that
// holds a kubelab source.
func findSource(starts []string) (string, bool) {
	for _, dir := range starts {
		for {
			if isSource(dir) {
				return dir, true
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", false
}

func isSource(dir string) bool {
	for _, f := range []string{filepath.Join("hack", "build-kubelab.sh"), filepath.Join("hack", "kubelab", "go.mod")} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return false
		}
	}
	return true
}

// build runs root's hack/build-kubelab.sh and returns the path it prints
// last.
func build(ctx context.Context, root string, progress io.Writer) (string, error) {
	if _, err := os.Stat(filepath.Join(root, "_output", "bin", "kubelab")); err != nil {
		fmt.Fprintf(progress, "kubelabtest: building kubelab with %s; the first build on a machine takes several minutes\n", filepath.Join(root, "hack", "build-kubelab.sh"))
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "build-kubelab.sh"))
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	// On cancel, kill the script and the go command it runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w\n%s", filepath.Join(root, "hack", "build-kubelab.sh"), err, Tail(stderr.String(), 40))
	}
	fields := strings.Fields(stdout.String())
	if len(fields) == 0 {
		return "", errors.New(filepath.Join(root, "hack", "build-kubelab.sh") + " printed no path")
	}
	return fields[len(fields)-1], nil
}

// NotFoundError says that there is no kubelab binary, and what to do.
type NotFoundError struct {
	// Searched are the directories in and above which Find looked for a
	// kubelab source.
	Searched []string
}

func (e *NotFoundError) Error() string {
	return `no kubelab binary: ` + Env + ` is not set, and there is no kubelab source to build one from.
kubelabtest runs a real kube-apiserver and etcd: hack/kubelab of the kubehandler
repository (module github.com/kubehandler/kubehandler), a Go module that
"go install" refuses (it needs replace directives). Do one of:
  1. Build it once in a clone of the kubehandler repository, and point ` + Env + ` at it:
         cd kubehandler && make kubelab-bin    # prints the binary's path; minutes the first time
         export ` + Env + `=<the path it printed>
  2. Copy hack/kubelab/ and hack/build-kubelab.sh of that clone into your
     repository's hack/ directory: kubelabtest then builds the binary there
     (into _output/bin/kubelab) the first time, and finds it after.
Looked for hack/build-kubelab.sh beside hack/kubelab/go.mod in and above: ` + strings.Join(e.Searched, ", ")
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
