package engine

import (
	"bytes"

	"github.com/mizuchi/uploadr/postform"
)

// PostObject: browser form uploads (POST /<bucket>, or POST / on a virtual-hosted bucket host,
// with Content-Type: multipart/form-data). The form carries its own authentication — a base64
// POST policy signed with SigV4 by a holder of one of the bucket's client credentials — so admit
// only does the cheap checks on the head (a bucket-level POST with a form, a boundary, a
// Content-Length, a plausible size) and detaches the request like a streamed PutObject. Off the
// loop (postobject_exchange.go) the fields before the file are read (at most
// postform.MaxPreData), the policy's signature, expiration and conditions are checked, then the
// bucket policy and Authorizer as for a PutObject by the policy's access key, and only then is the
// file streamed upstream as a PutObject of exactly the file's length. See the README's "Browser
// uploads".

// The rows of PostObject (S3's codes; the messages S3 gives where it documents them).
var (
	errPostMalformed     = &s3Error{"MalformedPOSTRequest", 400, "The body of your POST request is not well-formed multipart/form-data."}
	errPostTail          = &s3Error{"MalformedPOSTRequest", 400, "The body of your POST request is not well-formed multipart/form-data: this proxy needs the file as the last part, followed by the closing boundary and CRLF"}
	errPostBoundary      = &s3Error{"MalformedPOSTRequest", 400, "The body of your POST request is not well-formed multipart/form-data: the Content-Type has no valid boundary"}
	errPostPreData       = &s3Error{"MaxPostPreDataLengthExceeded", 400, "Your POST request fields preceding the upload file were too large."}
	errPostNoFile        = &s3Error{"InvalidArgument", 400, "POST requires exactly one file upload per request."}
	errPostNoKey         = &s3Error{"InvalidArgument", 400, "Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields."}
	errPostDuplicate     = &s3Error{"InvalidArgument", 400, "Bucket POST must not repeat a form field"}
	errPostAuthMissing   = &s3Error{"AccessDenied", 403, "Bucket POST must be signed with SigV4: the form needs the fields policy, x-amz-algorithm, x-amz-credential, x-amz-date and x-amz-signature"}
	errPostAlgorithm     = &s3Error{"InvalidArgument", 400, "x-amz-algorithm must be AWS4-HMAC-SHA256"}
	errPostCredential    = &s3Error{"InvalidArgument", 400, "x-amz-credential must be <access key>/<yyyymmdd>/<region>/s3/aws4_request and x-amz-date a yyyymmddThhmmssZ time on that day"}
	errPostNoCredentials = &s3Error{"AccessDenied", 403, "Browser form uploads are signed with the bucket's client credentials, and this bucket has none"}
	errPostHeaderValue   = &s3Error{"InvalidArgument", 400, "Form field values sent on as object headers must not contain control characters"}
	errPostTagging       = &s3Error{"MalformedXML", 400, "The tagging field must be a <Tagging><TagSet> document with at least one tag and no repeated key"}
	errEntityTooSmall    = &s3Error{"EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed size"}
)

// postObjectOp reports whether a POST head is a PostObject: a multipart/form-data Content-Type on
// a bucket-level path. A POST with a key (CreateMultipartUpload of an object whose type is
// multipart/form-data) is routed as before. It does not allocate.
func (e *Engine) postObjectOp(h *Head) (*bucketState, bool) {
	req, buf := h.req, h.buf
	if string(req.Method.Bytes(buf)) != "POST" {
		return nil, false
	}
	ct, ok := req.Lookup(buf, "content-type")
	if !ok || !postform.IsFormData(ct.Bytes(buf)) {
		return nil, false
	}
	path := req.Path.Bytes(buf)
	if len(path) == 0 || path[0] != '/' {
		return nil, false
	}
	b, _, s3err := e.routeBucket(req.Host.Bytes(buf), path)
	return b, b != nil && s3err == errMethodNotAllowed
}

// admitPostObject decides on a PostObject head (b is its bucket): the checks that need no body,
// then verdictStream. Authentication, the policies and the Authorizer come once the form is read,
// off the loop (exchangePost).
func (e *Engine) admitPostObject(h *Head, b *bucketState) (d decision) {
	req, buf := h.req, h.buf
	d.rt = route{op: opPostObject, bucket: b}
	if req.HasQuery && hasSubresource(req.Query.Bytes(buf)) {
		return refusal(d, errNotImplemented)
	}
	if req.Chunked || req.ContentLength < 0 {
		return refusal(d, errMissingContentLength)
	}
	d.bodyLen, d.size = req.ContentLength, req.ContentLength
	ct, _ := req.Lookup(buf, "content-type")
	if _, err := postform.Boundary(string(ct.Bytes(buf))); err != nil {
		return refusal(d, errPostBoundary)
	}
	if d.bodyLen > min(e.opts.MaxObjectSize, maxSinglePut)+postform.MaxPreData+1024 {
		return refusal(d, errEntityTooLarge)
	}
	d.verdict = verdictStream
	return d
}

// hasSubresource reports whether a raw query names a subresource (route.go's list).
func hasSubresource(q []byte) bool {
	for len(q) > 0 {
		var kv []byte
		kv, q, _ = bytes.Cut(q, []byte{'&'})
		k, _, _ := bytes.Cut(kv, []byte{'='})
		if isSubresource(k) {
			return true
		}
	}
	return false
}

// postJob is what a PostObject carries from the loop to its exchange (copied out of the head).
type postJob struct {
	boundary string
	host     string // the client's Host, for the Location of the answer
	origin   string // the client's Origin (CORS)
	bucket   string // client-facing bucket name
	vhost    bool   // addressed virtual-hosted (resource "/")
	bodyLen  int64
	scheme   string      // "http://" or "https://" (a TLS client of Serve)
	up       *postUpload // the verified form
	src      *postSource // an auto-chunked file (postobject_autochunk.go)
	whole    bool        // the body was read whole (postWholeMax): its file's bytes are known
}

// preparePost copies what exchangePost needs out of the head's buffer: the boundary, Host and
// Origin, and the body prefix read with the head.
func (e *Engine) preparePost(j *job, st *connState, buf []byte) error {
	req := st.req
	ct, _ := req.Lookup(buf, "content-type")
	boundary, err := postform.Boundary(string(ct.Bytes(buf)))
	if err != nil {
		return err
	}
	pj := &postJob{boundary: boundary, host: string(req.Host.Bytes(buf)), bucket: st.rt.bucket.name, bodyLen: st.bodyLen}
	if o, ok := req.Lookup(buf, "origin"); ok {
		pj.origin = string(o.Bytes(buf))
	}
	pj.vhost = len(req.Path.Bytes(buf)) == 1
	j.post = pj
	j.out = j.out[:0]
	j.headLen = 0
	prefix := buf[req.HeadLen:]
	if int64(len(prefix)) > st.bodyLen {
		prefix = prefix[:st.bodyLen]
	}
	j.out = append(j.out, prefix...)
	j.remaining = st.bodyLen - int64(len(prefix))
	j.consumed = req.HeadLen + len(prefix)
	return nil
}
