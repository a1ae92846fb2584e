package s3test

import "syscall"

// sysProcAttr makes the kernel kill versitygw when the test binary dies without running its
// cleanups (e.g. on a -timeout panic), so no server outlives its test run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
