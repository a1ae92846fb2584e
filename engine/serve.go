package engine

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mizuchi/uploadr/httpparse"
)

// The goroutine-per-connection transport: Serve runs the same pipeline as the event loops — admit,
// the Authorizer's decision, the inline / streamed / auto-chunked exchange, finish — on connections
// from any net.Listener (a TLS listener, a test's listener). Bodies of *net.TCPConn clients are
// spliced like detached gnet connections; any other net.Conn takes the copy path.

// serveBufSize is the driver's read buffer per connection: a head and an inline body fit.
const serveBufSize = 64 << 10

// Serve accepts connections on l and serves each on its own goroutine until l fails or is closed;
// Shutdown closes l. It returns nil once the engine is shutting down.
func (e *Engine) Serve(l net.Listener) error {
	return e.acceptLoop(l, e.serveConn)
}

// acceptLoop registers l (Shutdown closes it) and hands each connection it accepts to a new
// goroutine running serve, until l fails or is closed. It returns nil once the engine is shutting
// down; a temporary accept error is retried after a short pause.
func (e *Engine) acceptLoop(l net.Listener, serve func(net.Conn)) error {
	e.listenersMu.Lock()
	if e.draining.Load() {
		e.listenersMu.Unlock()
		return nil
	}
	e.listeners = append(e.listeners, l)
	e.listenersMu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			if e.draining.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
		e.arriving.Add(1) // until serve registers it or lets it go (drain.go)
		go serve(c)
	}
}

// closeListeners stops every Serve loop and closes its idle connections (Shutdown).
func (e *Engine) closeListeners() {
	e.listenersMu.Lock()
	for _, l := range e.listeners {
		_ = l.Close()
	}
	e.listeners = nil
	e.listenersMu.Unlock()
	e.closeIdleNetConns()
	e.shortenHandshakes() // drain.go
}

var serveBufPool = sync.Pool{New: func() any { b := make([]byte, 0, serveBufSize); return &b }}

// netConn is one connection served by the driver: its state and its read buffer.
type netConn struct {
	e    *Engine
	c    net.Conn
	st   connState
	buf  []byte      // unread bytes: the current head, and what followed it
	idle atomic.Bool // waiting for the first byte of a head: Shutdown may close it at once
	// firstBy is when a drain stops waiting for the connection's first request (st.fresh):
	// firstRequestGrace after its accept. Set before the connection is registered; read-only.
	firstBy time.Time
	rdl     time.Time // the read deadline set on c by this loop (zero: none); see setDeadline
	wdl     time.Time // the write deadline, likewise
}

// deadlineSlack is how much later than asked a driver connection's deadline may fire: a deadline
// is set slack beyond what is asked and kept while it still lies within slack of a new ask, so a
// keep-alive connection costs no timer operation per request (each SetDeadline call costs one),
// and never times out early.
func deadlineSlack(timeout time.Duration) time.Duration { return min(timeout/16, time.Second) }

// setDeadline makes *cur (the deadline in force) fire between timeout and timeout+slack from now,
// calling set only when the one in force does not.
func setDeadline(cur *time.Time, timeout time.Duration, set func(time.Time) error) {
	want := time.Now().Add(timeout)
	if !cur.IsZero() && !cur.Before(want) && cur.Sub(want) <= deadlineSlack(timeout) {
		return
	}
	*cur = want.Add(deadlineSlack(timeout))
	_ = set(*cur)
}

// clearDeadlines lifts the deadlines this loop set, before code that manages its own takes the
// connection (the streamed exchanges), and forgets them (that code leaves none behind).
func (nc *netConn) clearDeadlines() {
	if !nc.rdl.IsZero() {
		_ = nc.c.SetReadDeadline(time.Time{})
		nc.rdl = time.Time{}
	}
	if !nc.wdl.IsZero() {
		_ = nc.c.SetWriteDeadline(time.Time{})
		nc.wdl = time.Time{}
	}
}

// write writes b to the client within BodyStallTimeout.
func (nc *netConn) write(b []byte) bool {
	setDeadline(&nc.wdl, nc.e.opts.BodyStallTimeout, nc.c.SetWriteDeadline)
	_, err := nc.c.Write(b)
	return err == nil
}

// closeIdleNetConns wakes every idle driver connection (its read fails at once, and it closes);
// busy ones close after their request, as the engine is draining.
func (e *Engine) closeIdleNetConns() {
	r := &e.netConns
	r.mu.Lock()
	defer r.mu.Unlock()
	for nc := range r.m {
		if nc.idle.Load() {
			// A new connection's first request is still served (drain.go): not woken, its wait
			// shortened to its grace (waking it would also fail a TLS handshake for good).
			if nc.st.fresh.Load() {
				_ = nc.c.SetReadDeadline(nc.firstBy)
			} else {
				_ = nc.c.SetReadDeadline(time.Now())
			}
		}
	}
}

