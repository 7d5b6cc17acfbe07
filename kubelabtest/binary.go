package kubelabtest

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/kubehandler/kubehandler/kubelabtest/internal/labbin"
)

var binary struct {
	mu   sync.Mutex
	path string // set once a build has succeeded
}

// Binary returns the path of the kubelab binary that Start runs:
//
//   - $KUBELAB_BIN, if set;
//   - otherwise the one built by hack/build-kubelab.sh of the first kubelab
//     source (a directory holding hack/build-kubelab.sh and hack/kubelab/)
//     in or above this package's source directory (in the kubehandler
//     repository, or a module that replaces the library with a checkout of
//     it) or the working directory (a repository that has a copy of both).
//     The script builds into _output/bin/kubelab beside hack/, holds a file
//     lock while it builds, so that test packages running at once build
//     once, and runs at most once per process. The first build on a
//     machine takes minutes; later ones, seconds.
//
// Otherwise it returns an error that says how to get the binary (the
// package doc says it too).
func Binary(ctx context.Context) (string, error) {
	if bin := os.Getenv(labbin.Env); bin != "" {
		return labbin.Find(ctx, bin, nil, os.Stderr)
	}
	binary.mu.Lock()
	defer binary.mu.Unlock()
	if binary.path != "" {
		return binary.path, nil
	}
	var starts []string
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	path, err := labbin.Find(ctx, "", starts, os.Stderr)
	if err != nil {
		return "", err
	}
	binary.path = path
	return path, nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string { return labbin.Tail(s, n) }
