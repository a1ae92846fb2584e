package engine

import (
	"errors"
	"io"
	"net"
	"time"
)

var errNoPeek = errors.New("engine: peek not supported on this platform")

// lingerDrain bounds how long and how much lingerClose reads from a client after answering early.
const (
	lingerTime  = 2 * time.Second
	lingerBytes = 64 << 20
)

// lingerClose closes a client connection that may still be sending a body we will not read: it
// shuts down our write side (the response is already written), then reads and discards for a
// bounded time so the kernel does not answer the unread bytes with a RST that would destroy the
// response before the client reads it (what nginx calls lingering close).
func lingerClose(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		_ = tc.SetReadDeadline(time.Now().Add(lingerTime))
		_, _ = io.CopyN(io.Discard, tc, lingerBytes)
	}
	_ = c.Close()
}
