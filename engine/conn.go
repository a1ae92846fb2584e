package engine

// The per-connection state machine of a gnet client connection. One request at a time flows
// through one pipeline: admit (pure, admit.go) → decide (await: an Authorizer off the loop) →
// move (inline from the loop's buffer, or detached: spliced / copied / auto-chunked) → finish
// (finish.go: metrics, access log, then keep-alive or close).
//
//	            ┌──────────────────── keep-alive: toHead ◀──────────────────────────────┐
//	            ▼                                                                       │
//	 OnOpen ─▶ HEAD ──head parsed──▶ admit ──refuse──▶ answer ─┬─ body buffered ────────┤
//	            │                      │                       ├─ body coming ─▶ DRAIN ─▶ close
//	            │                      │                       └─ otherwise ───────────▶ close
//	            │                      ├─await (inline)──▶ AWAIT ─Authorizer (goroutine),
//	            │                      │                     │    resumed by Execute ─▶ act
//	            │                      │                     └─ sweep: 503 SlowDown ─▶ close
//	            │                      ├─inline──▶ BODY ─body whole─▶ BUSY ─finish───────────┤
//	            │                      │            └─ sweep: 400 RequestTimeout; EOF: 400
//	            │                      │               IncompleteBody ─▶ close
//	            │                      └─stream / auto-chunk / await (large)─▶ DETACHED ─────┘
//	            │                          (dup, Close; the goroutine authorizes, moves the body,
//	            │                           answers, finish re-enrolls or closes)
//	            └─ sweep: head or idle timeout ─▶ close
//
// Phase changes are the to* methods below; only they store phase. A connection is owned by its
// event loop except in DETACHED (owned by the goroutine moving its body) and BUSY/AWAIT (the loop
// owns it; a goroutine holds a job or a decision that comes back through AsyncWrite or Execute).

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/mizuchi/uploadr/httpparse"
	"github.com/mizuchi/uploadr/s3sig"
)

const (
	phaseHead     int32 = iota // reading a request head
	phaseBody                  // admitted inline: waiting for the whole body in the buffer
	phaseAwait                 // an Authorizer decides off the loop; bytes that arrive stay buffered
	phaseBusy                  // an inline exchange is in flight; bytes that arrive stay buffered
	phaseDetached              // the socket was handed to a goroutine; gnet forgot it
	phaseDrain                 // refused while the body was coming: discard it, then close
	phaseStream                // admitted inline, body streamed upstream as it arrives (inline_stream.go)
)

// Per-request scratch that idle connections must not carry (10,000 idle connections are cheap).
var (
	requestPool = sync.Pool{New: func() any { return new(httpparse.Request) }}
	sigPool     = sync.Pool{New: func() any { return new(sigScratch) }}
)

// sigScratch holds the header views handed to s3sig while the loop signs or verifies.
type sigScratch struct {
	h [httpparse.MaxHeaders + 4]s3sig.Header
}

// maxPipelinedBytes caps what a client may queue on a connection while its request is in flight
// (gnet has no backpressure: anything the client sends is read into user space).
const maxPipelinedBytes = 1 << 20

