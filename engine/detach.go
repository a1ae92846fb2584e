package engine

import (
	"context"
	"net"
	"os"

	"github.com/panjf2000/gnet/v2"

	"github.com/mizuchi/uploadr/transfer"
)

// detach hands the client socket to a goroutine that moves the body (stream or auto-chunk, after
// the Authorizer when the bucket has one): dup the fd, copy what must outlive the callback (the
// upstream head, the buffered body prefix, the client's headers), forget the connection in gnet
// (return Close on the loop, synchronous) and let OnClose ignore it. See ../shared/DESIGN.md.
func (e *Engine) detach(c gnet.Conn, st *connState, buf []byte, d *decision) gnet.Action {
	req := st.req
	fd, err := c.Dup()
	if err != nil {
		return e.refuse(c, st, errInternal, req.Path.Bytes(buf), true)
	}
	j := e.newJob(st, req.Path.Bytes(buf), sideDetached)
	j.el = c.EventLoop()
	j.clientFD = fd
	j.kind = d.verdict
	if d.verdict == verdictAwait {
		h := Head{req: req, buf: buf}
		j.authz = newAuthzInput(&h, d, st.reqID[:], st.remote)
		j.kind = d.next
	}
	if err := e.prepare(j, st, buf); err != nil {
		_ = closeFD(fd)
		j.release()
		return e.refuse(c, st, errInvalidURI, req.Path.Bytes(buf), true)
	}
	if len(buf) > j.consumed {
		// A pipelined next request is in gnet's buffer and would be discarded with it: answer this
		// one with Connection: close instead of leaving the client waiting for an answer that never
		// comes (HTTP/1.1 clients retry unanswered pipelined requests on a new connection).
		j.keepAlive = false
	}
	st.toDetached()
	e.conns.remove(st) // first: the sweeper reads st.conn under the registry's lock
	st.conn = nil      // OnClose of c, which runs once we return Close, must not touch st (see OnClose)
	_, _ = c.Discard(-1)
	e.metrics.detached.Inc()
	if j.kind == verdictAutoChunk {
		e.metrics.autoChunked.Inc()
	}
	go e.runDetached(j)
	return gnet.Close
}

// prepare copies out of buf what the job's exchange needs once buf is gone: the signed upstream
// head and the buffered body prefix (stream), or the client's headers and the prefix
// (auto-chunk). It runs where buf is valid (the loop, or the net.Conn driver).
func (e *Engine) prepare(j *job, st *connState, buf []byte) error {
	req := st.req
	if st.rt.op == opPostObject {
		return e.preparePost(j, st, buf) // postobject.go
	}
	if j.kind == verdictAutoChunk {
		if err := j.setUpstreamPath(j.bucket, req.Path.Bytes(buf)[st.rt.keyStart:st.rt.keyEnd]); err != nil {
			return err
		}
		j.copyHeaders(req, buf, st.signedHeaders(j.bucket, buf))
		j.out = j.out[:0]
		j.headLen = 0
		j.total = st.bodyLen
		if st.chunks.mode != chunksNone {
			j.total = st.chunks.decoded // parts are cut from the decoded bytes
		}
		j.noOverwrite = st.noOverwrite
	} else if err := e.buildUpstreamHead(j, st, j.bucket, buf); err != nil {
		return err
	}
	j.chunked.info = st.chunks
	if st.chunks.mode != chunksNone {
		j.chunked.seed = st.head.seed
	}
	prefix := buf[req.HeadLen:] // shorter than the body unless the driver read it whole
	j.te = req.Chunked
	if j.te {
		// Its end is found by scanning: what follows it is a pipelined request.
		n, done := teBodyPrefix(prefix)
		prefix = prefix[:n]
		j.remaining = -1
		if done {
			j.remaining = 0
		}
	} else {
		if int64(len(prefix)) > st.bodyLen {
			prefix = prefix[:st.bodyLen]
		}
		j.remaining = st.bodyLen - int64(len(prefix))
	}
	j.out = append(j.out, prefix...)
	j.consumed = req.HeadLen + len(prefix)
	return nil
}

