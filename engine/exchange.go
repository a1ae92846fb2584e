package engine

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/mizuchi/uploadr/httpparse"
	"github.com/mizuchi/uploadr/s3sig"
	"github.com/mizuchi/uploadr/transfer"
)

// job carries one request from the loop to the goroutine that exchanges it with the upstream.
// Everything it holds is owned (copied out of gnet's buffer).
type job struct {
	e         *Engine
	st        *connState
	c         gnet.Conn      // inline: the client connection (still in gnet)
	el        gnet.EventLoop // detached: where to re-enroll the client
	bucket    *bucketState
	op        op
	reqID     [16]byte
	keepAlive bool
	expect100 bool
	started   time.Time
	remote    string
	principal string
	upStatus  int    // the upstream's status, 0 when it was not asked
	retried   bool   // in-loop: sent again after a pooled connection died
	upReqID   []byte // the upstream's x-amz-request-id

	out       []byte // upstream request: head, then (inline) the body or (detached) the buffered prefix
	headLen   int
	remaining int64 // detached: body bytes still in the client socket
	clientFD  int

	path, query, tmp, date, auth []byte // scratch for buildUpstreamHead
	tmp2, num                    []byte
	sigHdrs                      []s3sig.Header

	// Auto-chunking: the client's headers copied out of gnet's buffer, and the body size.
	hdrBuf   []byte
	hdrs     []ownedHeader
	total    int64
	resource []byte // client path, for error documents
	resp     []byte // response for the client
}

var jobPool = sync.Pool{New: func() any { return new(job) }}

func (e *Engine) newJob(st *connState, buf []byte) *job {
	j := jobPool.Get().(*job)
	e.active.Add(1)
	activeTotal.Add(1)
	j.e = e
	j.st = st
	j.bucket = st.rt.bucket
	j.op = st.rt.op
	j.reqID = st.reqID
	j.keepAlive = st.req.KeepAlive && !e.draining.Load()
	j.expect100 = st.req.Expect100 && !st.sentCont
	j.started = time.Now()
	j.remote = st.remote
	j.principal = st.principal
	j.upStatus = 0
	j.upReqID = j.upReqID[:0]
	j.retried = false
	j.resource = append(j.resource[:0], st.req.Path.Bytes(buf)...)
	return j
}

func (j *job) release() {
	if cap(j.out) > 256<<10 {
		j.out = nil
	}
	if cap(j.resp) > 256<<10 {
		j.resp = nil
	}
	if cap(j.tmp) > 256<<10 {
		j.tmp = nil
	}
	clear(j.sigHdrs)
	clear(j.hdrs)
	j.hdrs = j.hdrs[:0]
	j.e.active.Add(-1)
	activeTotal.Add(-1)
	j.e, j.st, j.c, j.el, j.bucket = nil, nil, nil, nil, nil
	jobPool.Put(j)
}

// dispatchInline starts the exchange of a request whose whole body is in the loop's buffer: the
// upstream request (head + body) is built in the loop, the client connection stays in gnet, and the
// response comes back through AsyncWrite. Pipelined bytes stay buffered until then.
func (e *Engine) dispatchInline(c gnet.Conn, st *connState, buf []byte) {
	j := e.newJob(st, buf)
	j.c = c
	if err := e.buildUpstreamHead(j, st, j.bucket, buf); err != nil {
		j.release()
		e.refuse(c, st, errInvalidURI, buf[st.req.Path.Start:st.req.Path.End], true)
		_ = c.Close()
		return
	}
	j.out = append(j.out, buf[st.req.HeadLen:st.req.HeadLen+int(st.bodyLen)]...)
	_, _ = c.Discard(st.req.HeadLen + int(st.bodyLen))
	st.phase.Store(phaseBusy)
	st.bodySince.Store(0)
	if !e.opts.NoLoopUpstream && !j.bucket.pool.ep.tls && j.op != opCompleteMultipartUpload && e.sendInLoop(c, j) {
		return
	}
	go e.runInline(j)
}

func (e *Engine) runInline(j *job) {
	var status int
	var closeClient bool
	if j.op == opCompleteMultipartUpload && !wellFormedComplete(j.out[j.headLen:]) {
		status, closeClient = e.errorResponse(j, errMalformedXML, false), false
	} else {
		status, closeClient = e.exchangeBuffered(j)
	}
	e.finish(j, status, int64(len(j.out)-j.headLen), 0, "inline")
	closeClient = closeClient || !j.keepAlive
	c, st := j.c, j.st
	err := c.AsyncWrite(j.resp, func(c gnet.Conn, err error) error {
		j.release()
		if err != nil || st.closed {
			return nil
		}
		if closeClient {
			return c.Close()
		}
		st.resetForNext(e.now())
		if e.process(c, st) == gnet.Close {
			return c.Close()
		}
		return nil
	})
	if err != nil {
		j.release()
	}
}

