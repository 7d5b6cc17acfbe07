package supervisor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// child is a component (apiserver or controller manager) running as a
// separate process: this same binary, started with a hidden subcommand.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited and been reaped
	err  error         // exit status; read only after done is closed
}

// startChild starts "self name args..." with its output appended to logPath.
// files are passed to the child as file descriptors 3, 4, ...
//
// The child is killed by the kernel when this process dies, even by SIGKILL
// (Pdeathsig), and runs in its own process group, so a Ctrl-C in a terminal
// reaches only this process, which then stops its children in order.
func startChild(self, name string, args []string, logPath string, files ...*os.File) (*child, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy

	cmd := exec.Command(self, append([]string{name}, args...)...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Pdeathsig: syscall.SIGKILL,
		Setpgid:   true,
	}
	if err := onSpawnerThread(cmd.Start); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// exited reports whether the process has exited.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends sig, waits up to grace for the process to exit, then kills it.
// It returns once the process is gone.
func (c *child) stop(sig syscall.Signal, grace time.Duration) {
	if err := c.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = c.cmd.Process.Kill()
	}
	select {
	case <-c.done:
		return
	case <-time.After(grace):
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

// Pdeathsig fires when the thread that started the child exits, not the
// process (see the syscall.SysProcAttr docs). Children are therefore started
// from one goroutine locked to its thread for the life of the process: that
// thread never exits before the process does.
var spawner struct {
	once sync.Once
	reqs chan func()
}

func onSpawnerThread(f func() error) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan func())
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for req := range spawner.reqs {
				req()
			}
		}()
	})
	errc := make(chan error, 1)
	spawner.reqs <- func() { errc <- f() }
	return <-errc
}
