// Package chromiumtest renders pages in headless Chromium for tests of the
// integration tier: Debian's chromium package, which hack/ensure-chromium.sh
// installs when it is missing, as hack/build-kubelab.sh builds kubelab.
//
// Tests fail, never skip, when Chromium cannot be found or installed.
package chromiumtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const modulePath = "github.com/kubehandler/kubehandler"

var binary struct {
	mu   sync.Mutex
	path string // set once hack/ensure-chromium.sh has succeeded
}

// Binary returns the path of Chromium: $CHROMIUM_BIN if set (make
// test-integration sets it), otherwise what hack/ensure-chromium.sh prints,
// which installs Debian's chromium package when /usr/bin/chromium is
// missing. The script runs at most once per process.
func Binary(ctx context.Context) (string, error) {
	if bin := os.Getenv("CHROMIUM_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("CHROMIUM_BIN: %w", err)
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
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "ensure-chromium.sh"))
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("CHROMIUM_BIN is not set and hack/ensure-chromium.sh failed: %w\n%s", err, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	binary.path = lines[len(lines)-1]
	return binary.path, nil
}

// flags run Chromium headless in a container as root, with nothing of its
// own on the network: no sandbox (it needs user namespaces), no GPU, no
// QUIC, no first-run, sync, update or background requests.
var flags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
}

// timeout bounds one Chromium run; a cold start on a small, busy machine
// takes a few seconds.
const timeout = 2 * time.Minute

// DumpDOM loads url in headless Chromium and returns the DOM once the page
// has loaded, serialized as HTML: what the browser parsed and built, not the
// bytes the server sent. It fails the test if Chromium cannot be found,
// does not exit in time, or exits with an error.
func DumpDOM(t testing.TB, url string) string {
	t.Helper()
	return string(run(t, "--dump-dom", url))
}

// Screenshot loads url in headless Chromium at the given window size and
// returns the PNG it renders. It fails the test as DumpDOM does, or if no
// PNG was written.
func Screenshot(t testing.TB, url string, width, height int) []byte {
	t.Helper()
	file := filepath.Join(t.TempDir(), "screenshot.png")
	run(t, "--screenshot="+file, fmt.Sprintf("--window-size=%d,%d", width, height), "--hide-scrollbars", url)
	png, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v", err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("chromium's screenshot is not a PNG (%d bytes)", len(png))
	}
	return png
}

// run runs Chromium with flags, a fresh profile and args, and returns its
// standard output.
func run(t testing.TB, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	bin, err := Binary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all := append(append(slices.Clone(flags), "--user-data-dir="+t.TempDir()), args...)
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, all...)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	// Chromium starts helper processes: on timeout, kill them all.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v after %v\n%s", bin, strings.Join(args, " "), err, time.Since(start).Round(time.Millisecond), tail(stderr.String(), 30))
	}
	return stdout.Bytes()
}

// repoRoot finds the root of this repository from this source file's
// location, or by walking up from the working directory.
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
			if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
				strings.HasPrefix(string(data), "module "+modulePath+"\n") {
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

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
