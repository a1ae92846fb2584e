package transfer

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// canWaitReadable reports whether waitReadable works on this platform.
const canWaitReadable = true

// waitReadable waits, parked in the runtime poller and honouring c's read deadline, until c has a
// byte to read, its peer closed, or the socket has an error (the read that follows reports those).
// It consumes nothing. c must be a syscall.Conn socket.
func waitReadable(c net.Conn) error {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	var b [1]byte
	return rc.Read(func(fd uintptr) bool {
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return err != unix.EAGAIN
	})
}
