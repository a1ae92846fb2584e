package engine

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/mizuchi/uploadr/httpparse"
	"github.com/mizuchi/uploadr/s3sig"
)

// Connection phases. A connection is owned by its event loop except in phaseDetached (owned by the
// goroutine moving its body) and phaseBusy (the loop owns it; an exchange goroutine holds a job that
// will hand the response back through AsyncWrite).
const (
	phaseHead     int32 = iota // reading a request head
	phaseBody                  // head accepted, waiting for a small body to arrive whole in the buffer
	phaseBusy                  // an inline exchange is in flight; bytes that arrive stay buffered
	phaseDetached              // the socket was handed to a goroutine; gnet forgot it
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

// connState is the per-connection state machine. Fields are touched only by the goroutine that owns
// the connection (see the phases), except phase and the timestamps, which the sweeper reads.
type connState struct {
	phase     atomic.Int32
	headSince atomic.Int64 // unix nanos when the current head's first byte was seen; 0 = none
	bodySince atomic.Int64 // unix nanos when phaseBody began
	idleSince atomic.Int64 // unix nanos when the connection became idle between requests
	conn      gnet.Conn    // current gnet connection (changes after re-enroll)
	closed    bool         // OnClose ran while an exchange was in flight
	returning bool         // handed back with Enroll; OnOpen must keep this state
	parser    httpparse.Parser
	req       *httpparse.Request // pooled: held from a head's first byte until the request is handed off
	rt        route
	bodyLen   int64
	sentCont  bool
	isHead    bool       // the request is a HEAD: answers carry no body
	principal string     // authenticated client access key ("" for auth: none)
	loop      *loopState // the event loop's in-loop upstream state, once used
	reqID     [16]byte
	remote    string
	scratch   []byte // per-connection scratch for error responses and canonical paths
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
		st.phase.Store(phaseHead)
		st.idleSince.Store(e.now())
		e.conns.add(st)
		return nil, gnet.None
	}
	if e.draining.Load() {
		return nil, gnet.Close
	}
	st := &connState{conn: c}
	st.idleSince.Store(e.now())
	if a := c.RemoteAddr(); a != nil {
		st.remote = a.String()
	}
	c.SetContext(st)
	e.conns.add(st)
	e.metrics.connsOpen.Inc()
	return nil, gnet.None
}

// OnClose forgets the connection unless it was detached (its socket lives on through a dup).
func (e *Engine) OnClose(c gnet.Conn, _ error) gnet.Action {
	if u, ok := c.Context().(*loopUp); ok {
		e.onUpstreamClose(u)
		return gnet.None
	}
	st, ok := c.Context().(*connState)
	if !ok {
		return gnet.None
	}
	if st.phase.Load() == phaseDetached {
		return gnet.None
	}
	st.closed = true
	st.releaseRequest()
	e.conns.remove(st)
	e.metrics.connsOpen.Dec()
	return gnet.None
}

// OnTick sweeps connections that exceeded the head, body or idle timeouts.
func (e *Engine) OnTick() (delay time.Duration, action gnet.Action) {
	e.sweep()
	return sweepInterval, gnet.None
}

// OnTraffic runs the request state machine on the bytes gnet buffered.
func (e *Engine) OnTraffic(c gnet.Conn) gnet.Action {
	switch x := c.Context().(type) {
	case *connState:
		return e.process(c, x)
	case *loopUp:
		return e.onUpstreamTraffic(c, x)
	}
	return gnet.Close
}

// process handles as many complete requests as the buffer holds. It runs on the loop only.
func (e *Engine) process(c gnet.Conn, st *connState) gnet.Action {
	for {
		switch st.phase.Load() {
		case phaseBusy:
			if c.InboundBuffered() > maxPipelinedBytes {
				return gnet.Close
			}
			return gnet.None
		case phaseDetached:
			return gnet.None
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
			}
			err := st.parser.Parse(buf, e.limits, st.req)
			if err == httpparse.ErrNeedMore {
				return gnet.None
			}
			if err != nil {
				e.newRequestID(&st.reqID)
				st.isHead = false
				return e.refuse(c, st, parseError(err), nil, true)
			}
			st.isHead = string(st.req.Method.Bytes(buf)) == "HEAD"
			if action, done := e.onHead(c, st, buf); done {
				return action
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
			return e.refuse(c, st, errIncompleteBody, buf[st.req.Path.Start:st.req.Path.End], true)
		}
		e.dispatchInline(c, st, buf)
	}
}

