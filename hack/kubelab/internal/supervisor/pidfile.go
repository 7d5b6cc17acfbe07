package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// pidFileName is the file in the lab directory that holds the supervisor's
// pid. The supervisor keeps an exclusive flock on it while it runs; the
// kernel drops the lock when the process dies, however it dies. A directory
// whose pid file can be locked by someone else is therefore left over from a
// dead supervisor and may be removed (kubelabtest does so).
const pidFileName = "kubelab.pid"

// lockPIDFile writes and locks dir/kubelab.pid. The file is locked before it
// gets its final name, so nobody ever sees it unlocked while we live.
// The returned file must stay open for as long as the lock should be held.
func lockPIDFile(dir string) (*os.File, error) {
	if old, err := os.Open(filepath.Join(dir, pidFileName)); err == nil {
		err := syscall.Flock(int(old.Fd()), syscall.LOCK_SH|syscall.LOCK_NB)
		old.Close()
		if err != nil {
			return nil, fmt.Errorf("another kubelab is using %s", dir)
		}
	}
	tmp := filepath.Join(dir, pidFileName+".tmp")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", tmp, err)
	}
	if _, err := f.WriteString(strconv.Itoa(os.Getpid()) + "\n"); err != nil {
		f.Close()
		return nil, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, pidFileName)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
