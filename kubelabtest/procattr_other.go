//go:build !linux

package kubelabtest

import "syscall"

// labProcAttr: kubelab runs on Linux only; this keeps the package building
// elsewhere.
func labProcAttr() *syscall.SysProcAttr {
	return nil
}
