package kubelabtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
)

const modulePath = "github.com/kubehandler/kubehandler"

var binary struct {
	mu   sync.Mutex
	path string // set once a build has succeeded
}

// Binary returns the path of the kubelab binary: $KUBELAB_BIN if set,
// otherwise _output/bin/kubelab under the repository root, built (or found
// up to date) by hack/build-kubelab.sh. That script holds a file lock while
// it builds, so test packages running in parallel build only once; it runs at
// most once per process. The first build on a machine takes minutes.
func Binary(ctx context.Context) (string, error) {
	if bin := os.Getenv("KUBELAB_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("KUBELAB_BIN: %w", err)
		}
		return bin, nil
	}

	binary.mu.Lock()
	defer binary.mu.Unlock()
	if binary.path != "" {
		return binary.path, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "_output", "bin", "kubelab")); err != nil {
		fmt.Fprintln(os.Stderr, "kubelabtest: building kubelab; the first build on a machine takes several minutes")
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "build-kubelab.sh"))
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	// On cancel, kill the script and the go command it runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/build-kubelab.sh: %w\n%s", err, tail(stderr.String(), 40))
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	binary.path = lines[len(lines)-1]
	return binary.path, nil
}

// repoRoot finds the root of this repository: from this source file's
// location, or, when that is not a real path (-trimpath), by walking up from
// the working directory to the go.mod of module github.com/kubehandler/kubehandler.
func repoRoot() (string, error) {
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	for _, dir := range starts {
		for {
			if isRepoRoot(dir) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("cannot find the root of module %s from %q", modulePath, starts)
}

func isRepoRoot(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "module" {
			return f[1] == modulePath
		}
	}
	return false
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