func closeFD(fd int) error { return os.NewFile(uintptr(fd), "").Close() }

// runDetached serves a detached request on the client socket and finishes it.
func (e *Engine) runDetached(j *job) {
	f := os.NewFile(uintptr(j.clientFD), "client")
	client, err := net.FileConn(f)
	_ = f.Close()
	if err != nil {
		e.finish(j, outcome{status: 500, mode: "none", closeClient: true})
		return
	}
	if j.st.tls != nil {
		client = j.st.tlsDetached(client, e.readAheads, j.remaining) // read and answer through TLS (looptls_server.go)
	}
	j.client = client
	e.finish(j, e.exchange(j, client))
}

// exchange runs a moved request's exchange on the client connection: the Authorizer's decision
// when one is pending, then the streaming or auto-chunked exchange. It writes the client's answer.
func (e *Engine) exchange(j *job, client net.Conn) outcome {
	if j.op == opPostObject {
		return e.exchangePost(j, client) // authorized once its form is read (postobject_exchange.go)
	}
	if j.authz != nil {
		in := j.authz
		j.authz = nil
		if s3err := e.authorize(j.bucket.authz, in); s3err != nil {
			return e.answerError(j, client, s3err, transfer.Result{})
		}
	}
	var status int
	var reuse bool
	var moved transfer.Result
	if j.kind != verdictAutoChunk {
		j.traceUpstream(upstreamNames[j.op], j.out) // the head prepare built names it
	}
	switch {
	case j.kind == verdictAutoChunk:
		status, reuse, moved = e.autoChunk(j, client)
	case j.te:
		status, reuse, moved = e.exchangeDechunked(j, client)
	case j.chunked.info.mode != chunksNone:
		status, reuse, moved = e.exchangeSignedChunks(j, client)
	default:
		status, reuse, moved = e.exchangeStreaming(j, client)
	}
	if moved.PipeTooSmall {
		e.metrics.pipeTooSmall.Inc()
	}
	return outcome{status: status, bodyBytes: moved.Spliced + moved.Copied, spliced: moved.Spliced,
		mode: modeName(moved), closeClient: !reuse}
}

// answerError writes an S3 error for a moved request whose body may still be coming and returns
// its outcome (the connection closes).
func (e *Engine) answerError(j *job, client net.Conn, s3err *s3Error, moved transfer.Result) outcome {
	j.trace.refused(s3err)
	e.errorResponse(j, s3err, true)
	writeAll(client, j.resp, e.opts.BodyStallTimeout)
	return outcome{status: s3err.Status, bodyBytes: moved.Spliced + moved.Copied, spliced: moved.Spliced,
		mode: modeName(moved), closeClient: true}
}

// handBack returns a detached client connection to its event loop for the next request (Enroll,
// see ../shared/DESIGN.md), or closes it (lingering, so an answer given before the whole body was
// read is not destroyed by a reset). It releases j.
func (e *Engine) handBack(j *job, reuse bool) {
	client, lst := j.client, j.st
	j.client = nil
	if lst.tls != nil {
		lst.tls.mc.stopReadAhead(e.readAheads) // what was read ahead stays for the loop
	}
	if client == nil || !reuse || !j.keepAlive || e.draining.Load() {
		j.release()
		e.releaseConn(lst) // limits.go
		e.metrics.connsOpen.Dec()
		if client != nil {
			lingerClose(client)
		}
		return
	}
	st, el := j.st, j.el
	j.release()
	st.toHead(e.now())
	st.returning = true
	if st.tls != nil {
		client = st.tlsSocket()
	}
	ch, err := el.Enroll(gnet.NewContext(context.Background(), st), client)
	if err != nil {
		e.releaseConn(st)
		e.metrics.connsOpen.Dec()
		_ = client.Close()
		return
	}
	if res := <-ch; res.Err != nil {
		e.releaseConn(st)
		e.metrics.connsOpen.Dec()
		e.opts.Logger.Debug("re-enroll failed", "err", res.Err)
	}
}

// modeName names the body path of a moved request for the access log.
func modeName(r transfer.Result) string {
	if r.Mode == 0 {
		return "none"
	}
	return r.Mode.String()
}
