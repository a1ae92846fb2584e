package engine

import (
	"github.com/panjf2000/gnet/v2"
)

// dispatchInline starts the exchange of a request whose whole body is in the loop's buffer: the
// upstream request (head + body) is built in the loop and the client connection stays in gnet.
// It goes out on a loop-owned upstream connection (upstream_loop.go) when it can — no goroutine,
// no allocation — else from a goroutine whose answer comes back through AsyncWrite. Pipelined
// bytes stay buffered until then.
func (e *Engine) dispatchInline(c gnet.Conn, st *connState, buf []byte) {
	req := st.req
	j := e.newJob(st, req.Path.Bytes(buf), sideLoop)
	j.c = c
	if err := e.buildUpstreamHead(j, st, j.bucket, buf); err != nil {
		j.release()
		e.refuse(c, st, errInvalidURI, req.Path.Bytes(buf), true)
		_ = c.Close()
		return
	}
	j.out = append(j.out, buf[req.HeadLen:req.HeadLen+int(st.bodyLen)]...)
	_, _ = c.Discard(req.HeadLen + int(st.bodyLen))
	st.toBusy()
	st.loopJob = true // before sending: a failed write may answer j inside the call
	if !e.opts.NoLoopUpstream && j.op != opCompleteMultipartUpload && e.sendInLoop(c, j) {
		return
	}
	st.loopJob = false
	j.side = sideAsync
	go e.runInline(j)
}

// runInline exchanges an inline request from a goroutine (Complete documents,
// the endpoint's connection limit reached, or Options.NoLoopUpstream) and finishes it.
func (e *Engine) runInline(j *job) { e.finish(j, e.inlineExchange(j)) }

// inlineExchange checks a Complete document, exchanges j.out and leaves the answer in j.resp.
func (e *Engine) inlineExchange(j *job) outcome {
	o := outcome{bodyBytes: int64(len(j.out) - j.headLen), mode: "inline"}
	if j.op == opCompleteMultipartUpload && !wellFormedComplete(j.out[j.headLen:]) {
		o.status = e.errorResponse(j, errMalformedXML, !j.keepAlive)
		e.metrics.refusal(errMalformedXML)
	} else {
		o.status, o.closeClient = e.exchangeBuffered(j)
	}
	o.closeClient = o.closeClient || !j.keepAlive
	return o
}

// exchangeBuffered sends j.out (head and whole body) upstream and builds the client response in
// j.resp. A reused connection that fails before any response byte is retried once on a new one.
func (e *Engine) exchangeBuffered(j *job) (status int, closeClient bool) {
	j.traceUpstream(upstreamNames[j.op], j.out)
	u, resp, s3err := e.roundTrip(j, j.out, nil)
	if s3err != nil {
		return e.errorResponse(j, s3err, true), true
	}
	status = e.relayResponse(j, u, &resp, !j.keepAlive)
	u.release(resp.keepAlive)
	return status, false
}
