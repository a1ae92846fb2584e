//go:build unix

package transfer

import "golang.org/x/sys/unix"

// mapBuf returns size bytes of anonymous memory mapped outside the Go heap, so that copy buffers
// neither count toward the garbage collector's heap goal (live heap doubles it under GOGC=100) nor
// wait for the scavenger to leave RSS once released. mapped is false when mmap failed and the
// buffer came from the heap instead.
func mapBuf(size int) (b []byte, mapped bool) {
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return make([]byte, size), false
	}
	return b, true
}

// unmapBuf returns a buffer from mapBuf to the OS; no reference to it may remain.
func unmapBuf(b []byte) { _ = unix.Munmap(b) }
