package server

import (
	"context"
	"fmt"
	"net"
	"syscall"
)

// listenTCP opens a TCP listener on addr (the https and admin listeners). With reusePort
// (server.reuse_port) it sets SO_REUSEPORT, so that the process taking over in an upgrade can
// join the address; without it a second listener fails with "address already in use" (Go sets
// SO_REUSEADDR, which on Linux never lets two sockets listen on one address).
func listenTCP(addr string, reusePort bool) (net.Listener, error) {
	lc := net.ListenConfig{}
	if reusePort {
		lc.Control = func(_, _ string, c syscall.RawConn) error { return controlReusePort(c) }
	}
	return lc.Listen(context.Background(), "tcp", addr)
}

// checkBind tells whether the plain listener's address can be bound as the engine will bind it,
// without listening (a listening probe would, with SO_REUSEPORT, take connections meant for the
// process handing over). gnet reports a failed bind as "setsockopt: bad file descriptor" (it sets
// TCP keep-alive on the socket it has just closed), so the real reason comes from here.
func checkBind(addr string, reusePort bool) error {
	if err := bindProbe(addr, reusePort); err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return nil
}
