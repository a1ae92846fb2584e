//go:build !linux

package engine

import "net"

// connAlive cannot peek without blocking on this platform; a dead pooled connection is detected
// by the exchange, which retries when no byte was exchanged.
func connAlive(net.Conn) bool { return true }

// canPeek reports whether peek works on this platform.
const canPeek = false

func peek(net.Conn, []byte) (int, error) { return 0, errNoPeek }
