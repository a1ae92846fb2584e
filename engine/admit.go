package engine

import (
	"bytes"
	"errors"

	"github.com/mizuchi/uploadr/httpparse"
	"github.com/mizuchi/uploadr/s3sig"
)

// verdict is what admit decided a request becomes.
type verdict uint8

const (
	// verdictRefuse: answer decision.err; nothing goes upstream.
	verdictRefuse verdict = iota
	// verdictInline: wait (in the loop) until the whole body is buffered, then exchange it from
	// the buffer on a loop-owned upstream connection.
	verdictInline
	// verdictStream: detach the socket and move the body upstream (splice or copy).
	verdictStream
	// verdictAutoChunk: detach and cut the PutObject into a multipart upload upstream.
	verdictAutoChunk
	// verdictAwait: the bucket's Authorizer must decide first, off the loop; decision.next is what
	// the request becomes when it allows.
	verdictAwait
	// verdictPreflight: answer an allowed CORS preflight with 200 (cors.go); nothing goes upstream.
	verdictPreflight
)

var verdictNames = [...]string{"refuse", "inline", "stream", "auto-chunk", "await", "preflight"}

func (v verdict) String() string { return verdictNames[v] }

// decision is admit's result: a value, acted on by the transport (gnet loop or net.Conn driver).
type decision struct {
	verdict   verdict
	next      verdict   // after verdictAwait
	err       *s3Error  // verdictRefuse
	authErr   bool      // err came from the Authenticator (counted as an auth failure)
	rt        route     // routing result (rt.bucket is nil when no bucket was found)
	bodyLen   int64     // body bytes on the wire: Content-Length, 0 without one
	size      int64     // object bytes the body carries: x-amz-decoded-content-length for aws-chunked
	principal Principal // who the request was authenticated as
	signed    [2]int32  // SigV4: where the SignedHeaders list sits in the head's buffer
	chunks    chunkInfo // a signed aws-chunked body: how it is framed (zero otherwise)
	// noOverwrite: the bucket policy makes the upstream write conditional (If-None-Match: *).
	noOverwrite bool
	// preflight: an OPTIONS request (cors.go); corsRule is the CORS rule that allowed it.
	preflight bool
	corsRule  int
	span      Span // the request's span when it is recorded (trace.go)
}

// admit decides what a complete request head becomes. It is pure: no gnet, no I/O, no logging and
// no metrics (the caller counts what it decided); the only state it touches is the bucket table
// (and its "*" entry's name cache) and the SigV4 derived-key cache. It allocates nothing for an accepted request with a warm key
// cache. The checks run cheapest first and all before authentication, so a refused body is never
// read and a client cannot make the proxy verify a signature for a request it would refuse anyway.
// Only the bucket policy's rules (policy.go) run after authentication, as they depend on the
// principal; they too allocate nothing and come before any 100 Continue.
func (e *Engine) admit(h *Head) (d decision) {
	req, buf := h.req, h.buf
	if string(req.Method.Bytes(buf)) == "OPTIONS" {
		return e.preflight(h) // a CORS preflight, answered by the proxy (cors.go)
	}
	if b, ok := e.postObjectOp(h); ok {
		return e.admitPostObject(h, b) // a browser form upload (postobject.go)
	}
	_, copySrc := req.Lookup(buf, "x-amz-copy-source")
	var s3err *s3Error
	d.rt, s3err = e.routeRequest(req.Method.Bytes(buf), req.Host.Bytes(buf), req.Path.Bytes(buf), req.Query.Bytes(buf), req.HasQuery, copySrc)
	if s3err != nil {
		return refusal(d, s3err)
	}
	if s3err := e.admitBody(h, &d); s3err != nil {
		return refusal(d, s3err)
	}
	rt, b := &d.rt, d.rt.bucket
	chunkedAuto := d.chunks.mode != chunksNone && rt.op == opPutObject && b.autoChunks(d.size)
	if d.chunks.mode == chunksUnsignedTrailer {
		switch {
		case !chunkedAuto && !req.Chunked:
			d.chunks = chunkInfo{} // passed through with its framing: the upstream verifies the trailer
		case d.chunks.badTrailer:
			return refusal(d, errTrailerHeader)
		}
	}
	if s3err := e.admitPrincipal(h, &d); s3err != nil {
		return refusal(d, s3err)
	}
	d.verdict = e.bodyVerdict(&d, chunkedAuto)
	if b.authz != nil {
		d.next, d.verdict = d.verdict, verdictAwait
	}
	return d
}

