package engine

import (
	"net"
	"strconv"
	"time"

	"github.com/mizuchi/uploadr/s3sig"
)

// Tracing: a span per request, with children for the authentication and authorization decisions,
// each upstream round trip and each auto-chunked part. engine defines the seam (Tracer, Span);
// server plugs in package tracing (OpenTelemetry, OTLP/HTTP). With Options.Tracer nil — tracing
// off, the default — every hook is a nil check and nothing else. With a Tracer, a request is
// looked at only when it carries a traceparent header or the Tracer samples roots (ratio above 0),
// and one the Tracer does not record (StartRequest returned nil) costs nothing more.
//
// The spans of a recorded request:
//
//	<operation>                 server span: the request, from its parsed head to its answer
//	├── authenticate            admit: routing, payload checks, authentication, bucket policy, limits
//	├── authorize               the bucket's Authorizer (OPA, OpenFGA), off the loop
//	├── upstream <operation>    the upstream round trip (inline, streamed: one)
//	├── upstream CreateMultipartUpload, UploadPart (one per part), upstream CompleteMultipartUpload
//	│                           auto-chunking
//	└── abort multipart upload  a failed auto-chunked upload's abort, with its outcome; it may end
//	    │                       after the request span (background retries, abort.go)
//	    └── upstream AbortMultipartUpload   one per attempt
//
// The bucket's Authorizer gets the authorize span's traceparent in AuthzInput.Traceparent and the
// trace's tracestate in AuthzInput.Tracestate; the OPA and OpenFGA clients send both with their
// decision requests.
//
// Each upstream request carries a W3C traceparent naming its span (and the client's tracestate).
// The header is not signed: the proxy signs only what the client signed plus its own host,
// x-amz-date and payload hash, and an unsigned header is ignored by SigV4 verification. The
// client's own traceparent and tracestate are never forwarded for a recorded request (the proxy's
// replace them); for a request that is not recorded nothing changes.

// Tracer starts the span of a request. Implementations are safe for concurrent use.
type Tracer interface {
	// StartRequest starts the server span named name (the S3 operation) that began at start, for
	// a request that carried traceparent and tracestate (nil when absent). It returns nil when
	// the request is not recorded, and must then not allocate.
	StartRequest(name string, traceparent, tracestate []byte, start time.Time) Span
	// SamplesRoots reports whether a request without a traceparent may be recorded (a sample
	// ratio above 0). When false, such requests skip StartRequest.
	SamplesRoots() bool
}

// Span is a recorded span. Safe for concurrent use.
type Span interface {
	// Child starts a child span at start (zero: now); client marks a request the proxy sends.
	Child(name string, start time.Time, client bool) Span
	SetString(key, value string)
	SetInt(key string, value int64)
	// SetError marks the span failed.
	SetError(description string)
	// End ends the span at t (zero: now).
	End(t time.Time)
	// AppendTraceparent appends the W3C traceparent naming this span as parent (55 bytes).
	AppendTraceparent(dst []byte) []byte
	// AppendTracestate appends the W3C tracestate the trace carries; nothing when it has none.
	AppendTracestate(dst []byte) []byte
}

