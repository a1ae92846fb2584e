package engine

import (
	"github.com/panjf2000/gnet/v2"
)

// Bodies above streamInlineMin (and up to Options.InlineBodyMax) are streamed inside the event
// loop: once the head is admitted, the upstream request head goes out on a loop-owned upstream
// connection and every body byte the client sends is written to it as it arrives (write what
// arrived, Discard it) — no detach, no goroutine, no copy of the body in user space beyond gnet's
// read buffer. Smaller bodies are buffered whole (dispatchInline): they can be replayed once when a
// pooled connection turns out dead, and arrive with their head anyway.
//
// TLS clients served by the loops (looptls_server.go) stream the same way, through this code: c
// is then their sealing wrapper (tlsGConn), whose Peek, Discard and InboundBuffered are the
// decrypted bytes, and every answer written to it is sealed. Their socket holds ciphertext, so
// nothing is spliced: each read is decrypted (tlsTraffic) and written on. A close_notify in the
// middle of the body counts as the FIN below.
//
// Memory: gnet has no backpressure, so what a connection holds in user space is bounded by the
// body cap itself. The body is at most InlineBodyMax; it sits either in the client's inbound buffer
// (upstream still dialling; a TLS client's decrypted buffer) or in the upstream's outbound buffer
// (a slow upstream: Conn.Write queues what the socket does not take), never twice, plus at most
// maxPipelinedBytes of a next request (a TLS client also one read of ciphertext being decrypted
// and the decrypt buffer, tlsStreamKeep). Larger bodies are detached and spliced, where the
// kernel's socket buffers push back.
//
// Failure rules: a client that vanishes mid-body, stalls past BodyStallTimeout or sends more bytes
// than Content-Length resets the upstream request (SO_LINGER 0: versitygw keeps a truncated object
// on a clean FIN) and is answered 400 IncompleteBody / RequestTimeout when it can still read. An
// upstream that answers before the body is complete (412 for If-None-Match: *, 403, 400) is relayed
// at once; the rest of the body is drained, then the client connection closes. A pooled upstream
// connection that dies before any body byte went out is replaced once (the head is kept); once body
// bytes were streamed they cannot be replayed: the client gets 502 BadGateway and the connection
// closes after the rest of the body is drained.

// streamInlineMin is the largest inline body that is buffered whole rather than streamed.
const streamInlineMin = 64 << 10

// canStream reports whether the request admitted inline on st streams its body in the loop.
func (e *Engine) canStream(st *connState) bool {
	return st.bodyLen > streamInlineMin && st.rt.op != opCompleteMultipartUpload && e.loopStreams(st.rt.bucket)
}

// loopStreams reports whether b's requests can stream in the loop: on loop-owned plain-TCP
// upstream connections (an https upstream's are not streamed to: its bodies above
// streamInlineMin detach, from plain and TLS clients alike).
func (e *Engine) loopStreams(b *bucketState) bool {
	return b != nil && !e.opts.NoLoopUpstream && !b.pool.ep.tls
}

// cannotStream reports whether d admits inline (now or after its Authorizer) a body that would be
// streamed if it could, and it cannot: it is detached instead, as every body above
// streamInlineMin was before bodies streamed in the loop.
func (e *Engine) cannotStream(d *decision) bool {
	inline := d.verdict == verdictInline || d.verdict == verdictAwait && d.next == verdictInline
	return inline && d.bodyLen > streamInlineMin && d.rt.op != opCompleteMultipartUpload && !e.loopStreams(d.rt.bucket)
}