// admitBody sets d.bodyLen and d.size and checks them and the payload declaration against the
// routed operation (d.rt), returning the S3 error for a body the operation does not take.
func (e *Engine) admitBody(h *Head, d *decision) *s3Error {
	req, rt := h.req, &d.rt
	d.bodyLen = req.ContentLength
	switch {
	case req.Chunked && rt.op != opPutObject && rt.op != opUploadPart:
		return errMissingContentLength // a chunked body where none or a document belongs
	case req.Chunked:
		// Transfer-Encoding: chunked (tecoding.go): the size comes from x-amz-decoded-content-length
		// (checkPayload), or the request is refused below; bodyLen stays -1 (unknown).
	case d.bodyLen < 0:
		if rt.op == opPutObject || rt.op == opUploadPart {
			return errMissingContentLength
		}
		d.bodyLen = 0
	}
	d.size = d.bodyLen
	switch {
	case !rt.op.hasBody() && d.bodyLen > 0:
		return errInvalidArgument
	case rt.op == opUploadPart && d.bodyLen > maxSinglePut+maxSinglePut/8:
		return errEntityTooLarge
	case rt.op == opCompleteMultipartUpload && d.bodyLen > maxCompleteBody:
		return errEntityTooLarge
	}
	if s3err := e.checkPayload(h, d); s3err != nil {
		return s3err
	}
	if req.Chunked {
		switch {
		case d.chunks.mode == chunksNone:
			// Not aws-chunked (or a hex/UNSIGNED payload hash makes it plain): nothing declares the
			// length the upstream needs before the body; S3 answers the same.
			return errMissingContentLength
		case rt.op == opUploadPart && d.size > maxSinglePut:
			return errEntityTooLarge
		}
	}
	return nil
}

// admitPrincipal authenticates the request with its bucket's Authenticator (setting d.authErr
// when that refuses), then applies what depends on the principal: the bucket policy and the
// binding of an uploadId to its principal, bucket and key.
func (e *Engine) admitPrincipal(h *Head, d *decision) *s3Error {
	b := d.rt.bucket
	signedChunks := d.chunks.mode == chunksSigned || d.chunks.mode == chunksSignedTrailer
	if signedChunks {
		h.seed = s3sig.ChunkSeed{} // set by SigV4 authentication only
	}
	p, s3err := b.auth.Authenticate(h)
	if s3err != nil {
		d.authErr = true
		return s3err
	}
	if signedChunks && !h.seed.Valid() {
		return errSignedChunks // an Authenticator other than SigV4's: no seed to chain from
	}
	if b.pending != nil {
		b.pending.promote(b) // a "*" entry's bucket, first authenticated request (route_bucket.go)
	}
	d.principal = p
	d.signed = h.signed
	if b.policy != nil {
		if s3err := checkPolicy(b.policy, h, d); s3err != nil {
			return s3err // the rules of the bucket's policy, which name themselves
		}
	}
	if d.rt.hasID {
		if s3err := e.checkUploadID(h, d); s3err != nil {
			return s3err // another principal's, bucket's or key's upload, or a forged id
		}
	}
	return nil
}

// bodyVerdict is how an admitted request's body moves: in the loop, streamed, or cut into a
// multipart upload. chunkedAuto: an aws-chunked PutObject above the bucket's auto-chunk threshold.
func (e *Engine) bodyVerdict(d *decision, chunkedAuto bool) verdict {
	switch {
	case chunkedAuto:
		// The framing is decoded and the parts cut from the decoded bytes (copy path).
		return verdictAutoChunk
	case d.chunks.mode != chunksNone:
		// Every signed aws-chunked body, and every body in HTTP chunks, is read and decoded (signed
		// chunks verified) off the loop (copy path), whatever its size: the in-loop path never
		// sees one.
		return verdictStream
	case d.rt.op == opPutObject && d.rt.bucket.autoChunks(d.bodyLen):
		return verdictAutoChunk
	case d.bodyLen > int64(e.opts.InlineBodyMax) && d.rt.op != opCompleteMultipartUpload:
		return verdictStream
	}
	return verdictInline
}

func refusal(d decision, s3err *s3Error) decision {
	d.verdict, d.err = verdictRefuse, s3err
	d.noOverwrite = false // set by a policy that passed; nothing goes upstream
	return d
}

// maxCompleteBody bounds a CompleteMultipartUpload document (10,000 parts with checksums).
const maxCompleteBody = 4 << 20

// autoChunks reports whether a PutObject with a body of n bytes is cut into a multipart upload.
func (b *bucketState) autoChunks(n int64) bool {
	return b.upload.MultipartThreshold > 0 && n > b.upload.MultipartThreshold
}

