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

// tcpMigrateReq: no such sysctl on this platform (server.reuse_port is refused here).
const tcpMigrateReq = ""

// handOverWarning: server.reuse_port is refused on this platform, so there is nothing to warn of.
func handOverWarning(string) string { return "" }