// exchangeBuffered sends j.out (head and whole body) upstream and builds the client response in
// j.resp. A reused connection that fails before any response byte is retried once on a new one.
func (e *Engine) exchangeBuffered(j *job) (status int, closeClient bool) {
	u, resp, s3err := e.roundTrip(j, j.out, nil)
	if s3err != nil {
		return e.errorResponse(j, s3err, true), true
	}
	status = e.relayResponse(j, u, &resp, !j.keepAlive)
	u.release(resp.keepAlive)
	return status, false
}

// detach hands the client socket to a goroutine that splices the body: dup the fd, copy the
// buffered body prefix, forget the connection in gnet (return Close on the loop, synchronous) and
// let OnClose ignore it. See ../shared/DESIGN.md.
func (e *Engine) detach(c gnet.Conn, st *connState, buf []byte) gnet.Action {
	fd, err := c.Dup()
	if err != nil {
		return e.refuse(c, st, errInternal, st.req.Path.Bytes(buf), true)
	}
	j := e.newJob(st, buf)
	j.el = c.EventLoop()
	j.clientFD = fd
	if err := e.buildUpstreamHead(j, st, j.bucket, buf); err != nil {
		_ = closeFD(fd)
		j.release()
		return e.refuse(c, st, errInvalidURI, st.req.Path.Bytes(buf), true)
	}
	prefix := buf[st.req.HeadLen:] // shorter than the body: detach happens only then
	if int64(len(prefix)) > st.bodyLen {
		prefix = prefix[:st.bodyLen]
	}
	j.out = append(j.out, prefix...)
	j.remaining = st.bodyLen - int64(len(prefix))
	st.phase.Store(phaseDetached)
	e.conns.remove(st)
	_, _ = c.Discard(-1)
	e.metrics.detached.Inc()
	go e.runDetached(j, e.exchangeStreaming)
	return gnet.Close
}

func closeFD(fd int) error { return os.NewFile(uintptr(fd), "").Close() }

// runDetached runs a detached request's exchange (a streaming PutObject/UploadPart, or an
// auto-chunked PutObject) on the client socket, records it, and hands the socket back.
func (e *Engine) runDetached(j *job, exchange func(*job, net.Conn) (int, bool, transfer.Result)) {
	f := os.NewFile(uintptr(j.clientFD), "client")
	client, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		e.finish(j, 500, 0, 0, "splice")
		j.release()
		return
	}
	status, reuse, moved := exchange(j, client)
	if moved.PipeTooSmall {
		e.metrics.pipeTooSmall.Inc()
	}
	e.finish(j, status, moved.Spliced+moved.Copied, moved.Spliced, modeName(moved))
	e.handBack(j, client, reuse)
}

// handBack returns a detached client connection to its event loop for the next request (Enroll,
// see ../shared/DESIGN.md), or closes it (lingering, so an answer given before the whole body was
// read is not destroyed by a reset). It releases j.
func (e *Engine) handBack(j *job, client net.Conn, reuse bool) {
	if !reuse || !j.keepAlive || e.draining.Load() {
		j.release()
		lingerClose(client)
		return
	}
	st, el := j.st, j.el
	j.release()
	st.resetForNext(e.now())
	st.returning = true
	ch, err := el.Enroll(gnet.NewContext(context.Background(), st), client)
	if err != nil {
		_ = client.Close()
		return
	}
	if res := <-ch; res.Err != nil {
		e.opts.Logger.Debug("re-enroll failed", "err", res.Err)
	}
}