// serveConn serves requests on c, which acceptLoop counted as arriving, until it closes, fails or
// must not be kept.
func (e *Engine) serveConn(c net.Conn) {
	e.metrics.connsOpen.Inc()
	bp := serveBufPool.Get().(*[]byte)
	nc := &netConn{e: e, c: c, buf: (*bp)[:0], firstBy: time.Now().Add(e.firstRequestGrace())}
	nc.st.fresh.Store(true)
	if p, ok := c.(proxyHeaderReader); ok && p.ReadProxyHeader() != nil {
		e.arriving.Add(-1)
		_ = c.Close() // counted by ReadProxyHeader; no answer
		serveBufPool.Put(bp)
		e.metrics.connsOpen.Dec()
		return
	}
	if a := c.RemoteAddr(); a != nil {
		nc.st.remote = a.String()
	}
	if !e.admitConn(&nc.st) { // limits.go
		e.arriving.Add(-1)
		_ = c.Close()
		e.metrics.connsOpen.Dec()
		return
	}
	e.netConns.add(nc)
	e.arriving.Add(-1) // now netConnsToCome sees it
	keep := true
	for first := true; keep && (first || !e.draining.Load()); first = false { // the first even while draining (drain.go)
		keep = nc.serveOne()
	}
	e.netConns.remove(nc)
	e.releaseConn(&nc.st)
	nc.st.releaseRequest()
	if cap(nc.buf) == serveBufSize {
		*bp = nc.buf[:0]
		serveBufPool.Put(bp)
	}
	_ = c.Close()
	e.metrics.connsOpen.Dec()
}

// serveOne reads one request head, admits it and acts on the decision. It reports whether the
// connection may serve another request.
func (nc *netConn) serveOne() bool {
	e, st := nc.e, &nc.st
	st.toHead(e.now())
	st.req = requestPool.Get().(*httpparse.Request)
	deadline := e.opts.IdleTimeout
	if st.lim.refuse != nil {
		deadline = e.opts.HeadTimeout // over a connection limit (limits.go)
	}
	for {
		err := st.parser.Parse(nc.buf, e.limits, st.req)
		if err == nil {
			break
		}
		if err != httpparse.ErrNeedMore {
			e.newRequestID(&st.reqID)
			nc.refuse(parseError(err), nil, true)
			return false
		}
		if len(nc.buf) > 0 {
			deadline = e.opts.HeadTimeout
		}
		nc.idle.Store(len(nc.buf) == 0)
		ok := nc.fill(deadline, e.opts.MaxHeadBytes+1)
		nc.idle.Store(false)
		if !ok {
			return false
		}
	}
	buf := nc.buf
	req := st.req
	e.newRequestID(&st.reqID)
	st.keepAlive, st.expect100 = req.KeepAlive, req.Expect100
	st.isHead = string(req.Method.Bytes(buf)) == "HEAD"
	st.head = Head{req: req, buf: buf}
	h := &st.head
	d := e.admitLimited(st) // admit behind the client limits (limits.go)
	st.cors = e.appendCORS(st.cors[:0], h, &d)
	e.metrics.decided(&d)
	if e.debugOn() {
		e.logAuth(&d, st.reqID[:]) // debuglog.go
	}
	if d.verdict == verdictAwait {
		if s3err := e.authorize(d.rt.bucket.authz, newAuthzInput(h, &d, st.reqID[:], st.remote)); s3err != nil {
			d = refusal(d, s3err)
		} else {
			d.verdict = d.next
		}
	}
	st.rt, st.bodyLen, st.principal, st.signed, st.chunks = d.rt, d.bodyLen, d.principal, d.signed, d.chunks
	st.noOverwrite = d.noOverwrite
	if d.verdict == verdictInline && d.bodyLen > streamInlineMin && d.rt.op != opCompleteMultipartUpload {
		// The driver buffers an inline body whole: above streamInlineMin it is streamed instead, so
		// a connection holds at most serveBufSize-ish bytes whatever inline_body_max says.
		d.verdict = verdictStream
	}
	switch d.verdict {
	case verdictRefuse:
		return nc.refuseRequest(d.err)
	case verdictPreflight:
		return nc.refuseRequest(nil) // nil: the allowed preflight's 200 (cors.go)
	case verdictInline:
		return nc.inline()
	}
	return nc.moved(d.verdict)
}

// fill reads more bytes into nc.buf (at most max in all) within timeout.
func (nc *netConn) fill(timeout time.Duration, max int) bool {
	if len(nc.buf) >= max {
		return false
	}
	if cap(nc.buf) == len(nc.buf) {
		nb := make([]byte, len(nc.buf), min(2*cap(nc.buf), max))
		copy(nb, nc.buf)
		nc.buf = nb
	}
	setDeadline(&nc.rdl, timeout, nc.c.SetReadDeadline) // left in force: the next fill reuses it
	draining := nc.e.draining.Load()
	if draining && nc.idle.Load() {
		// Shutdown's closeIdle may have run before the deadline above replaced its own.
		if !nc.st.fresh.Load() {
			return false
		}
		if nc.firstBy.Before(nc.rdl) {
			nc.rdl = nc.firstBy
			_ = nc.c.SetReadDeadline(nc.rdl)
		}
	}
	n, err := nc.c.Read(nc.buf[len(nc.buf):min(cap(nc.buf), max)])
	nc.buf = nc.buf[:len(nc.buf)+n]
	if draining || nc.e.draining.Load() {
		nc.rdl = time.Time{} // closeIdle may have replaced the deadline: the next fill sets its own
	}
	if n > 0 && nc.st.fresh.Load() {
		nc.st.fresh.Store(false)
	}
	return n > 0 || err == nil
}

