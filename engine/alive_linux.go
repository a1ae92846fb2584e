package engine

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// connAlive reports whether an idle keep-alive connection is still open: a non-blocking peek sees
// neither EOF, an error, nor unexpected bytes.
func connAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true // TLS: the exchange retries or fails cleanly
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		alive = err == unix.EAGAIN && n <= 0
		return true
	})
	return alive
}