// connState is the per-connection state. Fields are touched only by the goroutine that owns the
// connection (see the phases), except phase, gen and the timestamps, which the sweeper reads.
type connState struct {
	phase     atomic.Int32
	gen       atomic.Uint32 // bumped per request: a late decision or timeout for an earlier one is ignored
	headSince atomic.Int64  // unix nanos when the current head's first byte was seen; 0 = none
	since     atomic.Int64  // unix nanos when phaseBody, phaseAwait or phaseDrain began
	idleSince atomic.Int64  // unix nanos when the connection became idle between requests
	fresh     atomic.Bool   // accepted, its first request not begun: a drain still serves it (drain.go)
	conn      gnet.Conn     // current gnet connection (changes after re-enroll)
	closed    bool          // OnClose ran
	lim       connLimit     // its share of the client limits (limits.go)
	returning bool          // handed back with Enroll; OnOpen must keep this state
	proxyWait bool          // a PROXY header must come before the first head (proxyproto.go)
	parser    httpparse.Parser
	req       *httpparse.Request // pooled: held from a head's first byte until the request is handed off

	// The current request, set by act.
	rt        route
	bodyLen   int64
	principal Principal
	signed    [2]int32  // SigV4: the SignedHeaders list's span in the head's buffer
	chunks    chunkInfo // a signed aws-chunked body (its seed is in head)
	keepAlive bool
	expect100 bool
	sentCont  bool
	isHead    bool     // the request is a HEAD: answers carry no body
	head      Head     // the view admit and Authenticators see (here, not on the stack: it escapes)
	pending   decision // phaseAwait: what the request becomes when the Authorizer allows
	budget    int64    // Complete body bytes reserved from the engine's budget
	drainLeft int64    // phaseDrain: body bytes still to discard

	noOverwrite bool // bucket policy no_overwrite: send If-None-Match: * upstream

	loop    *loopState // the event loop's in-loop upstream state, once used
	reqID   [16]byte
	remote  string
	scratch []byte // per-connection scratch for error responses
	cors    []byte // the current request's CORS header lines (cors.go appendCORS); usually empty
	span    Span   // the current request's span until a job or refusal takes it (trace.go)

	// phaseStream: the loop-owned upstream connection the body goes to (nil once it is all sent).
	up *loopUp
	// A streamed request answered before its body was all read: body bytes to discard before the
	// connection closes (next).
	drainAfter int64
	// loopJob: the request in flight is exchanged on a loop-owned upstream connection (finishInLoop
	// answers it). halfFD-1: a dup of the socket of a client that half-closed after sending its
	// whole request, kept so that finishInLoop can still answer it (gnet closes on read()==0).
	loopJob bool
	halfFD  int
	// overflow: more than maxPipelinedBytes came behind the request in flight (loopJob); they were
	// dropped, and the connection closes after its answer.
	overflow bool

	tls *serverTLS // a TLS client served by the loop (looptls_server.go); nil: plain
}

// toHead readies the connection for its next request.
func (st *connState) toHead(now int64) {
	st.dropSpan()
	st.releaseRequest()
	st.parser.Reset()
	st.rt = route{}
	st.bodyLen = 0
	st.principal = Principal{}
	st.signed = [2]int32{}
	st.chunks = chunkInfo{}
	st.noOverwrite = false
	st.cors = st.cors[:0]
	st.pending = decision{}
	st.sentCont = false
	st.up = nil
	st.drainAfter = 0
	st.loopJob = false
	st.headSince.Store(0)
	st.since.Store(0)
	st.idleSince.Store(now)
	st.phase.Store(phaseHead)
	if st.tls != nil {
		st.tls.keep = 0 // a streamed body's decrypt buffer is not kept by an idle connection
		st.tls.trim()
	}
}

// toBody waits in the loop for the rest of an inline body.
func (st *connState) toBody(now int64) {
	st.since.Store(now)
	st.phase.Store(phaseBody)
}

// toStream streams an inline body upstream as it arrives.
func (st *connState) toStream(now int64) {
	st.since.Store(now)
	st.phase.Store(phaseStream)
	if st.tls != nil {
		st.tls.keep = tlsStreamKeep // looptls_server.go
	}
}

// toAwait parks the request while its Authorizer decides.
func (st *connState) toAwait(now int64, d *decision) {
	st.pending = *d
	st.since.Store(now)
	st.phase.Store(phaseAwait)
}

// toBusy marks an inline exchange in flight.
func (st *connState) toBusy() {
	st.since.Store(0)
	st.phase.Store(phaseBusy)
}

// toDetached hands the connection to a goroutine (gnet forgets it).
func (st *connState) toDetached() { st.phase.Store(phaseDetached) }

// toDrain discards up to n body bytes after a refusal, then closes.
func (st *connState) toDrain(now, n int64) {
	st.drainLeft = n
	st.since.Store(now)
	st.phase.Store(phaseDrain)
}

