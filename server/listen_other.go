//go:build !linux

package server

import "syscall"

func controlReusePort(syscall.RawConn) error { return errReusePortUnsupported }

// bindProbe only checks SO_REUSEPORT support here: gnet's own error stands on this platform.
func bindProbe(_ string, reusePort bool) error {
	if reusePort {
		return errReusePortUnsupported
	}
	return nil
}