// Span attribute keys: OpenTelemetry semantic conventions where one fits, mizuchi.* otherwise.
const (
	attrOperation     = "mizuchi.operation"  // PutObject, UploadPart, …
	attrPath          = "mizuchi.path"       // inline, splice, copy, auto-chunk, refused, none
	attrRequestID     = "mizuchi.request_id" // the x-amz-request-id the client got
	attrBodyBytes     = "mizuchi.body_bytes" // request body bytes taken from the client
	attrRespBytes     = "mizuchi.response_bytes"
	attrError         = "mizuchi.error_code" // the S3 error code of a refusal
	attrAuthMethod    = "mizuchi.auth.method"
	attrDecision      = "mizuchi.authz.decision" // allow, deny, timeout
	attrUpReqID       = "aws.request_id"         // the upstream's x-amz-request-id
	attrBucket        = "aws.s3.bucket"          // client-facing bucket name
	attrKey           = "aws.s3.key"             // decoded key, with Options.TraceKeys only
	attrPart          = "aws.s3.part_number"
	attrStatus        = "http.response.status_code"
	attrUpStatus      = "mizuchi.upstream.status_code"
	attrMethod        = "http.request.method"
	attrClient        = "client.address" // the PROXY protocol's client when there is one
	attrClientPort    = "client.port"
	attrPrincipal     = "enduser.id"
	attrPartBytes     = "mizuchi.part_bytes"
	attrUploadID      = "aws.s3.upload_id"
	attrAbortOutcome  = "mizuchi.abort.outcome" // aborted, gave_up
	attrAbortAttempts = "mizuchi.abort.attempts"
	traceparentName   = "traceparent"
	tracestateName    = "tracestate"
)

// upstreamNames names the span of an upstream round trip by operation (no allocation per request).
var upstreamNames = func() (n [numOps]string) {
	for i := range n {
		n[i] = "upstream " + opNames[i]
	}
	return n
}()

// reqTrace is the tracing state of one request: all nil unless it is recorded.
type reqTrace struct {
	span Span   // the request's span
	up   Span   // the upstream round trip in flight (ended by endUpstream or record)
	cur  Span   // the span the next signed upstream head names as parent (nil: span)
	tpAt int    // offset of the traceparent value in the last head appendSignedHead built; -1: none
	path string // overrides the body mode as the path taken ("auto-chunk")
	code string // a refusal's S3 error code
}

// admitLimited is admit behind the client limits (admitWithLimits, limits.go), traced when the
// Tracer records the request: the request span starts and its authenticate child covers admit.
func (e *Engine) admitLimited(st *connState) decision {
	t := e.opts.Tracer
	if t == nil {
		return e.admitWithLimits(st)
	}
	tp, ok := st.head.Header(traceparentName)
	if !ok && !t.SamplesRoots() {
		return e.admitWithLimits(st)
	}
	ts, _ := st.head.Header(tracestateName)
	t0 := time.Now()
	d := e.admitWithLimits(st)
	sp := t.StartRequest(d.rt.op.String(), tp, ts, t0)
	if sp == nil {
		return d
	}
	if d.rt.op == opPostObject && d.verdict != verdictRefuse {
		// A form upload authenticates once its form is read (checkPostForm): that is its
		// authenticate span.
		e.traceHead(st, &d, sp)
		st.span, d.span = sp, sp
		return d
	}
	a := sp.Child("authenticate", t0, false)
	if d.principal.Method != "" {
		a.SetString(attrAuthMethod, d.principal.Method)
	}
	if d.verdict == verdictRefuse {
		a.SetString(attrError, d.err.Code)
		if d.authErr {
			a.SetError(d.err.Code)
		}
	}
	a.End(time.Time{})
	e.traceHead(st, &d, sp)
	st.span, d.span = sp, sp
	return d
}

// traceHead sets the request span's attributes known from its head and admission.
func (e *Engine) traceHead(st *connState, d *decision, sp Span) {
	sp.SetString(attrOperation, d.rt.op.String())
	sp.SetString(attrMethod, string(st.head.Method()))
	sp.SetString(attrRequestID, string(st.reqID[:]))
	if host, port, err := net.SplitHostPort(st.remote); err == nil {
		sp.SetString(attrClient, host)
		if n, err := strconv.Atoi(port); err == nil {
			sp.SetInt(attrClientPort, int64(n))
		}
	} else if st.remote != "" {
		sp.SetString(attrClient, st.remote)
	}
	if d.principal.ID != "" {
		sp.SetString(attrPrincipal, d.principal.ID)
	}
	if d.principal.Method != "" {
		sp.SetString(attrAuthMethod, d.principal.Method)
	}
	if b := d.rt.bucket; b != nil {
		sp.SetString(attrBucket, b.name)
		if e.opts.TraceKeys && d.rt.keyEnd > d.rt.keyStart {
			if key, err := s3sig.AppendPercentDecode(nil, st.head.Path()[d.rt.keyStart:d.rt.keyEnd]); err == nil {
				sp.SetString(attrKey, string(key))
			}
		}
	}
	if d.rt.partNum > 0 {
		sp.SetInt(attrPart, int64(d.rt.partNum))
	}
}