// releaseRequest returns the parsed head to the pool once nothing refers to it.
func (st *connState) releaseRequest() {
	if st.req != nil {
		requestPool.Put(st.req)
		st.req = nil
	}
}

// OnBoot keeps the gnet engine handle (used to stop it).
func (e *Engine) OnBoot(eng gnet.Engine) gnet.Action {
	e.gnetEngine = eng
	e.booted.Store(true)
	close(e.bootCh)
	return gnet.None
}

// OnOpen attaches state to new connections and takes back connections returned with Enroll.
func (e *Engine) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	if u, ok := c.Context().(*loopUp); ok {
		return e.onUpstreamOpen(c, u)
	}
	if st, ok := c.Context().(*connState); ok && st.returning {
		st.returning = false
		st.conn = c
		st.toHead(e.now())
		if st.tls != nil {
			st.conn = e.tlsReturning(st, c) // looptls_server.go
		}
		e.conns.add(st)
		return nil, gnet.None
	}
	// Accepted while draining too: the loops accept until the listeners are retired, and the
	// client has connected; its first request is served (drain.go).
	st := &connState{conn: c}
	st.idleSince.Store(e.now())
	st.fresh.Store(true)
	if pp := &e.opts.ProxyProtocol; pp.Enabled {
		if !pp.trusted(c.RemoteAddr()) {
			e.metrics.proxyRejected[ppUntrusted].Inc()
			return nil, gnet.Close
		}
		st.proxyWait = true // st.remote comes with the header
	} else if a := c.RemoteAddr(); a != nil {
		st.remote = a.String()
	}
	if !st.proxyWait && !e.admitConn(st) { // limits.go; behind a PROXY header: once it is read (proxyHeader)
		return nil, gnet.Close
	}
	c.SetContext(st)
	e.conns.add(st)
	e.metrics.connsOpen.Inc()
	return nil, gnet.None
}

// OnClose forgets the connection unless it was detached (its socket lives on through a dup). A
// client that half-closes in the middle of an inline body gets 400 IncompleteBody, and one whose
// body is cut by the engine stopping 503 ServiceUnavailable: gnet flushes what OnClose writes
// before it closes the socket. One that half-closes after its whole request, exchanged in the
// loop, keeps a dup of its socket for the answer (finishInLoop).
func (e *Engine) OnClose(c gnet.Conn, err error) gnet.Action {
	if u, ok := c.Context().(*loopUp); ok {
		e.onUpstreamClose(u)
		return gnet.None
	}
	st, ok := c.Context().(*connState)
	if ok {
		c = clientConn(st, c) // a TLS client's sealing wrapper
	}
	if !ok || st.conn != c {
		// Detached (st.conn was cleared before the goroutine that owns it now started, which may
		// already have handed it back to a new gnet connection): this close is gnet forgetting it.
		return gnet.None
	}
	switch st.phase.Load() {
	case phaseDetached:
		return gnet.None
	case phaseBusy:
		// A client that half-closed after its whole request still gets the answer of an in-loop
		// exchange (gnet forgets the connection now): finishInLoop writes it to a dup of the socket.
		if errors.Is(err, io.EOF) && st.loopJob && !st.closed && st.halfFD == 0 {
			if fd, derr := c.Dup(); derr == nil {
				st.halfFD = fd + 1
			}
		}
	case phaseStream:
		if errors.Is(err, io.EOF) && e.keepHalfClosed(c, st) {
			break // the whole body was buffered while the upstream was dialled
		}
		// The client vanished mid-body: reset the upstream request (no object); a half-close
		// still reads 400 IncompleteBody, an engine stopping 503.
		s3err, answer := errIncompleteBody, errors.Is(err, io.EOF)
		if err == nil && e.draining.Load() {
			s3err, answer = errShuttingDown, true
		}
		e.abortStream(c, st, s3err, true, answer)
	case phaseBody:
		var s3err *s3Error
		switch {
		case errors.Is(err, io.EOF):
			s3err = errIncompleteBody
		case err == nil && e.draining.Load():
			s3err = errShuttingDown
		}
		if s3err != nil {
			e.refuseUnfinishedBody(c, st, s3err)
		}
	}
	st.closed = true
	if st.budget > 0 {
		e.completeBudget.release(st.budget)
		st.budget = 0
	}
	st.dropSpan()
	st.releaseRequest()
	e.conns.remove(st)
	e.releaseConn(st)
	e.metrics.connsOpen.Dec()
	return gnet.None
}

