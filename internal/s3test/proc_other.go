//go:build !linux

package s3test

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: a server can outlive a test binary that is
// killed before its cleanups run.
func sysProcAttr() *syscall.SysProcAttr { return nil }
