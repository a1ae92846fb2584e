package engine

import (
	"net"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/mizuchi/uploadr/s3sig"
)

// A job carries one admitted request from the loop to its exchange with the upstream and on to
// finish. Everything it holds is owned (copied out of gnet's buffer). Its fields are grouped by
// lifetime: reqMeta lives from admission to finish; upHead is rebuilt for every upstream request
// the job makes (auto-chunking makes many); the side structs belong to one body path each.
type job struct {
	e *Engine
	reqMeta
	upHead

	out     []byte // the first upstream request: head, then the body (inline) or the buffered body prefix (detached)
	headLen int    // head bytes in out
	resp    []byte // the answer for the client
	budget  int64  // CompleteMultipartUpload body bytes reserved from the engine's budget
	side    side
	ids     idScratch // upload id binding (uploadid.go)

	inlineSide
	detachedSide
	chunkInput
}

// side is where a job's client connection lives, and so how finish hands it on.
type side uint8

const (
	sideLoop     side = iota // in gnet, answered on its loop (loop-owned upstream connection)
	sideAsync                // in gnet, exchanged from a goroutine; the answer goes back with AsyncWrite
	sideDetached             // dup'ed out of gnet; re-enrolled after the answer
	sideNet                  // a net.Conn served by the goroutine driver (Engine.Serve)
)

// reqMeta is who sent what and when: the access log line and metrics of one request.
type reqMeta struct {
	reqID     [16]byte
	bucket    *bucketState
	op        op
	started   time.Time
	remote    string
	principal Principal
	resource  []byte // the client's raw path, for error documents and the access log
	keyStart  int    // where the key starts in resource; 0 when the request was not routed to one
	keepAlive bool
	expect100 bool   // the client waits for 100 Continue before it sends the body
	upStatus  int    // the upstream's status, 0 when it was not asked
	upReqID   []byte // the upstream's x-amz-request-id
	cors      []byte // CORS header lines every answer carries (cors.go); usually empty
	trace     reqTrace
}

// upHead is the scratch one upstream request head is built and signed in.
type upHead struct {
	path, query, tmp, date, auth []byte
	tmp2, num                    []byte
	enc                          []byte // Content-Encoding without aws-chunked (withoutAWSChunked)
	sigHdrs                      []s3sig.Header
}

// inlineSide is a job whose client stays in gnet (sideLoop, sideAsync).
type inlineSide struct {
	c       gnet.Conn
	st      *connState
	retried bool // in-loop: sent again after a pooled connection died

	// A body streamed in the loop (inline.go startStream): the head went upstream first, the body
	// follows as the client sends it.
	streaming  bool
	streamed   int64 // body bytes written upstream
	streamLeft int64 // body bytes still to come from the client
}

// detachedSide is a job whose client socket left gnet (sideDetached).
type detachedSide struct {
	kind      verdict        // verdictStream or verdictAutoChunk
	chunked   chunkJob       // a signed aws-chunked body (chunked.info.mode != chunksNone)
	authz     *AuthzInput    // the Authorizer must allow first; nil when decided
	client    net.Conn       // the socket, once out of gnet
	el        gnet.EventLoop // where to re-enroll the client
	clientFD  int
	remaining int64    // body bytes still in the client socket; -1: a chunked body not read to its end yet
	te        bool     // Transfer-Encoding: chunked (tecoding.go); out's body prefix is still framed
	consumed  int      // bytes of the head's buffer this request used: head and body prefix
	post      *postJob // a PostObject (postobject.go)
}

// chunkInput is what auto-chunking needs of the client's PutObject.
type chunkInput struct {
	hdrBuf []byte        // the client's headers, copied out of gnet's buffer
	hdrs   []ownedHeader // views into hdrBuf
	total  int64         // body size
	// noOverwrite: Complete carries If-None-Match: * (bucket policy no_overwrite)
	noOverwrite bool
}

// ownedHeader is a client header copied out of gnet's buffer (both slices point into job.hdrBuf).
type ownedHeader struct{ name, value []byte }

var jobPool = sync.Pool{New: func() any { return new(job) }}

// newJob takes a job for the request st admitted; resource is the client's raw path.
func (e *Engine) newJob(st *connState, resource []byte, s side) *job {
	j := jobPool.Get().(*job)
	e.active.Add(1)
	activeTotal.Add(1)
	j.e = e
	j.side = s
	j.st = st
	j.reqMeta.reset(st.reqID, st.rt.bucket, st.rt.op, st.remote, st.principal, resource)
	j.cors = append(j.cors[:0], st.cors...)
	j.keyStart = st.rt.keyStart
	j.trace = st.takeTrace(nil)
	j.keepAlive = st.keepAlive && !e.draining.Load()
	j.expect100 = st.expect100 && !st.sentCont
	j.budget = st.budget
	st.budget = 0
	return j
}

func (m *reqMeta) reset(id [16]byte, b *bucketState, o op, remote string, p Principal, resource []byte) {
	m.reqID, m.bucket, m.op, m.remote, m.principal = id, b, o, remote, p
	m.started = time.Now()
	m.resource = append(m.resource[:0], resource...)
	m.upStatus = 0
	m.upReqID = m.upReqID[:0]
	m.keepAlive, m.expect100 = false, false
}

// release returns j to the pool (and the Complete budget it held).
func (j *job) release() {
	if cap(j.out) > 256<<10 {
		j.out = nil
	}
	if cap(j.resp) > 256<<10 {
		j.resp = nil
	}
	j.cors = j.cors[:0]
	if cap(j.tmp) > 256<<10 {
		j.tmp = nil
	}
	if cap(j.ids.out)+cap(j.ids.body) > 256<<10 {
		j.ids = idScratch{} // a long ListParts answer
	}
	if j.budget > 0 {
		j.e.completeBudget.release(j.budget)
		j.budget = 0
	}
	clear(j.sigHdrs)
	clear(j.hdrs)
	j.hdrs = j.hdrs[:0]
	j.e.active.Add(-1)
	activeTotal.Add(-1)
	j.principal = Principal{}
	if j.trace.span != nil { // released without an answer recorded
		j.trace.span.SetError("abandoned")
		j.trace.span.End(time.Time{})
	}
	j.trace = reqTrace{}
	j.e, j.st, j.c, j.el, j.bucket, j.client, j.authz = nil, nil, nil, nil, nil, nil, nil
	j.retried = false
	j.streaming, j.streamed, j.streamLeft = false, 0, 0
	j.noOverwrite = false
	j.te = false
	j.post = nil
	jobPool.Put(j)
}