// onHead routes, validates and authenticates a complete head. It returns done=true with the action
// when the request was answered or detached; done=false when the body is to be awaited in the loop.
func (e *Engine) onHead(c gnet.Conn, st *connState, buf []byte) (gnet.Action, bool) {
	req := st.req
	e.newRequestID(&st.reqID)
	st.headSince.Store(0)
	st.principal = ""
	path := req.Path.Bytes(buf)
	_, copySrc := req.Lookup(buf, "x-amz-copy-source")
	rt, s3err := e.routeRequest(req.Method.Bytes(buf), path, req.Query.Bytes(buf), req.HasQuery, copySrc)
	st.rt = rt
	if s3err != nil {
		return e.refuseRequest(c, st, buf, s3err), true
	}
	bodyLen := req.ContentLength
	if bodyLen < 0 {
		if rt.op == opPutObject || rt.op == opUploadPart {
			return e.refuseRequest(c, st, buf, errMissingContentLength), true
		}
		bodyLen = 0
	}
	if !rt.op.hasBody() && bodyLen > 0 {
		return e.refuseRequest(c, st, buf, errInvalidArgument), true
	}
	if rt.op == opUploadPart && bodyLen > maxSinglePut+maxSinglePut/8 {
		return e.refuseRequest(c, st, buf, errEntityTooLarge), true
	}
	if rt.op == opCompleteMultipartUpload && bodyLen > maxCompleteBody {
		return e.refuseRequest(c, st, buf, errEntityTooLarge), true
	}
	st.bodyLen = bodyLen
	if s3err := e.checkPayload(st, buf); s3err != nil {
		return e.refuseRequest(c, st, buf, s3err), true
	}
	b := rt.bucket
	if s3err := e.authenticate(st, b, buf); s3err != nil {
		return e.refuseRequest(c, st, buf, s3err), true
	}
	if rt.op == opPutObject && b.upload.MultipartThreshold > 0 && bodyLen > b.upload.MultipartThreshold {
		return e.detachAutoChunk(c, st, buf), true
	}
	if bodyLen > int64(e.opts.InlineBodyMax) && rt.op != opCompleteMultipartUpload {
		return e.detach(c, st, buf), true
	}
	st.phase.Store(phaseBody)
	st.bodySince.Store(e.now())
	if req.Expect100 && len(buf)-req.HeadLen < int(bodyLen) && !st.sentCont {
		st.sentCont = true
		_, _ = c.Write(continueResponse)
	}
	return gnet.None, false
}

var continueResponse = []byte("HTTP/1.1 100 Continue\r\n\r\n")

// maxCompleteBody bounds a CompleteMultipartUpload document (10,000 parts with checksums).
const maxCompleteBody = 4 << 20

// checkPayload validates the payload declaration (x-amz-content-sha256, aws-chunked framing) and
// the declared size. It runs before authentication so a refused body is never read.
func (e *Engine) checkPayload(st *connState, buf []byte) *s3Error {
	req := st.req
	if v, ok := req.Lookup(buf, "x-amz-content-sha256"); ok {
		switch p := v.Bytes(buf); {
		case isHexSHA256(p), string(p) == s3sig.UnsignedPayload, string(p) == s3sig.StreamingUnsignedTrailer:
		case bytes.HasPrefix(p, []byte("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")), bytes.HasPrefix(p, []byte("STREAMING-AWS4-ECDSA")):
			return errSignedChunks
		default:
			return errInvalidContentSHA256
		}
	}
	if v, ok := req.Lookup(buf, "content-encoding"); ok && bytes.Contains(bytes.ToLower(v.Bytes(buf)), []byte("aws-chunked")) {
		d, ok := req.Lookup(buf, "x-amz-decoded-content-length")
		if !ok {
			return errDecodedLengthRequired
		}
		n, ok := parseDecimal(d.Bytes(buf))
		if !ok {
			return errInvalidDecodedLength
		}
		if st.rt.op == opPutObject && (n > e.opts.MaxObjectSize || n > maxSinglePut) {
			return errEntityTooLarge
		}
		if st.rt.op == opPutObject && e.autoChunks(st) {
			return errChunkedAutoChunk
		}
	} else if st.rt.op == opPutObject {
		if st.bodyLen > e.opts.MaxObjectSize || st.bodyLen > maxSinglePut && !e.autoChunks(st) {
			return errEntityTooLarge
		}
	}
	return nil
}