// startStream sends the upstream head of the request admitted on st and moves the connection to
// phaseStream. It returns started=false (nothing done) when no loop-owned upstream connection can
// be had (the endpoint's connection limit): the body is then buffered whole. On the loop only.
func (e *Engine) startStream(c gnet.Conn, st *connState, buf []byte) (action gnet.Action, started bool) {
	ls := st.loop
	if ls == nil {
		ls = e.loopOf(c.EventLoop())
		st.loop = ls
	}
	p := st.rt.bucket.pool
	slot := false
	if len(ls.idle[p]) == 0 {
		if !p.tryAcquireSlot() {
			return gnet.None, false
		}
		slot = true
	}
	req := st.req
	j := e.newJob(st, req.Path.Bytes(buf), sideLoop)
	j.c = c
	if err := e.buildUpstreamHead(j, st, j.bucket, buf); err != nil {
		if slot {
			p.releaseSlot()
		}
		j.release()
		return e.refuse(c, st, errInvalidURI, req.Path.Bytes(buf), true), true
	}
	j.streaming, j.streamLeft = true, st.bodyLen
	st.loopJob = true
	_, _ = c.Discard(req.HeadLen)
	st.toStream(e.now())
	if !e.sendLoop(c, j, slot, true) {
		// Only when every idle connection had closed and the limit is reached meanwhile.
		e.finishInLoop(j, e.errorResponse(j, errServiceUnavailable, true), true)
		return gnet.None, true
	}
	if st.phase.Load() == phaseStream && st.up != nil {
		return e.pump(c, st), true
	}
	return gnet.None, true
}

// pump writes the body bytes the client has sent so far to the upstream connection. On the loop
// only, in phaseStream.
func (e *Engine) pump(c gnet.Conn, st *connState) gnet.Action {
	u := st.up
	if u == nil || u.j == nil {
		return gnet.None
	}
	j := u.j
	if u.c == nil {
		// Still dialling: the body waits in gnet's buffer (OnOpen sends it); it is at most the cap.
		if c.InboundBuffered() > int(j.streamLeft)+maxPipelinedBytes {
			return gnet.Close
		}
		return gnet.None
	}
	n := int(min(int64(c.InboundBuffered()), j.streamLeft))
	if n > 0 || u.headPending {
		var all []byte
		if n > 0 {
			all, _ = c.Peek(-1)
		}
		if n > 0 && int64(n) == j.streamLeft && len(all) > n && !plausibleRequestStart(all[n:]) {
			// More bytes than Content-Length and they are not a next request: the body is longer
			// than declared. Its end never goes upstream; the upstream request is reset.
			e.abortStream(c, st, errIncompleteBody, false, true)
			return gnet.None
		}
		now := e.now()
		st.since.Store(now)
		u.busySince.Store(now)
		switch {
		case !u.headPending:
			_, _ = u.c.Write(all[:n])
		case n == 0:
			u.headPending = false
			_, _ = u.c.Write(j.out[:j.headLen])
		default:
			u.headPending = false
			ls := st.loop
			ls.iov = append(ls.iov[:0], j.out[:j.headLen], all[:n])
			_, _ = u.c.Writev(ls.iov)
			clear(ls.iov)
		}
		if st.up != u {
			// u failed inside Write and OnClose dealt with j: sent again on another connection (no
			// body byte had gone; they are still buffered) or answered. Carry on with the new one.
			if st.phase.Load() == phaseStream && st.up != nil {
				return e.pump(c, st)
			}
			return gnet.None
		}
		j.streamed += int64(n)
		j.streamLeft -= int64(n)
		_, _ = c.Discard(n)
	}
	// The rest of what the socket holds goes by splice; a TLS client's socket holds ciphertext:
	// tlsTraffic decrypts all of it before pump runs, nothing is left to splice.
	if j.streamLeft > 0 && st.tls == nil && st.loop.pipe != nil && u.c.OutboundBuffered() == 0 {
		before := j.streamed
		if !e.spliceBody(c, st, u, j) {
			return gnet.None // u failed: j was answered
		}
		if j.streamed != before {
			now := e.now()
			st.since.Store(now)
			u.busySince.Store(now)
		}
	}
	if j.streamLeft == 0 {
		st.up = nil
		st.toBusy()
	}
	return gnet.None
}

