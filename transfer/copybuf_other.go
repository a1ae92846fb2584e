//go:build !unix

package transfer

// mapBuf allocates a copy buffer on the heap (no mmap on this platform).
func mapBuf(size int) (b []byte, mapped bool) { return make([]byte, size), false }

// unmapBuf is never called for heap buffers.
func unmapBuf([]byte) {}