// exchangeStreaming sends the head and the buffered prefix upstream, moves the rest of the body from
// the client socket, and relays the response. It watches the upstream while the body moves: an early
// response (412, 403, 400 …) stops the transfer, is relayed, and both connections close. reuse
// reports whether the client connection may serve another request.
func (e *Engine) exchangeStreaming(j *job, client net.Conn) (status int, reuse bool, res transfer.Result) {
	u, err := j.bucket.pool.get()
	if err != nil {
		e.metrics.upstreamErrors.Inc()
		se := poolError(err)
		e.errorResponse(j, se, true)
		writeAll(client, j.resp, e.opts.BodyStallTimeout)
		return se.Status, false, res
	}
	head := j.out[:j.headLen]
	_ = u.c.SetWriteDeadline(time.Now().Add(e.opts.BodyStallTimeout))
	_, err = u.c.Write(head)
	if err != nil && u.reused {
		// A pooled connection may have died while idle: nothing was sent, retry once on a new one.
		u.close()
		if u, err = j.bucket.pool.dial(); err == nil {
			_ = u.c.SetWriteDeadline(time.Now().Add(e.opts.BodyStallTimeout))
			if _, err = u.c.Write(head); err != nil {
				u.close()
			}
		}
	} else if err != nil {
		u.close()
	}
	if err != nil {
		e.metrics.upstreamErrors.Inc()
		e.errorResponse(j, errBadGateway, true)
		writeAll(client, j.resp, e.opts.BodyStallTimeout)
		return errBadGateway.Status, false, res
	}
	_ = u.c.SetWriteDeadline(time.Time{})
	if j.expect100 && j.remaining > 0 {
		if !writeAll(client, continueResponse, e.opts.BodyStallTimeout) {
			u.reset()
			return 499, false, res
		}
	}

	// Watch the upstream for its response while the body moves.
	ctx, cancel := context.WithCancel(e.killCtx)
	type result struct {
		resp    upResponse
		started bool
		err     error
	}
	done := make(chan result, 1)
	go func() {
		var r result
		r.started, r.err = readResponse(u, e.limits, &r.resp)
		done <- r // before cancel: Move's caller must find the response once ctx ends
		if r.err == nil || r.started {
			cancel() // an early (or any) response ends the body transfer
		}
	}()
	// Hold back the body's last byte: once the rest has moved, a peek shows whether bytes beyond
	// Content-Length follow that cannot start a next request (a body longer than declared). Then
	// the upstream is reset before it sees a complete body, so no object is stored.
	holdBack := canPeek && j.remaining > 0
	n := j.remaining
	if holdBack {
		n--
	}
	res, moveErr := e.mover.Move(ctx, u.c, client, j.out[j.headLen:], n)
	if moveErr == nil && holdBack {
		var last int64
		if last, moveErr = e.moveLastByte(client, u.c, nil); moveErr == errBodyTooLong {
			u.reset()
			<-done
			cancel()
			e.errorResponse(j, errIncompleteBody, true)
			writeAll(client, j.resp, e.opts.BodyStallTimeout)
			return errIncompleteBody.Status, false, res
		}
		res.Copied += last
	}
	bodyDone := moveErr == nil
	var r result
	var te *transfer.Error
	switch {
	case !bodyDone && e.killCtx.Err() != nil:
		// Drain deadline: the upstream must not store a partial object.
		u.reset()
		<-done
		cancel()
		e.errorResponse(j, errShuttingDown, true)
		writeAll(client, j.resp, e.opts.BodyStallTimeout)
		return errShuttingDown.Status, false, res
	case bodyDone:
		_ = u.c.SetReadDeadline(time.Now().Add(e.opts.ResponseTimeout))
		r = <-done
	case ctx.Err() != nil || errors.As(moveErr, &te) && te.Side == transfer.SideDst:
		// The upstream answered early or stopped reading: relay its response if one comes.
		_ = u.c.SetReadDeadline(time.Now().Add(lingerTime))
		r = <-done
	default:
		// The client side failed (gone, short body, stalled): make the upstream see an error
		// rather than a clean end, so it never stores a truncated object.
		u.reset()
		<-done
		cancel()
		if errors.Is(moveErr, transfer.ErrStalled) {
			e.errorResponse(j, errRequestTimeout, true)
			writeAll(client, j.resp, e.opts.BodyStallTimeout)
			return errRequestTimeout.Status, false, res
		}
		return 499, false, res // client gone: nobody to answer
	}
	cancel()
	if r.err != nil {
		if bodyDone || !r.started {
			u.reset()
		} else {
			u.close()
		}
		e.metrics.upstreamErrors.Inc()
		se := errBadGateway
		if isTimeout(r.err) {
			se = errUpstreamTimeout
		}
		e.errorResponse(j, se, true)
		writeAll(client, j.resp, e.opts.BodyStallTimeout)
		return se.Status, false, res
	}
	closeClient := !bodyDone || !j.keepAlive
	status = e.relayResponse(j, u, &r.resp, closeClient)
	if bodyDone && r.resp.keepAlive {
		u.pool.put(u)
	} else {
		u.close()
	}
	if !writeAll(client, j.resp, e.opts.BodyStallTimeout) {
		return status, false, res
	}
	return status, !closeClient, res
}

var errBodyTooLong = errors.New("engine: body longer than Content-Length")