// refuseUnfinishedBody answers s3err to a request whose body, buffered whole (phaseBody), will
// not be completed — the client's bytes ended, or the engine stops — and marks the connection
// closed: nothing is answered after it. Nothing of the body went upstream.
func (e *Engine) refuseUnfinishedBody(c gnet.Conn, st *connState, s3err *s3Error) gnet.Action {
	if st.closed || st.req == nil {
		return gnet.Close
	}
	st.closed = true
	buf, _ := c.Peek(-1)
	return e.refuse(c, st, s3err, st.req.Path.Bytes(buf), true)
}

// OnTick sweeps connections that exceeded the head, body, decision or idle timeouts.
func (e *Engine) OnTick() (delay time.Duration, action gnet.Action) {
	// gnet starts its ticker once every loop runs (and its loop list is complete).
	e.loopsOnce.Do(func() { close(e.loopsUp) })
	e.sweep()
	return sweepInterval, gnet.None
}

// OnTraffic runs the request state machine on the bytes gnet buffered.
func (e *Engine) OnTraffic(c gnet.Conn) gnet.Action {
	switch x := c.Context().(type) {
	case *connState:
		if x.tls != nil {
			return e.tlsTraffic(c, x) // looptls_server.go
		}
		return e.process(c, x)
	case *loopUp:
		return e.onUpstreamTraffic(c, x)
	}
	return gnet.Close
}

// process handles as many complete requests as the buffer holds. It runs on the loop only.
func (e *Engine) process(c gnet.Conn, st *connState) gnet.Action {
	if st.proxyWait {
		if action, done := e.proxyHeader(c, st); done {
			return action
		}
	}
	for {
		switch st.phase.Load() {
		case phaseBusy:
			if st.overflow || c.InboundBuffered() > maxPipelinedBytes {
				if !st.loopJob {
					return gnet.Close
				}
				// More queued behind the request in flight than a client may queue: what it queued
				// is dropped unanswered (a pipelining client resends what was not answered when the
				// connection closes), and so is what follows; the request in flight is still
				// answered, with Connection: close (onUpstreamTraffic), then the connection closes.
				st.overflow = true
				_, _ = c.Discard(c.InboundBuffered())
			}
			return gnet.None
		case phaseAwait:
			if c.InboundBuffered() > st.req.HeadLen+int(st.bodyLen)+maxPipelinedBytes {
				return gnet.Close
			}
			return gnet.None
		case phaseDetached:
			return gnet.None
		case phaseDrain:
			return e.drain(c, st)
		case phaseStream:
			return e.pump(c, st)
		case phaseBody:
			if e.canStream(st) {
				buf, _ := c.Peek(-1)
				if action, started := e.startStream(c, st, buf); started {
					if action == gnet.Close {
						return action
					}
					continue
				}
			}
			// Peek copies a wrapped ring buffer into one slice: wait until the body is whole.
			if c.InboundBuffered() < st.req.HeadLen+int(st.bodyLen) {
				return gnet.None
			}
		}
		buf, _ := c.Peek(-1)
		if len(buf) == 0 {
			return gnet.None
		}
		if st.phase.Load() == phaseHead {
			if st.req == nil {
				st.req = requestPool.Get().(*httpparse.Request)
			}
			if st.headSince.Load() == 0 {
				st.headSince.Store(e.now())
				st.idleSince.Store(0)
				if st.fresh.Load() {
					st.fresh.Store(false)
				}
			}
			err := st.parser.Parse(buf, e.limits, st.req)
			if err == httpparse.ErrNeedMore {
				return gnet.None
			}
			if err != nil {
				e.newRequestID(&st.reqID)
				st.gen.Add(1)
				st.isHead = false
				return e.refuse(c, st, parseError(err), nil, true)
			}
			if action, done := e.onHead(c, st, buf); done {
				return action
			}
			if e.canStream(st) {
				if action, started := e.startStream(c, st, buf); started {
					if action == gnet.Close {
						return action
					}
					continue
				}
			}
		}
		// phaseBody: the whole body must be buffered before the inline exchange starts.
		need := st.req.HeadLen + int(st.bodyLen)
		if len(buf) < need {
			return gnet.None
		}
		if extra := buf[need:]; len(extra) > 0 && !plausibleRequestStart(extra) {
			// More bytes than Content-Length and they are not a next request: the body is
			// longer than declared. Never let it become an object.
			return e.refuse(c, st, errIncompleteBody, st.req.Path.Bytes(buf), true)
		}
		e.dispatchInline(c, st, buf)
	}
}