// takeBody moves the body bytes already buffered on j's client into j.out after the head: the
// first write on a freshly dialled upstream connection (OnOpen). It reports false when the
// request was aborted instead (a body longer than declared).
func (e *Engine) takeBody(j *job, u *loopUp) bool {
	if j.streamLeft == 0 {
		return true // taken already: the client half-closed after its body (keepHalfClosed)
	}
	c, st := j.c, j.st
	j.out = j.out[:j.headLen]
	n := int(min(int64(c.InboundBuffered()), j.streamLeft))
	if n == 0 {
		return true
	}
	all, _ := c.Peek(-1)
	if int64(n) == j.streamLeft && len(all) > n && !plausibleRequestStart(all[n:]) {
		e.abortStream(c, st, errIncompleteBody, false, true)
		return false
	}
	j.out = append(j.out, all[:n]...)
	_, _ = c.Discard(n)
	j.streamed += int64(n)
	j.streamLeft -= int64(n)
	st.since.Store(e.now())
	if j.streamLeft == 0 {
		st.up = nil
		st.toBusy()
	}
	return true
}

// keepHalfClosed handles a client that half-closed (OnClose, io.EOF) with the rest of its body in
// gnet's buffer while the upstream connection was still being dialled: the request is complete.
// The body goes into j.out (OnOpen sends it) and a dup of the socket is kept for the answer
// (finishInLoop). It reports false when that is not the case: the body is then incomplete.
func (e *Engine) keepHalfClosed(c gnet.Conn, st *connState) bool {
	if !st.bodyAwaitsDial(c) {
		return false
	}
	fd, err := c.Dup()
	if err != nil {
		return false
	}
	if u := st.up; !e.takeBody(u.j, u) {
		writeHalfClosed(fd, nil)
		return true // aborted and answered
	}
	st.halfFD = fd + 1
	return true
}

// bodyAwaitsDial reports whether the rest of st's streamed body is all buffered on c (and no more)
// while its upstream connection is being dialled: OnOpen takes it (takeBody), so the client's
// end of bytes (a FIN, a TLS close_notify) does not cut it.
func (st *connState) bodyAwaitsDial(c gnet.Conn) bool {
	u := st.up
	return u != nil && u.j != nil && u.c == nil && !st.closed && int64(c.InboundBuffered()) == u.j.streamLeft
}

// abortStream ends a streamed request before its body is complete: the upstream request is reset
// (never a truncated object), the client is answered s3err when answer is set, and its connection
// closes. inClose: called from the client's OnClose (gnet closes it; nothing more to do with it).
func (e *Engine) abortStream(c gnet.Conn, st *connState, s3err *s3Error, inClose, answer bool) {
	u := st.up
	st.up = nil
	if u == nil || u.j == nil {
		return
	}
	j := u.j
	u.j = nil
	u.busySince.Store(0)
	if u.c != nil {
		_ = u.c.SetLinger(0)
		_ = u.c.Close() // OnClose finds no request; a dialling u closes in OnOpen
	}
	j.streamLeft = 0 // the rest of the body is not read: close, no drain
	e.metrics.refusal(s3err)
	status := e.errorResponse(j, s3err, true)
	if inClose {
		if answer && !st.closed {
			_, _ = c.Write(j.resp) // gnet flushes what OnClose writes before it closes
		}
		st.closed = true
	} else if !answer {
		st.closed = true
		_ = c.Close()
	}
	e.finishInLoop(j, status, true)
}

// readBufferCap is gnet's read buffer (per event loop): what one read takes from a socket before
// OnTraffic runs. A streamed body's bytes beyond it are spliced, so it stays small; a head and a
// small body still arrive in one read.
var readBufferCap = 64 << 10

// cutStreams ends, on their loops, the streamed requests still moving their bodies at the drain
// deadline: the upstream request is reset (no object) and the client told 503.
func (e *Engine) cutStreams() {
	type cut struct {
		st  *connState
		c   gnet.Conn
		gen uint32
	}
	var cuts []cut
	e.conns.mu.Lock()
	for st := range e.conns.m {
		if st.phase.Load() == phaseStream {
			cuts = append(cuts, cut{st, st.conn, st.gen.Load()})
		}
	}
	e.conns.mu.Unlock()
	for _, k := range cuts {
		st := k.st
		e.onLoop(st, k.c, k.gen, func(c gnet.Conn) {
			if st.phase.Load() == phaseStream {
				e.abortStream(c, st, errShuttingDown, false, true)
			}
		})
	}
}