// moveLastByte peeks at what follows the body's last byte and moves that byte upstream unless bytes
// follow that cannot begin a pipelined request.
func (e *Engine) moveLastByte(client, up net.Conn, tee io.Writer) (int64, error) {
	var b [24]byte
	_ = client.SetReadDeadline(time.Now().Add(e.opts.BodyStallTimeout))
	defer client.SetReadDeadline(time.Time{})
	n, err := peek(client, b[:])
	if err != nil {
		return 0, &transfer.Error{Side: transfer.SideSrc, Op: "peek", Err: err}
	}
	if n > 1 && !plausibleRequestStart(b[1:n]) {
		return 0, errBodyTooLong
	}
	if _, err := io.ReadFull(client, b[:1]); err != nil {
		return 0, &transfer.Error{Side: transfer.SideSrc, Op: "read", Err: err}
	}
	if tee != nil {
		_, _ = tee.Write(b[:1])
	}
	_ = up.SetWriteDeadline(time.Now().Add(e.opts.BodyStallTimeout))
	defer up.SetWriteDeadline(time.Time{})
	if _, err := up.Write(b[:1]); err != nil {
		return 0, &transfer.Error{Side: transfer.SideDst, Op: "write", Err: err}
	}
	return 1, nil
}

func writeAll(c net.Conn, b []byte, timeout time.Duration) bool {
	_ = c.SetWriteDeadline(time.Now().Add(timeout))
	_, err := c.Write(b)
	_ = c.SetWriteDeadline(time.Time{})
	return err == nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errorResponse fills j.resp with an S3 error document and returns its status.
func (e *Engine) errorResponse(j *job, s3err *s3Error, closeConn bool) int {
	j.resp = appendErrorResponse(j.resp[:0], s3err, j.resource, j.reqID[:], closeConn)
	return s3err.Status
}

// relayResponse copies the upstream's response into j.resp for the client: status line, end-to-end
// headers (ETag, x-amz-version-id, x-amz-checksum-*, x-amz-request-id, …) and the body framed as the
// upstream framed it; hop-by-hop headers are dropped and Connection: close added when closing.
func (e *Engine) relayResponse(j *job, u *upConn, resp *upResponse, closeConn bool) int {
	return e.relay(j, u.rbuf, &resp.head, resp.total, closeConn)
}

// relay renders the response held in buf (head parsed into h, head and body buf[:total]) into j.resp.
func (e *Engine) relay(j *job, buf []byte, h *httpparse.Response, total int, closeConn bool) int {
	j.upStatus = h.Status
	out := j.resp[:0]
	out = append(out, "HTTP/1.1 "...)
	out = strconv.AppendInt(out, int64(h.Status), 10)
	out = append(out, ' ')
	if r := h.Reason.Bytes(buf); len(r) > 0 {
		out = append(out, r...)
	} else {
		out = append(out, statusText(h.Status)...)
	}
	out = append(out, "\r\n"...)
	// The client gets the proxy's request id (the one in the access log); the upstream's id is
	// kept next to it for support cases.
	j.upReqID = j.upReqID[:0]
	for i := 0; i < h.NumHeaders; i++ {
		name := h.Headers[i].Name.Bytes(buf)
		if isResponseHopHeader(name) {
			continue
		}
		value := h.Headers[i].Value.Bytes(buf)
		if len(name) == len("x-amz-request-id") && equalFoldASCII(name, "x-amz-request-id") {
			j.upReqID = append(j.upReqID, value...)
			out = append(out, upstreamIDHeader...)
		} else {
			out = append(out, name...)
		}
		out = append(out, ": "...)
		out = append(out, value...)
		out = append(out, "\r\n"...)
	}
	out = append(out, "x-amz-request-id: "...)
	out = append(out, j.reqID[:]...)
	out = append(out, "\r\n"...)
	if closeConn {
		out = append(out, "Connection: close\r\n"...)
	}
	out = append(out, "\r\n"...)
	out = append(out, buf[h.HeadLen:total]...)
	j.resp = out
	return h.Status
}

// upstreamIDHeader carries the upstream's x-amz-request-id to the client.
const upstreamIDHeader = "x-mizuchi-upstream-request-id"

var responseHopHeaders = [...]string{"connection", "keep-alive", "proxy-connection", "upgrade", "te"}

func isResponseHopHeader(name []byte) bool {
	for _, h := range responseHopHeaders {
		if len(name) == len(h) && equalFoldASCII(name, h) {
			return true
		}
	}
	return false
}

var _ = httpparse.MaxHeaders

// modeName names the body path of a detached transfer for the access log.
func modeName(r transfer.Result) string {
	if r.Mode == 0 {
		return "none"
	}
	return r.Mode.String()
}