// consume drops the first n buffered bytes (a finished request), keeping what follows.
func (nc *netConn) consume(n int) {
	rest := copy(nc.buf, nc.buf[n:])
	nc.buf = nc.buf[:rest]
}

// refuseRequest answers an admitted head with an S3 error: a buffered body is skipped and the
// connection kept; a body still coming is drained within a bound before the connection closes.
func (nc *netConn) refuseRequest(s3err *s3Error) bool {
	st, req := &nc.st, nc.st.req
	bodyLen := max(req.ContentLength, 0)
	buffered := int64(len(nc.buf) - req.HeadLen)
	if req.Chunked {
		bodyLen = buffered + 1 // its end is not looked for: linger, then close
	}
	keep := buffered >= bodyLen && req.KeepAlive && !nc.e.draining.Load()
	nc.refuse(s3err, req.Path.Bytes(nc.buf), !keep)
	if keep {
		nc.consume(req.HeadLen + int(bodyLen))
		return true
	}
	if buffered < bodyLen && !(req.Expect100 && !st.sentCont) {
		lingerClose(nc.c)
	}
	return false
}

// refuse writes an S3 error response (for a nil s3err: the allowed preflight's 200) and records
// the request.
func (nc *netConn) refuse(s3err *s3Error, resource []byte, closeConn bool) {
	st := &nc.st
	status, mode := nc.e.selfAnswer(st, s3err, resource, closeConn)
	m := reqMeta{reqID: st.reqID, bucket: st.rt.bucket, op: st.rt.op, keyStart: st.rt.keyStart, started: time.Now(), remote: st.remote,
		principal: st.principal, resource: resource, trace: st.takeTrace(s3err)}
	nc.e.record(&m, outcome{status: status, mode: mode, closeClient: closeConn}, int64(len(st.scratch)))
	nc.write(st.scratch)
}

// inline reads the whole (small) body into the buffer and exchanges it from memory.
func (nc *netConn) inline() bool {
	e, st, req := nc.e, &nc.st, nc.st.req
	need := req.HeadLen + int(st.bodyLen)
	if st.rt.op == opCompleteMultipartUpload && st.bodyLen > 0 {
		if !e.completeBudget.tryAcquire(st.bodyLen) {
			return nc.refuseRequest(errCompleteBudget)
		}
		st.budget = st.bodyLen
	}
	if len(nc.buf) < need && st.expect100 {
		st.sentCont = true
		if !nc.write(continueResponse) {
			return false
		}
	}
	for len(nc.buf) < need {
		if !nc.fill(e.opts.BodyStallTimeout, need) {
			if st.budget > 0 {
				e.completeBudget.release(st.budget)
				st.budget = 0
			}
			nc.refuse(errIncompleteBody, req.Path.Bytes(nc.buf), true)
			return false
		}
	}
	j := e.newJob(st, req.Path.Bytes(nc.buf), sideNet)
	if err := e.buildUpstreamHead(j, st, j.bucket, nc.buf); err != nil {
		j.release()
		nc.refuse(errInvalidURI, req.Path.Bytes(nc.buf), true)
		return false
	}
	j.out = append(j.out, nc.buf[req.HeadLen:need]...)
	nc.consume(need)
	o := e.inlineExchange(j)
	if !nc.write(j.resp) {
		o.closeClient = true
	}
	e.finish(j, o)
	return !o.closeClient
}

// moved hands the body to the streaming or auto-chunked exchange, which reads the rest of it from
// the connection and answers.
func (nc *netConn) moved(kind verdict) bool {
	e, st, req := nc.e, &nc.st, nc.st.req
	j := e.newJob(st, req.Path.Bytes(nc.buf), sideNet)
	j.kind = kind
	if err := e.prepare(j, st, nc.buf); err != nil {
		j.release()
		nc.refuse(errInvalidURI, req.Path.Bytes(nc.buf), true)
		return false
	}
	nc.consume(j.consumed) // what follows is the next request's
	nc.clearDeadlines()
	if kind == verdictAutoChunk {
		e.metrics.autoChunked.Inc()
	}
	if b, ok := nc.c.(bodyReader); ok {
		b.startBody(e.readAheads, j.remaining) // a TLS client's body is read ahead (tlsconn.go)
		defer b.endBody(e.readAheads)
	}
	o := e.exchange(j, nc.c)
	e.finish(j, o)
	if o.closeClient {
		lingerClose(nc.c)
		return false
	}
	return true
}
