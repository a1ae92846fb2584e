package engine

import (
	"bytes"
	"strconv"

	"github.com/mizuchi/uploadr/httpparse"
	"github.com/mizuchi/uploadr/s3sig"
	"github.com/mizuchi/uploadr/uploadid"
)

// Upload ids bound to their creator. The upload id a client gets from CreateMultipartUpload is
// an uploadid token: the upstream's upload id sealed with the principal, the bucket (as the
// client names it) and the decoded key. Requests that name an upload (UploadPart, Complete,
// Abort, ListParts) must bring a token that opens with their own principal, bucket and key:
//
//	admit            checkUploadID: verify after authentication, else 404 NoSuchUpload (nothing upstream)
//	buildUpstreamHead appendUpstreamUploadID: the upstream id goes in the upstream query
//	relay            relayUploadID: Create's and ListParts' 200 answers get the token in <UploadId>
//
// Nothing is stored: any engine holding the same keys opens any token. Auto-chunking keeps its
// upstream ids to itself and never sees a token.

// The rows of upload id binding.
var (
	errNoSuchUpload     = &s3Error{"NoSuchUpload", 404, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."}
	errUploadIDTooLong  = &s3Error{"BadGateway", 502, "The upstream S3 server returned an upload id too long for this proxy to bind to its creator"}
	errUploadIDNotFound = &s3Error{"BadGateway", 502, "The upstream S3 server's CreateMultipartUpload answer has no UploadId"}
)

// sealerFor returns the Sealer of a bucket: the engine's (Options.UploadIDSecrets), else one
// keyed by a key derived from the bucket's upstream secret key.
func (e *Engine) sealerFor(b Bucket) *uploadid.Sealer {
	if e.ids != nil {
		return e.ids
	}
	s, err := uploadid.New(uploadid.DeriveKey([]byte(b.Upstream.SecretKey)))
	if err != nil {
		panic(err) // a derived key is 32 bytes
	}
	return s
}

// uploadBinding is what d's upload token must be bound to; key is the decoded object key.
func uploadBinding(principal string, b *bucketState, key []byte) uploadid.Binding {
	return uploadid.Binding{Principal: principal, Bucket: b.name, Key: key}
}

// checkUploadID verifies the upload id of an authenticated request that names one: 404
// NoSuchUpload unless it is a token made for this principal, bucket and key. It allocates nothing
// for ids and keys within the route's limits.
func (e *Engine) checkUploadID(h *Head, d *decision) *s3Error {
	rt := &d.rt
	var tb, kb [1024]byte
	token, ok := uploadToken(tb[:0], h.req.Query.Bytes(h.buf), rt)
	if !ok {
		return errNoSuchUpload
	}
	key, err := s3sig.AppendPercentDecode(kb[:0], h.req.Path.Bytes(h.buf)[rt.keyStart:rt.keyEnd])
	if err != nil {
		return errNoSuchUpload
	}
	bind := uploadBinding(d.principal.ID, rt.bucket, key)
	if rt.bucket.ids.Verify(token, &bind) != nil {
		return errNoSuchUpload
	}
	return nil
}

// uploadToken returns the route's uploadId value of query, percent-decoded into dst when it has
// escapes (a base64url token needs none, but a client may escape anyway).
func uploadToken(dst, query []byte, rt *route) ([]byte, bool) {
	v := query[rt.uploadID[0]:rt.uploadID[1]]
	if bytes.IndexByte(v, '%') < 0 {
		return v, true
	}
	v, err := s3sig.AppendPercentDecode(dst, v)
	return v, err == nil
}

// appendUpstreamUploadID opens the request's upload token (checkUploadID verified it) and appends
// the upstream id to j.query, S3-URI-encoded. For ListParts it keeps the token in j.token for
// relayUploadID. It runs while buf is valid.
func (j *job) appendUpstreamUploadID(st *connState, b *bucketState, buf []byte) error {
	req, rt := st.req, &st.rt
	var tb [1024]byte
	token, ok := uploadToken(tb[:0], req.Query.Bytes(buf), rt)
	if !ok {
		return uploadid.ErrMalformed
	}
	bind := uploadBinding(st.principal.ID, b, j.tmp) // j.tmp: the decoded key (setUpstreamPath)
	var err error
	if j.ids.id, err = b.ids.Open(j.ids.id[:0], token, &bind); err != nil {
		return err
	}
	j.query = s3sig.AppendURIEncode(j.query, j.ids.id, false)
	if rt.op == opListParts {
		j.ids.token = append(j.ids.token[:0], token...)
	}
	return nil
}

// idScratch is a job's buffers for upload id binding (Create, ListParts and the requests that
// name an upload).
type idScratch struct {
	id    []byte // the upstream upload id
	key   []byte // the decoded object key
	token []byte // the client's token
	body  []byte // a de-chunked answer body
	out   []byte // the rewritten answer body
}

// rewritesUploadID reports whether the answer for j is one whose UploadId relayUploadID rewrites:
// a successful CreateMultipartUpload or ListParts the client sent (auto-chunking's own requests
// run under opPutObject and keep the upstream's ids).
func rewritesUploadID(j *job, status int) bool {
	return status == 200 && (j.op == opCreateMultipartUpload || j.op == opListParts)
}

// relayUploadID is relay for the answers rewritesUploadID names: the body, de-chunked, gets the
// client's token in place of the upstream id in its first <UploadId> element, and is framed with
// Content-Length. Everything else (NextPartNumberMarker, parts, …) passes unchanged. An upstream
// id too long for a token gets 502 and the upload is aborted upstream (in the background). It
// allocates (scratch growth): these answers are off the PutObject/UploadPart path.
func (e *Engine) relayUploadID(j *job, buf []byte, h *httpparse.Response, total int, closeConn bool) int {
	body := buf[h.HeadLen:total]
	if h.Chunked {
		j.ids.body = appendDechunked(j.ids.body[:0], body)
		body = j.ids.body
	}
	const open, closeTag = "<UploadId>", "</UploadId>"
	i := bytes.Index(body, []byte(open))
	n := -1
	if i >= 0 {
		i += len(open)
		n = bytes.Index(body[i:], []byte(closeTag))
	}
	if n < 0 {
		if j.op == opCreateMultipartUpload {
			return e.errorResponse(j, errUploadIDNotFound, closeConn)
		}
		return e.relayFramed(j, buf, h, body, closeConn) // ListParts without one: nothing to hide
	}
	x := &j.ids
	if j.op == opCreateMultipartUpload {
		x.id = appendXMLUnescaped(x.id[:0], body[i:i+n])
		var err error
		if x.key, err = s3sig.AppendPercentDecode(x.key[:0], j.resource[j.keyStart:]); err != nil {
			return e.errorResponse(j, errInvalidURI, closeConn)
		}
		bind := uploadBinding(j.principal.ID, j.bucket, x.key)
		if x.token, err = j.bucket.ids.Seal(x.token[:0], x.id, &bind); err != nil {
			// The client will never hear of this upload: abort it upstream, off the loop.
			path, id := bytes.Clone(j.path), s3sig.AppendURIEncode(nil, x.id, false)
			go e.abortUploadRetrying(j.bucket, path, id, j.reqID, j.trace.span)
			return e.errorResponse(j, errUploadIDTooLong, closeConn)
		}
	}
	x.out = append(x.out[:0], body[:i]...)
	x.out = append(x.out, x.token...)
	x.out = append(x.out, body[i+n:]...)
	return e.relayFramed(j, buf, h, x.out, closeConn)
}

// relayFramed is relay with body in place of the upstream's and framed by Content-Length.
func (e *Engine) relayFramed(j *job, buf []byte, h *httpparse.Response, body []byte, closeConn bool) int {
	out := e.relayHead(j, j.resp[:0], buf, h, true)
	out = append(out, "Content-Length: "...)
	out = strconv.AppendInt(out, int64(len(body)), 10)
	out = append(out, "\r\n"...)
	if closeConn {
		out = append(out, "Connection: close\r\n"...)
	}
	out = append(out, "\r\n"...)
	j.resp = append(out, body...)
	return h.Status
}

// appendDechunked appends the data of a chunked body (RFC 9112 7.1) to dst. body was validated
// by httpparse.ChunkScanner; extensions and the trailer section are dropped.
func appendDechunked(dst, body []byte) []byte {
	for len(body) > 0 {
		eol := bytes.Index(body, []byte("\r\n"))
		if eol < 0 {
			break
		}
		n := 0
		for _, c := range body[:eol] {
			v := unhexDigit(c)
			if v > 15 {
				break // ';' extensions or whitespace
			}
			n = n<<4 | int(v)
		}
		body = body[eol+2:]
		if n == 0 || n > len(body) {
			break
		}
		dst = append(dst, body[:n]...)
		body = body[min(n+2, len(body)):]
	}
	return dst
}

// appendXMLUnescaped appends s with XML's five predefined entities and numeric character
// references below 128 replaced (an upload id is ASCII); anything else passes as is.
func appendXMLUnescaped(dst, s []byte) []byte {
	for len(s) > 0 {
		amp := bytes.IndexByte(s, '&')
		if amp < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:amp]...)
		s = s[amp:]
		semi := bytes.IndexByte(s, ';')
		if semi < 0 {
			return append(dst, s...)
		}
		ent, c := s[1:semi], byte(0)
		switch string(ent) {
		case "amp":
			c = '&'
		case "lt":
			c = '<'
		case "gt":
			c = '>'
		case "quot":
			c = '"'
		case "apos":
			c = '\''
		default:
			if len(ent) > 1 && ent[0] == '#' {
				base, digits := 10, ent[1:]
				if digits[0] == 'x' {
					base, digits = 16, digits[1:]
				}
				if v, err := strconv.ParseUint(string(digits), base, 7); err == nil {
					c = byte(v)
				}
			}
		}
		if c == 0 {
			dst = append(dst, '&')
			s = s[1:]
			continue
		}
		dst = append(dst, c)
		s = s[semi+1:]
	}
	return dst
}
