//go:build !linux

package main

import (
	"io"
	"net"
)

// pump copies src to dst until EOF: there is no splice outside Linux.
func pump(dst, src *net.TCPConn, _ int) error {
	_, err := io.Copy(dst, src)
	return err
}

// pumpThreads is pump: the threaded splice pump is Linux only.
func pumpThreads(dst, src *net.TCPConn, pipeSize int) error { return pump(dst, src, pipeSize) }