// takeTrace hands st's request span to the request's record (a refusal: code is its S3 error).
func (st *connState) takeTrace(s3err *s3Error) reqTrace {
	t := reqTrace{span: st.span, tpAt: -1}
	st.span = nil
	if t.span != nil && s3err != nil {
		t.code = s3err.Code
	}
	return t
}

// refused notes the S3 error a traced request is answered with off the loop (endTrace records it).
func (t *reqTrace) refused(s3err *s3Error) {
	if t.span != nil {
		t.code = s3err.Code
	}
}

// dropSpan ends the span of a request that ended without an answer (the client went away).
func (st *connState) dropSpan() {
	if st.span != nil {
		st.span.SetError("connection closed before an answer")
		st.span.End(time.Time{})
		st.span = nil
	}
}

// authorize asks a for a decision (authorizeOnce, await.go) inside an authorize span when the
// request is recorded.
func (e *Engine) authorize(a Authorizer, in *AuthzInput) *s3Error {
	if in.span == nil {
		return e.authorizeOnce(a, in)
	}
	sp := in.span.Child("authorize", time.Time{}, false)
	in.Traceparent = string(sp.AppendTraceparent(make([]byte, 0, 55)))
	if ts := sp.AppendTracestate(nil); len(ts) > 0 {
		in.Tracestate = string(ts)
	}
	s3err := e.authorizeOnce(a, in)
	switch {
	case s3err == nil:
		sp.SetString(attrDecision, "allow")
	case s3err == errAuthorizeTimeout:
		sp.SetString(attrDecision, "timeout")
		sp.SetError(s3err.Code)
	default:
		sp.SetString(attrDecision, "deny")
		sp.SetString(attrError, s3err.Code)
		sp.SetError(s3err.Code)
	}
	sp.End(time.Time{})
	return s3err
}

// traceUpstream starts the span of an upstream round trip named name unless one is open, and makes
// it the parent the upstream request names: in head (built before, by appendSignedHead; nil when
// the head is built after this call) its traceparent is rewritten in place (the header is not
// signed, so the signature stands).
func (j *job) traceUpstream(name string, head []byte) {
	t := &j.trace
	if t.span == nil || t.up != nil {
		return
	}
	t.up = t.span.Child(name, time.Time{}, true)
	t.cur = t.up
	if head != nil && t.tpAt >= 0 && t.tpAt+55 <= len(head) {
		var b [55]byte
		copy(head[t.tpAt:t.tpAt+55], t.up.AppendTraceparent(b[:0]))
	}
}

// endUpstream ends the open upstream span with the upstream's status (0: no answer).
func (j *job) endUpstream(status int, s3err *s3Error) {
	t := &j.trace
	if t.up == nil {
		return
	}
	endUpstreamSpan(t.up, status, s3err)
	t.up, t.cur = nil, nil
}

func endUpstreamSpan(sp Span, status int, s3err *s3Error) {
	if status > 0 {
		sp.SetInt(attrStatus, int64(status))
	}
	switch {
	case s3err != nil:
		sp.SetString(attrError, s3err.Code)
		sp.SetError(s3err.Code)
	case status == 0:
		sp.SetError("no answer")
	case status >= 500:
		sp.SetError("upstream " + httpError(status))
	}
	sp.End(time.Time{})
}

