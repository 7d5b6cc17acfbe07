package kubelabtest

import "syscall"

// labProcAttr makes the kernel send SIGTERM to the lab when this test
// process dies without stopping it (a test timeout, SIGKILL); the lab then
// shuts down, and the next Start removes its directory.
func labProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
