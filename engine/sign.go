package engine

import (
	"strconv"

	"github.com/mizuchi/uploadr/s3sig"
)

// hopHeaders are client headers that never go upstream: hop-by-hop headers, the client's own
// authentication, and the payload/date headers the proxy sets itself when it re-signs.
var hopHeaders = [...]string{"host", "authorization", "connection", "keep-alive", "proxy-connection",
	"proxy-authorization", "te", "trailer", "upgrade", "expect", "x-amz-date", "x-amz-content-sha256",
	"x-amz-security-token", "transfer-encoding", "date"}

func isHopHeader(name []byte) bool {
	for _, h := range hopHeaders {
		if len(name) == len(h) && equalFoldASCII(name, h) {
			return true
		}
	}
	return false
}

func equalFoldASCII(b []byte, lower string) bool {
	for i := range len(lower) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// buildUpstreamHead appends the upstream request head for the routed request in buf to j.out:
// the path rewritten to the upstream bucket and re-encoded with S3's rules, a query carrying only
// the operation's own parameters, the client's end-to-end headers, and a fresh SigV4 Authorization
// signed with the upstream credentials. Of the client's headers only those it signed and those S3
// accepts unsigned go upstream (forwardHeader). The payload hash is the client's hex SHA-256 or
// STREAMING-UNSIGNED-PAYLOAD-TRAILER when given (so the upstream verifies the body), else
// UNSIGNED-PAYLOAD. Under a bucket policy's no_overwrite (st.noOverwrite) a PutObject or Complete
// carries If-None-Match: * instead of the client's If-None-Match. It runs on the loop while buf
// is valid.
func (e *Engine) buildUpstreamHead(j *job, st *connState, b *bucketState, buf []byte) error {
	req := st.req
	rt := &st.rt
	path := req.Path.Bytes(buf)

	if err := j.setUpstreamPath(b, path[rt.keyStart:rt.keyEnd]); err != nil {
		return err
	}

	if err := j.setUpstreamQuery(st, b, buf); err != nil {
		return err
	}

	payload := unsignedPayload
	plain := false // an ordinary body, whatever Content-Encoding says (checkPayload)
	if v, ok := req.Lookup(buf, "x-amz-content-sha256"); ok {
		if p := v.Bytes(buf); isHexSHA256(p) || string(p) == s3sig.StreamingUnsignedTrailer {
			payload = p
		}
		p := v.Bytes(buf)
		plain = isHexSHA256(p) || string(p) == s3sig.UnsignedPayload
	}
	ck := &st.chunks
	switch {
	case ck.reframed():
		payload = streamingUnsignedTrailer // re-framed: see chunked_exchange.go, tecoding.go
	case ck.mode != chunksNone:
		payload = unsignedPayload // decoded, verified by the proxy (tecoding.go)
	}
	j.date = s3sig.AppendAmzDate(j.date[:0], e.opts.Now())

	sc := sigPool.Get().(*sigScratch)
	defer sigPool.Put(sc)
	hs := sc.h[:0]
	hs = append(hs,
		s3sig.Header{Name: hostName, Value: b.hostHeader},
		s3sig.Header{Name: amzDateName, Value: j.date},
		s3sig.Header{Name: contentSHA256Name, Value: payload})
	hasCL := false
	signed := st.signedHeaders(b, buf)
	for i := 0; i < req.NumHeaders; i++ {
		h := req.Headers[i]
		name := h.Name.Bytes(buf)
		if isHopHeader(name) || !forwardHeader(name, signed) {
			continue // unsigned headers never go upstream under the proxy's signature (headers.go)
		}
		if j.trace.span != nil && isTraceHeader(name) {
			continue // the proxy sends its own (trace.go)
		}
		if st.noOverwrite && isIfNoneMatch(name) {
			continue // replaced by the policy's If-None-Match: * below
		}
		if len(name) == len("content-length") && equalFoldASCII(name, "content-length") {
			hasCL = true
		}
		value := h.Value.Bytes(buf)
		if ck.mode != chunksNone && ck.dropHeader(name, value) {
			continue
		}
		if plain && isContentEncoding(name) {
			if value = withoutAWSChunked(&j.enc, value); len(value) == 0 {
				continue
			}
		}
		hs = append(hs, s3sig.Header{Name: name, Value: value})
	}
	if ck.mode != chunksNone {
		j.num = strconv.AppendInt(j.num[:0], ck.upstreamLength(), 10)
		hs = append(hs, s3sig.Header{Name: contentLengthName, Value: j.num})
		if ck.reframed() {
			hs = append(hs, s3sig.Header{Name: contentEncodingName, Value: awsChunked})
		}
	}
	if st.noOverwrite && (rt.op == opPutObject || rt.op == opCompleteMultipartUpload) {
		hs = append(hs, s3sig.Header{Name: ifNoneMatchName, Value: anyETag}) // signed with the rest
	}
	var extra string
	if !hasCL && (rt.op == opCreateMultipartUpload || rt.op == opCompleteMultipartUpload) {
		extra = "Content-Length: 0\r\n"
	}
	out, err := e.appendSignedHead(j.out[:0], j, b, req.Method.Bytes(buf), hs, payload, extra)
	clear(hs)
	if err != nil {
		return err
	}
	j.out = out
	j.headLen = len(out)
	return nil
}

// Constant header names and values of the upstream head, as slices made once: a []byte(string)
// conversion stored in a header list escapes and would allocate on every request.
var (
	hostName          = []byte("host")
	amzDateName       = []byte("x-amz-date")
	contentSHA256Name = []byte("x-amz-content-sha256")
	unsignedPayload   = []byte(s3sig.UnsignedPayload)

	streamingUnsignedTrailer = []byte(s3sig.StreamingUnsignedTrailer)
	contentLengthName        = []byte("content-length")
	contentEncodingName      = []byte("content-encoding")
	awsChunked               = []byte("aws-chunked")
	ifNoneMatchName          = []byte("if-none-match")
	anyETag                  = []byte("*")
)

func isIfNoneMatch(name []byte) bool {
	return len(name) == len("if-none-match") && equalFoldASCII(name, "if-none-match")
}

// setUpstreamQuery sets j.query to the operation's own parameters, values passed through as the
// client encoded them, but the upload id: the client's token is opened and the upstream's id goes
// (uploadid.go). Anything else the client sent (auth parameters, x-id, …) stays behind.
func (j *job) setUpstreamQuery(st *connState, b *bucketState, buf []byte) error {
	req, rt := st.req, &st.rt
	q := req.Query.Bytes(buf)
	j.query = j.query[:0]
	switch rt.op {
	case opCreateMultipartUpload:
		j.query = append(j.query, "uploads="...)
	case opUploadPart:
		j.query = append(j.query, "partNumber="...)
		j.query = strconv.AppendInt(j.query, int64(rt.partNum), 10)
		j.query = append(j.query, "&uploadId="...)
		if err := j.appendUpstreamUploadID(st, b, buf); err != nil {
			return err
		}
	case opCompleteMultipartUpload, opAbortMultipartUpload:
		j.query = append(j.query, "uploadId="...)
		if err := j.appendUpstreamUploadID(st, b, buf); err != nil {
			return err
		}
	case opListParts:
		if rt.encType != [2]int{} {
			j.query = append(j.query, "encoding-type="...)
			j.query = append(j.query, q[rt.encType[0]:rt.encType[1]]...)
			j.query = append(j.query, '&')
		}
		if rt.maxParts != [2]int{} {
			j.query = append(j.query, "max-parts="...)
			j.query = append(j.query, q[rt.maxParts[0]:rt.maxParts[1]]...)
			j.query = append(j.query, '&')
		}
		if rt.partMark != [2]int{} {
			j.query = append(j.query, "part-number-marker="...)
			j.query = append(j.query, q[rt.partMark[0]:rt.partMark[1]]...)
			j.query = append(j.query, '&')
		}
		j.query = append(j.query, "uploadId="...)
		if err := j.appendUpstreamUploadID(st, b, buf); err != nil {
			return err
		}
	}
	return nil
}

// setUpstreamPath sets j.path to /<upstream bucket>/<key>: the client's raw key percent-decoded, then
// S3-URI-encoded once, so the path on the wire is exactly the canonical one the upstream computes.
func (j *job) setUpstreamPath(b *bucketState, rawKey []byte) error {
	j.path = append(j.path[:0], '/')
	j.path = append(j.path, b.up.Bucket...)
	j.path = append(j.path, '/')
	var err error
	j.tmp, err = s3sig.AppendPercentDecode(j.tmp[:0], rawKey)
	if err != nil {
		return err
	}
	j.path = s3sig.AppendURIEncode(j.path, j.tmp, true)
	return nil
}

// appendSignedHead signs a request for j.path?j.query with the headers hs (host, x-amz-date and
// x-amz-content-sha256 among them, x-amz-date equal to j.date) and appends its head to dst: request
// line, hs, the unsigned extra lines (each ending in CRLF), Authorization and the blank line.
func (e *Engine) appendSignedHead(dst []byte, j *job, b *bucketState, method []byte, hs []s3sig.Header, payload []byte, extra string) ([]byte, error) {
	sreq := s3sig.Request{Method: method, Path: j.path, Query: j.query, Headers: hs, PayloadHash: payload}
	signer := e.getSigner()
	var err error
	j.auth, err = signer.Sign(j.auth[:0], &sreq, b.cred, j.date, b.up.Region, "s3")
	e.signers.Put(signer)
	if err != nil {
		return dst, err
	}
	dst = append(dst, method...)
	dst = append(dst, ' ')
	dst = append(dst, j.path...)
	if len(j.query) > 0 {
		dst = append(dst, '?')
		dst = append(dst, j.query...)
	}
	dst = append(dst, " HTTP/1.1\r\n"...)
	for _, h := range hs {
		dst = append(dst, h.Name...)
		dst = append(dst, ": "...)
		dst = append(dst, h.Value...)
		dst = append(dst, "\r\n"...)
	}
	dst = append(dst, extra...)
	if j.trace.span != nil {
		dst = j.trace.appendTraceHeaders(dst) // not signed (trace.go)
	}
	dst = append(dst, "Authorization: "...)
	dst = append(dst, j.auth...)
	dst = append(dst, "\r\n\r\n"...)
	return dst, nil
}
