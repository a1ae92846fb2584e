package engine

import "golang.org/x/sys/unix"

// canAskQueued reports whether socketQueued can tell.
const canAskQueued = true

// socketQueued returns the bytes in the receive queue of socket fd (SIOCINQ), 0 on error.
func socketQueued(fd uintptr) int {
	n, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	if err != nil {
		return 0
	}
	return n
}

// canBatchReads reports whether setRcvLowat can batch a socket's reads.
const canBatchReads = true

// setRcvLowat sets socket fd's SO_RCVLOWAT to v.
func setRcvLowat(fd uintptr, v int) error {
	return unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, max(v, 1))
}