// onHead admits a complete head and acts on the decision. It returns done=true with the action
// when the request was answered, detached or parked; done=false when the body is to be awaited
// in the loop.
func (e *Engine) onHead(c gnet.Conn, st *connState, buf []byte) (gnet.Action, bool) {
	req := st.req
	e.newRequestID(&st.reqID)
	st.gen.Add(1)
	st.headSince.Store(0)
	st.isHead = string(req.Method.Bytes(buf)) == "HEAD"
	st.keepAlive = req.KeepAlive
	st.expect100 = req.Expect100
	st.head = Head{req: req, buf: buf}
	d := e.admitLimited(st) // admit behind the client limits (limits.go)
	st.cors = e.appendCORS(st.cors[:0], &st.head, &d)
	st.head.buf = nil // gnet's buffer is valid only during this callback
	e.metrics.decided(&d)
	if e.debugOn() {
		e.logAuth(&d, st.reqID[:]) // debuglog.go
	}
	return e.act(c, st, buf, &d)
}

// act carries out a decision on the loop.
func (e *Engine) act(c gnet.Conn, st *connState, buf []byte, d *decision) (gnet.Action, bool) {
	st.rt, st.bodyLen, st.principal, st.signed, st.chunks = d.rt, d.bodyLen, d.principal, d.signed, d.chunks
	st.noOverwrite = d.noOverwrite
	if e.cannotStream(d) {
		// Above streamInlineMin a body is streamed in the loop or detached, never buffered whole
		// on the loop's side: this one cannot stream (an https upstream, NoLoopUpstream).
		if d.verdict == verdictAwait {
			d.next = verdictStream
		} else {
			d.verdict = verdictStream
		}
	}
	switch d.verdict {
	case verdictRefuse:
		return e.refuseRequest(c, st, buf, d.err), true
	case verdictPreflight:
		return e.refuseRequest(c, st, buf, nil), true // nil: the allowed preflight's 200 (cors.go)
	case verdictAwait:
		if d.next != verdictInline {
			return e.detach(c, st, buf, d), true
		}
		e.await(c, st, buf, d)
		return gnet.None, true
	case verdictStream, verdictAutoChunk:
		return e.detach(c, st, buf, d), true
	}
	// verdictInline.
	if d.rt.op == opCompleteMultipartUpload && d.bodyLen > 0 {
		if !e.completeBudget.tryAcquire(d.bodyLen) {
			return e.refuseRequest(c, st, buf, errCompleteBudget), true
		}
		st.budget = d.bodyLen
	}
	st.toBody(e.now())
	if st.expect100 && len(buf)-st.req.HeadLen < int(st.bodyLen) && !st.sentCont {
		st.sentCont = true
		_, _ = c.Write(continueResponse)
	}
	return gnet.None, false
}

