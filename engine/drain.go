package engine

import (
	"net"
	"time"
)

// A drain (Shutdown) ends the requests it can see and the ones about to come:
//
//   - the listeners stop accepting first (handover_linux.go; the TLS listeners are closed), but a
//     loop may accept in the moment before, and a client whose connection was accepted has
//     connected: it is about to send its request and has no reason to expect a refusal. So every
//     accepted connection is served its first request, answered with Connection: close.
//   - a connection that sends nothing gets firstRequestGrace from its accept (from its handshake
//     for TLS) for its first byte, then the drain closes it, as it closes idle keep-alive
//     connections at once.
//   - Shutdown stops the loops only once no connection has a request to come: none accepted and
//     silent within its grace, no head arriving, no TLS handshake in progress, no body being
//     read, no decision pending. Each of those ends by itself within its own timeout (head,
//     handshake, body stall, authorization), or the drain deadline cuts it.
//
// net/http's Shutdown treats a new connection as idle after 5 s without a request; so does this.
const firstRequestGraceMax = 5 * time.Second

// firstRequestGrace is how long a draining engine waits for the first byte of a new connection's
// first request: firstRequestGraceMax, or the head timeout when shorter.
func (e *Engine) firstRequestGrace() time.Duration {
	return min(firstRequestGraceMax, e.opts.HeadTimeout)
}

// requestsToCome reports whether a client connection has a request under way, or may still send
// its first one, that no job counts yet (Engine.active counts the rest).
func (e *Engine) requestsToCome() bool {
	if e.arriving.Load() > 0 {
		return true
	}
	if e.netConnsToCome() {
		return true
	}
	e.conns.mu.Lock()
	defer e.conns.mu.Unlock()
	for st := range e.conns.m {
		switch st.phase.Load() {
		case phaseHead:
			if st.headSince.Load() != 0 || st.fresh.Load() {
				return true
			}
		case phaseDetached:
			// a job counts it
		default:
			return true
		}
	}
	return false
}

// netConnsToCome is requestsToCome for the goroutine driver: a connection reading a request, or
// new and within its grace.
func (e *Engine) netConnsToCome() bool {
	r := &e.netConns
	r.mu.Lock()
	defer r.mu.Unlock()
	for nc := range r.m {
		if !nc.idle.Load() || nc.st.fresh.Load() {
			return true
		}
	}
	return false
}

// handshake is a ServeTLS connection in its TLS handshake: a drain gives it until firstBy
// (firstRequestGrace after its accept, or its handshake timeout when sooner), as a plain
// connection gets until then for its first request.
type handshake struct {
	c       net.Conn
	firstBy time.Time
}

func (h *handshake) shorten() { _ = h.c.SetDeadline(h.firstBy) }

// shortenHandshakes applies the drain's grace to the handshakes in progress (Shutdown). One that
// registers later sees the engine draining and shortens its own.
func (e *Engine) shortenHandshakes() {
	r := &e.handshakes
	r.mu.Lock()
	defer r.mu.Unlock()
	for h := range r.m {
		h.shorten()
	}
}
