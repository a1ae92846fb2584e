//go:build !linux

package engine

// canAskQueued reports whether socketQueued can tell: not on this platform (the copy path writes
// each TLS record as it is read).
const canAskQueued = false

func socketQueued(uintptr) int { return 0 }

// canBatchReads reports whether setRcvLowat can batch a socket's reads: not on this platform.
const canBatchReads = false

func setRcvLowat(uintptr, int) error { return nil }
