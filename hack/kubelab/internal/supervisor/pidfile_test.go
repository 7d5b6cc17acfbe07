package supervisor

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestLockPIDFile(t *testing.T) {
	dir := t.TempDir()
	f, err := lockPIDFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, pidFileName))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(data)); got != strconv.Itoa(os.Getpid()) {
		t.Errorf("pid file holds %q, want our pid %d", got, os.Getpid())
	}
	if !isLocked(t, filepath.Join(dir, pidFileName)) {
		t.Error("pid file is not locked while the lab runs")
	}
	if _, err := lockPIDFile(dir); err == nil {
		t.Error("a second lab could lock the same directory")
	}

	f.Close() // what the kernel does when the supervisor dies
	if isLocked(t, filepath.Join(dir, pidFileName)) {
		t.Error("pid file is still locked after its holder closed it")
	}
	g, err := lockPIDFile(dir)
	if err != nil {
		t.Fatalf("locking a directory left by a dead lab: %v", err)
	}
	g.Close()
}

// isLocked reports whether another open file description holds a lock on path.
func isLocked(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB) != nil
}
