package kubelabtest

import (
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// dirPrefix is the prefix of lab directories in os.TempDir(), the same as
// kubelab's own temporary directories.
const dirPrefix = "kl-"

// removeStaleDirs removes the directories of labs whose supervisor has died
// without cleaning up (SIGKILL, or this test process killed before Stop).
// kubelab holds a flock on DIR/kubelab.pid while it runs: a directory whose
// pid file we can lock is stale. Directories without a pid file are being
// set up, or are not ours, and are left alone unless they are a day old.
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, dir := range dirs {
		if isStale(dir) {
			_ = os.RemoveAll(dir)
		}
	}
}

func isStale(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "kubelab.pid"))
	if err != nil {
		info, statErr := os.Stat(filepath.Join(dir, "kubelab.stderr"))
		return os.IsNotExist(err) && statErr == nil && time.Since(info.ModTime()) > 24*time.Hour
	}
	defer f.Close()
	// Held until f is closed, so no new kubelab can take the directory
	// while we look; none would, as Start always makes a new one.
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil
}