// checkPayload validates the payload declaration (x-amz-content-sha256, aws-chunked framing) and
// the declared size. A body is aws-chunked when its payload hash is a streaming one, or when
// Content-Encoding says so and no payload hash says otherwise (S3 takes a body with a hex or
// UNSIGNED-PAYLOAD hash as ordinary whatever Content-Encoding says: buildUpstreamHead then drops
// the aws-chunked token, as S3 drops it from the stored Content-Encoding). For an aws-chunked
// body x-amz-decoded-content-length is the object's size, and Content-Length may exceed it only
// by the framing (chunk sizes, CRLFs, the trailer).
func (e *Engine) checkPayload(h *Head, d *decision) *s3Error {
	req, buf := h.req, h.buf
	streaming, plain := false, false
	if v, ok := req.Lookup(buf, "x-amz-content-sha256"); ok {
		switch p := v.Bytes(buf); {
		case isHexSHA256(p), string(p) == s3sig.UnsignedPayload:
			plain = true // an ordinary body even under Content-Encoding: aws-chunked, as S3 takes it
		case string(p) == s3sig.StreamingUnsignedTrailer:
			streaming = true
			d.chunks.mode = chunksUnsignedTrailer // kept only when auto-chunked (admit)
		case string(p) == s3sig.StreamingSigned || string(p) == s3sig.StreamingSignedTrailer:
			if d.rt.op != opPutObject && d.rt.op != opUploadPart {
				return errSignedChunks
			}
			streaming = true
			d.chunks.mode = chunksSigned
			if len(p) == len(s3sig.StreamingSignedTrailer) {
				d.chunks.mode = chunksSignedTrailer
			}
		case bytes.HasPrefix(p, []byte("STREAMING-AWS4-HMAC-SHA256-PAYLOAD")), bytes.HasPrefix(p, []byte("STREAMING-AWS4-ECDSA")):
			return errSignedChunks
		default:
			return errInvalidContentSHA256
		}
	}
	op, b := d.rt.op, d.rt.bucket
	if v, ok := req.Lookup(buf, "content-encoding"); streaming || ok && !plain && containsFoldASCII(v.Bytes(buf), "aws-chunked") {
		dv, ok := req.Lookup(buf, "x-amz-decoded-content-length")
		if !ok {
			return errDecodedLengthRequired
		}
		n, ok := parseDecimal(dv.Bytes(buf))
		if !ok {
			return errInvalidDecodedLength
		}
		d.size = n
		if d.chunks.mode != chunksNone {
			d.chunks.decoded = n
			if s3err := d.chunks.parseTrailerHeader(h); s3err != nil {
				if d.chunks.mode != chunksUnsignedTrailer {
					return s3err
				}
				d.chunks.badTrailer = true // matters only if auto-chunked
			}
		}
		switch {
		case op == opPutObject && (n > e.opts.MaxObjectSize || n > maxSinglePut && !(d.chunks.mode != chunksNone && b.autoChunks(n))):
			return errEntityTooLarge
		case req.Chunked:
			// No Content-Length to check against: the de-chunker bounds the framing (maxTEFraming).
		case n > d.bodyLen:
			return errInvalidDecodedLength
		case d.bodyLen-n > maxChunkFraming(n):
			return errChunkFraming
		}
		if op == opPutObject && b.autoChunks(n) && d.chunks.mode == chunksNone {
			return errChunkedAutoChunk // aws-chunked Content-Encoding without a STREAMING-* payload
		}
	} else if op == opPutObject {
		if d.bodyLen > e.opts.MaxObjectSize || d.bodyLen > maxSinglePut && !b.autoChunks(d.bodyLen) {
			return errEntityTooLarge
		}
	}
	return nil
}

// maxChunkFraming bounds the aws-chunked framing of an object of n bytes: the chunk size lines
// and CRLFs of chunks no smaller than 8 KiB (the SDKs' minimum; they send 64 KiB), signatures
// included, plus the final chunk and the trailer.
func maxChunkFraming(n int64) int64 { return n/64 + 64<<10 }

// containsFoldASCII reports whether s contains lower (lower case), ignoring ASCII case.
func containsFoldASCII(s []byte, lower string) bool {
	for i := 0; i+len(lower) <= len(s); i++ {
		if equalFoldASCII(s[i:i+len(lower)], lower) {
			return true
		}
	}
	return false
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

// parseError maps a head the parser refused to the S3 error to answer.
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
