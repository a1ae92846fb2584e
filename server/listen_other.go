//go:build !linux

package server

import (
	"errors"
	"syscall"
)

// errReusePortUnsupported: server.reuse_port on a platform without SO_REUSEPORT load balancing.
var errReusePortUnsupported = errors.New("server.reuse_port is supported on Linux only")

func controlReusePort(syscall.RawConn) error { return errReusePortUnsupported }

// bindProbe only checks SO_REUSEPORT support here: gnet's own error stands on this platform.
func bindProbe(_ string, reusePort bool) error {
	if reusePort {
		return errReusePortUnsupported
	}
	return nil
}