var continueResponse = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// refuseRequest answers an admitted head with an S3 error. A body already buffered is discarded
// and the connection kept; a body still coming is drained (read and discarded, within a bound)
// before the connection closes, so the client reads the answer instead of a reset; a client
// that waits for 100 Continue sends nothing, and its connection closes at once.
func (e *Engine) refuseRequest(c gnet.Conn, st *connState, buf []byte, s3err *s3Error) gnet.Action {
	req := st.req
	bodyLen := max(req.ContentLength, 0)
	buffered := int64(len(buf) - req.HeadLen)
	if req.Chunked {
		bodyLen = buffered + lingerBytes // its end is not looked for: drain, then close
	}
	resource := req.Path.Bytes(buf)
	switch {
	case buffered >= bodyLen && !st.sentCont:
		return e.refuse(c, st, s3err, resource, !req.KeepAlive || e.draining.Load())
	case req.Expect100 && !st.sentCont:
		return e.refuse(c, st, s3err, resource, true)
	}
	e.refuse(c, st, s3err, resource, true)
	if st.closed {
		return gnet.Close
	}
	_, _ = c.Discard(-1)
	st.toDrain(e.now(), min(bodyLen-buffered, lingerBytes))
	return gnet.None
}

// refuse writes an S3 error response on the loop — or, for a nil s3err, the 200 answer to an
// allowed CORS preflight — and records the request. It closes the connection when closeConn is
// set; otherwise it discards the request (head and body, which must be buffered) and readies the
// connection for the next one.
func (e *Engine) refuse(c gnet.Conn, st *connState, s3err *s3Error, resource []byte, closeConn bool) gnet.Action {
	status, mode := e.selfAnswer(st, s3err, resource, closeConn)
	if st.isHead {
		// A response to HEAD has no body (RFC 9110 9.3.2); its Content-Length still tells the size.
		if i := bytes.Index(st.scratch, []byte("\r\n\r\n")); i >= 0 {
			st.scratch = st.scratch[:i+4]
		}
	}
	m := reqMeta{reqID: st.reqID, bucket: st.rt.bucket, op: st.rt.op, keyStart: st.rt.keyStart, started: time.Now(), remote: st.remote,
		principal: st.principal, resource: resource, trace: st.takeTrace(s3err)}
	e.record(&m, outcome{status: status, mode: mode, closeClient: closeConn}, int64(len(st.scratch)))
	_, _ = c.Write(st.scratch)
	if len(st.scratch) > 64<<10 {
		st.scratch = nil
	}
	if st.budget > 0 {
		e.completeBudget.release(st.budget)
		st.budget = 0
	}
	if closeConn {
		return gnet.Close
	}
	bodyLen := max(st.req.ContentLength, 0)
	_, _ = c.Discard(st.req.HeadLen + int(bodyLen))
	st.toHead(e.now())
	return gnet.None
}

// drain discards what a refused client still sends of its body, then closes.
func (e *Engine) drain(c gnet.Conn, st *connState) gnet.Action {
	n, _ := c.Discard(int(min(st.drainLeft, int64(c.InboundBuffered()))))
	st.drainLeft -= int64(n)
	if st.drainLeft <= 0 {
		return gnet.Close
	}
	return gnet.None
}

// next hands a client connection on after its answer was written: close it, or ready it for the
// next request and process what is already buffered. On the loop only.
func (e *Engine) next(c gnet.Conn, st *connState, closeClient bool) {
	if st.closed {
		return
	}
	if closeClient {
		if left := st.drainAfter; left > 0 {
			// Answered before the body was all read: discard the rest so that the client reads
			// the answer rather than a reset, then close.
			st.drainAfter = 0
			st.toDrain(e.now(), min(left, lingerBytes))
			if e.drain(c, st) == gnet.Close {
				_ = c.Close()
			}
			return
		}
		_ = c.Close()
		return
	}
	st.toHead(e.now())
	if e.process(c, st) == gnet.Close {
		_ = c.Close()
	}
}

// onLoop runs f on the loop of c, st's connection when the caller looked (on its loop, or under
// the registry's lock), for the request generation gen, unless the connection moved on (a later
// request, closed, detached) by then.
func (e *Engine) onLoop(st *connState, c gnet.Conn, gen uint32, f func(c gnet.Conn)) {
	if c == nil {
		return
	}
	_ = c.EventLoop().Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		if st.closed || st.conn != c || st.gen.Load() != gen {
			return nil
		}
		f(c)
		return nil
	}))
}
