package engine

import (
	"io"
	"net"
	"os"
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

// canPeek reports whether peek works on this platform.
const canPeek = true

// peek waits (through the runtime poller, honouring c's read deadline) until c has bytes to read and
// copies up to len(buf) of them without consuming them. It returns io.EOF when the peer closed.
func peek(c net.Conn, buf []byte) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, errNoPeek
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		n, _, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return rerr != unix.EAGAIN
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, os.NewSyscallError("recvfrom", rerr)
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}
