package engine

import (
	"context"

	"github.com/mizuchi/uploadr/httpparse"
	"github.com/mizuchi/uploadr/s3sig"
)

// The seams for identity and policy. engine defines them (the user of an interface owns it, as
// net/http owns Handler and RoundTripper) and small leaf packages implement them: SigV4 header
// authentication and `auth: none` are the built-in Authenticators; JWT, OPA and OpenFGA plug in
// through a leaf package plus an adapter that returns these types.

// Principal is who a request was authenticated as. It flows to the Authorizer, the access log and
// metrics. Authenticators on the hot path return strings they already own (no allocation).
type Principal struct {
	// ID is the identity: a SigV4 access key id, a JWT subject; "" for anonymous (auth: none).
	ID string
	// Method names how it was established: "sigv4", "sigv4-presigned", "none", "jwt", …
	Method string
	// Claims carries verified attributes for policy (JWT claims); nil when there are none.
	// Authorizers must treat it as read-only.
	Claims map[string]any
}

// Authenticator establishes who sent a request from its head alone. It runs on the event loop
// for every request, so it must not block, do I/O or allocate per request in the common case; a
// decision that needs the network belongs in an Authorizer. It returns the principal, or an S3
// error to answer (403 AccessDenied, SignatureDoesNotMatch, …).
type Authenticator interface {
	Authenticate(h *Head) (Principal, *Error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(h *Head) (Principal, *Error)

// Authenticate calls f(h).
func (f AuthenticatorFunc) Authenticate(h *Head) (Principal, *Error) { return f(h) }

// Authorizer decides whether an authenticated request may proceed, before any body byte moves.
// It may block (a remote policy engine, a JWKS refresh): it runs off the event loop while the
// connection waits in the await phase, and ctx ends at Options.AuthorizeTimeout (the client then
// gets 503 SlowDown). It returns nil to allow, or the S3 error to answer (403 AccessDenied …).
// Authorize is called concurrently and must be safe for that.
type Authorizer interface {
	Authorize(ctx context.Context, in *AuthzInput) *Error
}

// AuthorizerFunc adapts a function to Authorizer.
type AuthorizerFunc func(ctx context.Context, in *AuthzInput) *Error

// Authorize calls f(ctx, in).
func (f AuthorizerFunc) Authorize(ctx context.Context, in *AuthzInput) *Error { return f(ctx, in) }

// AuthzInput is what an Authorizer decides on. Everything is owned (copied out of the
// connection's buffer), so it may be kept.
type AuthzInput struct {
	RequestID string
	Remote    string // client address
	Principal Principal
	Operation string // PutObject (a browser form upload's too), CreateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload, ListParts
	Bucket    string // client-facing bucket name
	Key       string // decoded object key
	UploadID  string // multipart operations
	// PartNumber is UploadPart's part number; 0 otherwise.
	PartNumber int
	// Size is the declared body size (x-amz-decoded-content-length for aws-chunked bodies); 0
	// for operations without a body.
	Size        int64
	ContentType string
	// Headers holds the first value of each header named by Bucket.AuthzHeaders that the request
	// carries, by lower-case name; nil when the bucket names none.
	Headers map[string]string
	// Traceparent is the W3C traceparent naming the authorize span when the request is traced
	// (Options.Tracer records it); "" otherwise. An Authorizer that asks a remote service sends it
	// as that request's traceparent header, so the service's own spans join the request's trace.
	Traceparent string
	// Tracestate is the W3C tracestate of the trace (the client's, when it sent one) when the
	// request is traced and the trace has one; "" otherwise. Sent beside Traceparent.
	Tracestate string

	span Span // the request's span when it is recorded (trace.go)
}

// Head is a read-only view of a parsed request head, handed to Authenticators. Every slice it
// returns aliases the connection's buffer and is valid only during the call: copy what must
// outlive it.
type Head struct {
	req    *httpparse.Request
	buf    []byte
	signed [2]int32        // set by SigV4 authentication: the SignedHeaders list, buf[signed[0]:signed[1]]
	seed   s3sig.ChunkSeed // set by SigV4 authentication of a signed aws-chunked body
}

// Method is the request method ("PUT").
func (h *Head) Method() []byte { return h.req.Method.Bytes(h.buf) }

// Path is the raw (percent-encoded) path of the request-target.
func (h *Head) Path() []byte { return h.req.Path.Bytes(h.buf) }

// Query is the raw query (without '?'); HasQuery tells an empty query from none.
func (h *Head) Query() []byte { return h.req.Query.Bytes(h.buf) }

// HasQuery reports whether the request-target had a '?'.
func (h *Head) HasQuery() bool { return h.req.HasQuery }

// Header returns the first value of the header named lowerName (lower case).
func (h *Head) Header(lowerName string) ([]byte, bool) {
	v, ok := h.req.Lookup(h.buf, lowerName)
	return v.Bytes(h.buf), ok
}

// HeaderCount is how many times the header named lowerName occurs.
func (h *Head) HeaderCount(lowerName string) int {
	n := 0
	for i := 0; i < h.req.NumHeaders; i++ {
		name := h.req.Headers[i].Name.Bytes(h.buf)
		if len(name) == len(lowerName) && equalFoldASCII(name, lowerName) {
			n++
		}
	}
	return n
}

// NumHeaders is the number of header fields; HeaderAt returns the i-th as sent.
func (h *Head) NumHeaders() int { return h.req.NumHeaders }

// HeaderAt returns the i-th header field's name and value as sent (0 <= i < NumHeaders).
func (h *Head) HeaderAt(i int) (name, value []byte) {
	f := h.req.Headers[i]
	return f.Name.Bytes(h.buf), f.Value.Bytes(h.buf)
}

// noneAuth is `auth: none`: every request is anonymous (trusted networks and benchmarks).
type noneAuth struct{}

func (noneAuth) Authenticate(*Head) (Principal, *Error) { return Principal{Method: "none"}, nil }

// newAuthzInput copies what the Authorizer needs out of the head.
func newAuthzInput(h *Head, d *decision, reqID []byte, remote string) *AuthzInput {
	in := &AuthzInput{
		RequestID: string(reqID),
		Remote:    remote,
		Principal: d.principal,
		Operation: d.rt.op.String(),
		Bucket:    d.rt.bucket.name,
		Size:      d.size,
		span:      d.span,
	}
	path := h.Path()
	if key, err := s3sig.AppendPercentDecode(nil, path[d.rt.keyStart:d.rt.keyEnd]); err == nil {
		in.Key = string(key)
	}
	if d.rt.hasID {
		q := h.Query()
		if id, err := s3sig.AppendPercentDecode(nil, q[d.rt.uploadID[0]:d.rt.uploadID[1]]); err == nil {
			in.UploadID = string(id)
		}
	}
	in.PartNumber = d.rt.partNum
	if ct, ok := h.Header("content-type"); ok {
		in.ContentType = string(ct)
	}
	for _, name := range d.rt.bucket.authzHdrs {
		if v, ok := h.Header(name); ok {
			if in.Headers == nil {
				in.Headers = make(map[string]string, len(d.rt.bucket.authzHdrs))
			}
			in.Headers[name] = string(v)
		}
	}
	return in
}