// autoChunks reports whether the routed PutObject will be cut into a multipart upload.
func (e *Engine) autoChunks(st *connState) bool {
	u := &st.rt.bucket.upload
	return u.MultipartThreshold > 0 && st.bodyLen > u.MultipartThreshold
}

func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

func isHexSHA256(p []byte) bool {
	if len(p) != 64 {
		return false
	}
	for _, c := range p {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// refuseRequest answers a routed or parsed head with an S3 error. When the request's body is fully
// buffered it is discarded and the connection kept; otherwise the connection closes so the unread
// body is never taken as a next request.
func (e *Engine) refuseRequest(c gnet.Conn, st *connState, buf []byte, s3err *s3Error) gnet.Action {
	req := st.req
	bodyLen := req.ContentLength
	if bodyLen < 0 {
		bodyLen = 0
	}
	closeConn := !req.KeepAlive || int64(len(buf)-req.HeadLen) < bodyLen || st.sentCont
	return e.refuse(c, st, s3err, req.Path.Bytes(buf), closeConn)
}

// refuse writes an S3 error response on the loop. It closes the connection when closeConn is set;
// otherwise it discards the request and resets the state for the next one.
func (e *Engine) refuse(c gnet.Conn, st *connState, s3err *s3Error, resource []byte, closeConn bool) gnet.Action {
	bucket := "-"
	if st.rt.bucket != nil {
		bucket = st.rt.bucket.name
	}
	e.metrics.refused(bucket, st.rt.op, s3err)
	st.scratch = appendErrorResponse(st.scratch[:0], s3err, resource, st.reqID[:], closeConn)
	if st.isHead {
		// A response to HEAD has no body (RFC 9110 9.3.2); its Content-Length still tells the size.
		if i := bytes.Index(st.scratch, []byte("\r\n\r\n")); i >= 0 {
			st.scratch = st.scratch[:i+4]
		}
	}
	_, _ = c.Write(st.scratch)
	e.metrics.bytesOut.Add(len(st.scratch))
	if al := e.opts.AccessLog; al != nil {
		e.accessLog(al, st.reqID[:], st.remote, st.principal, bucket, resource, st.rt.op, s3err.Status, 0,
			int64(len(st.scratch)), 0, "refused", 0, nil)
	}
	if len(st.scratch) > 64<<10 {
		st.scratch = nil
	}
	if closeConn {
		return gnet.Close
	}
	bodyLen := st.req.ContentLength
	if bodyLen < 0 {
		bodyLen = 0
	}
	_, _ = c.Discard(st.req.HeadLen + int(bodyLen))
	st.resetForNext(e.now())
	return gnet.None
}

func (st *connState) resetForNext(now int64) {
	st.releaseRequest()
	st.parser.Reset()
	st.phase.Store(phaseHead)
	st.headSince.Store(0)
	st.bodySince.Store(0)
	st.idleSince.Store(now)
	st.sentCont = false
	st.rt = route{}
	st.bodyLen = 0
}

// releaseRequest returns the parsed head to the pool once nothing refers to it.
func (st *connState) releaseRequest() {
	if st.req != nil {
		requestPool.Put(st.req)
		st.req = nil
	}
}

func parseError(err error) *s3Error {
	var pe *httpparse.Error
	if !errors.As(err, &pe) {
		return errBadRequest
	}
	switch pe.Status {
	case 431:
		return errHeadersTooLarge
	case 414:
		return errURITooLong
	case 505:
		return errHTTPVersion
	case 501:
		return errTransferEncoding
	case 417:
		return errExpectation
	}
	if errors.Is(err, httpparse.ErrContentLength) {
		return errInvalidContentLength
	}
	return errBadRequest
}

// plausibleRequestStart reports whether b could begin a pipelined HTTP request: an uppercase method
// token followed by a space (or still incomplete).
func plausibleRequestStart(b []byte) bool {
	for i, c := range b {
		if i > 16 {
			return false
		}
		if c == ' ' {
			return i > 0
		}
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