// appendTraceHeaders appends the traceparent (and tracestate) lines of an upstream request of a
// recorded request, naming t.cur (or the request span), and notes where the traceparent value is.
func (t *reqTrace) appendTraceHeaders(dst []byte) []byte {
	sp := t.cur
	if sp == nil {
		sp = t.span
	}
	dst = append(dst, "traceparent: "...)
	t.tpAt = len(dst)
	dst = sp.AppendTraceparent(dst)
	dst = append(dst, "\r\n"...)
	n := len(dst)
	dst = append(dst, "tracestate: "...)
	if dst = sp.AppendTracestate(dst); len(dst) == n+len("tracestate: ") {
		return dst[:n]
	}
	return append(dst, "\r\n"...)
}

// isTraceHeader reports whether name is traceparent or tracestate (replaced upstream by the
// proxy's own for a recorded request).
func isTraceHeader(name []byte) bool {
	return len(name) == len(traceparentName) && equalFoldASCII(name, traceparentName) ||
		len(name) == len(tracestateName) && equalFoldASCII(name, tracestateName)
}

// traceAutoChunk marks a recorded request as auto-chunked and gives its parts their spans.
func (p *chunkedPut) traceAutoChunk(nparts int) {
	if p.j.trace.span == nil {
		return
	}
	p.j.trace.path = "auto-chunk"
	p.parts = make([]Span, nparts)
}

// tracePart starts the span of part n (1-based) and makes it the parent its head names.
func (p *chunkedPut) tracePart(n int, partLen int64) {
	if p.parts == nil {
		return
	}
	sp := p.j.trace.span.Child("UploadPart", time.Time{}, true)
	sp.SetInt(attrPart, int64(n))
	sp.SetInt(attrPartBytes, partLen)
	p.parts[n-1] = sp
	p.j.trace.cur = sp
}

// failure is the upload's failure so far (nil: none, or an upstream answer was relayed).
func (p *chunkedPut) failure() *s3Error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.s3err
}

// endPart ends part n's span: the upstream's status, or the failure.
func (p *chunkedPut) endPart(n int, status int, s3err *s3Error) {
	if p.parts == nil || p.parts[n-1] == nil {
		return
	}
	sp := p.parts[n-1]
	p.parts[n-1] = nil
	endUpstreamSpan(sp, status, s3err)
}

// endTrace ends a recorded request's span (record): the open upstream span, then the request's.
func endTrace(m *reqMeta, o outcome, respBytes int64, end time.Time) {
	t := &m.trace
	sp := t.span
	t.span = nil
	if t.up != nil {
		endUpstreamSpan(t.up, m.upStatus, nil)
		t.up, t.cur = nil, nil
	}
	path := t.path
	if path == "" || o.mode == "refused" {
		path = o.mode
	}
	sp.SetString(attrPath, path)
	sp.SetInt(attrStatus, int64(o.status))
	sp.SetInt(attrBodyBytes, o.bodyBytes)
	sp.SetInt(attrRespBytes, respBytes)
	if m.upStatus > 0 {
		sp.SetInt(attrUpStatus, int64(m.upStatus))
	}
	if len(m.upReqID) > 0 {
		sp.SetString(attrUpReqID, string(m.upReqID))
	}
	switch {
	case t.code != "":
		sp.SetString(attrError, t.code)
		sp.SetError(t.code)
	case o.status >= 500:
		sp.SetError(httpError(o.status))
	}
	sp.End(end)
}

// httpError is "HTTP <status>" for a span's error description.
func httpError(status int) string { return "HTTP " + strconv.Itoa(status) }

// traceAnswer ends part i's span with the upstream's answer (partAnswered).
func (p *chunkedPut) traceAnswer(i int, a *upAnswer) {
	switch {
	case a.err != nil && isTimeout(a.err):
		p.endPart(i+1, 0, errUpstreamTimeout)
	case a.err != nil:
		p.endPart(i+1, 0, errBadGateway)
	default:
		p.endPart(i+1, a.resp.head.Status, nil)
	}
}
